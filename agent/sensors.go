package agent

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// sensorsCollector reports hardware temperatures (measurement sensors, tag
// sensor, field temp_c in °C), from the kernel's hwmon interface:
// /sys/class/hwmon/hwmon*/temp*_input (millidegrees), named
// "<chip>_<label>" from the chip's name file and the sensor's label file
// (or "<chip>_tempN" without a label), e.g. coretemp_package_id_0,
// nvme_composite. Without hwmon sensors, the thermal zones
// (/sys/class/thermal/thermal_zone*/temp, named by their type) are used.
// Follows HOST_SYS.
//
// This reads what gopsutil's host.SensorsTemperatures reads, but finds the
// files once and then reads only the temp*_input files each tick (gopsutil
// reads five files per sensor per call). The file list is refreshed every
// sensorsRefresh ticks. A sensor whose read fails is skipped that tick.
//
// Virtual machines usually have no sensors: the collector is then
// unavailable, logged once, emits nothing and reports no error, and looks
// again at every refresh. Cost: one small read per sensor per tick.
type sensorsCollector struct {
	log         func(found bool)
	ticks       int
	sensors     []sensorFile
	buf         []byte
	unavailable string
	tags        []wire.Tag
	fields      []wire.Field
}

type sensorFile struct{ name, path string }

const sensorsRefresh = 60

func init() {
	Register("sensors", func(o Options) (Collector, error) {
		c := &sensorsCollector{tags: make([]wire.Tag, 1), fields: make([]wire.Field, 1)}
		log := o.logger()
		var once sync.Once
		c.log = func(found bool) {
			if !found {
				once.Do(func() {
					log.Info("no temperature sensors: sensors collector idle", "reason", c.unavailable)
				})
			}
		}
		return c, nil
	})
}

// Name implements Collector.
func (c *sensorsCollector) Name() string { return "sensors" }

// Unavailable implements Availability.
func (c *sensorsCollector) Unavailable() string { return c.unavailable }

// Collect implements Collector.
func (c *sensorsCollector) Collect(ctx context.Context, _ time.Time, emit Emit) error {
	if c.ticks%sensorsRefresh == 0 {
		c.sensors = findSensors()
		c.unavailable = ""
		if len(c.sensors) == 0 {
			c.unavailable = "no " + hostSys("class", "hwmon", "hwmon*", "temp*_input") + " or thermal zones"
		}
		c.log(len(c.sensors) > 0)
	}
	c.ticks++
	for _, s := range c.sensors {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b, err := readInto(s.path, &c.buf)
		if err != nil {
			continue // e.g. a sensor of a device that is asleep
		}
		v, ok := parseInt(bytes.TrimSpace(b))
		if !ok {
			continue
		}
		c.tags[0] = wire.Tag{Key: "sensor", Value: s.name}
		c.fields[0] = wire.F("temp_c", float64(v)/1000)
		emit("sensors", c.tags, c.fields)
	}
	return nil
}

// findSensors lists the temperature inputs, sorted by name, each name once.
func findSensors() []sensorFile {
	var out []sensorFile
	inputs, _ := filepath.Glob(hostSys("class", "hwmon", "hwmon*", "temp*_input"))
	for _, in := range inputs {
		dir := filepath.Dir(in)
		chip := readTrim(filepath.Join(dir, "name"))
		if chip == "" {
			chip = filepath.Base(dir)
		}
		base := strings.TrimSuffix(filepath.Base(in), "_input") // tempN
		label := readTrim(filepath.Join(dir, base+"_label"))
		if label == "" {
			label = base
		}
		out = append(out, sensorFile{name: sensorName(chip + "_" + label), path: in})
	}
	if len(out) == 0 {
		zones, _ := filepath.Glob(hostSys("class", "thermal", "thermal_zone*", "temp"))
		for _, z := range zones {
			typ := readTrim(filepath.Join(filepath.Dir(z), "type"))
			if typ == "" {
				typ = filepath.Base(filepath.Dir(z))
			}
			out = append(out, sensorFile{name: sensorName(typ), path: z})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].name < out[j].name || out[i].name == out[j].name && out[i].path < out[j].path
	})
	seen := map[string]int{}
	for i := range out {
		if n := seen[out[i].name]; n > 0 {
			seen[out[i].name]++
			out[i].name += "_" + strconv.Itoa(n+1)
		} else {
			seen[out[i].name] = 1
		}
	}
	return out
}

// sensorName lower-cases s and turns what is not a letter or digit into _.
func sensorName(s string) string {
	b := []byte(strings.ToLower(strings.TrimSpace(s)))
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}

var (
	_ Collector    = (*sensorsCollector)(nil)
	_ Availability = (*sensorsCollector)(nil)
)
