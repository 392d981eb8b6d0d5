package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// smartCollector reports disk health (measurement smart, tag device, e.g.
// sda, nvme0) with smartctl's JSON output, every `every` (default 5m), in
// the background: `smartctl --scan --json` lists the devices (or option
// devices names them), then `smartctl --json -a -n standby [-d type] DEV`
// reads each, with a timeout per device (default 30s). -n standby leaves
// sleeping disks asleep (they are skipped that round).
//
// Fields, each only when the device reports it:
//
//	healthy              1 when the overall self-assessment passed, else 0
//	reallocated_sectors  ATA attribute 5 (raw); SCSI grown defect list
//	pending_sectors      ATA attribute 197 (raw): sectors waiting to be remapped
//	wear_percent_used    NVMe percentage_used; SCSI endurance indicator; ATA
//	                     100 − the normalised value of attribute 177, 233 or 231
//	temperature_c        current temperature
//	power_on_hours
//	media_errors         NVMe media and data integrity errors
//
// Rising reallocated or pending sectors and NVMe media errors precede disk
// failures by days to weeks. smartctl's exit status is a bit mask: bits 0
// and 1 (bad command line, device not opened) make that device's error;
// the other bits report disk problems that the fields show. Reading SMART
// data usually needs root (or CAP_SYS_RAWIO). Without smartctl the
// collector is unavailable: logged once, no points, no errors. Cost per
// tick: nothing but emitting; 1 + devices forks per `every`.
type smartCollector struct {
	job     toolJob
	devices []string
	timeout time.Duration
}

func init() {
	Register("smart", newSmartCollector, "every", "program", "devices")
}

func newSmartCollector(o Options) (Collector, error) {
	if o.Every < 0 || o.Timeout < 0 {
		return nil, optErr("every", "every and timeout must not be negative")
	}
	for i, d := range o.Devices {
		if !strings.HasPrefix(d, "/dev/") {
			return nil, optErr(fmt.Sprintf("devices[%d]", i), "device %q: want a /dev/ path", d)
		}
	}
	c := &smartCollector{devices: o.Devices, timeout: orDefault(o.Timeout, 30*time.Second)}
	every := orDefault(o.Every, 5*time.Minute)
	c.job = toolJob{
		collector: "smart", tool: "smartctl", program: o.Program,
		every: every, timeout: max(every, c.timeout), // each device has its own timeout
		log: o.logger(), run: c.run,
	}
	return c, nil
}

// Name implements Collector.
func (c *smartCollector) Name() string { return "smart" }

// Collect implements Collector.
func (c *smartCollector) Collect(_ context.Context, now time.Time, emit Emit) error {
	return c.job.collect(now, emit)
}

// Unavailable implements Availability.
func (c *smartCollector) Unavailable() string { return c.job.Unavailable() }

// Close stops a running smartctl and waits for it.
func (c *smartCollector) Close() error { return c.job.close() }

// smartDevice is a device to read and its smartctl -d type ("" = auto).
type smartDevice struct{ name, typ string }

// run scans (unless devices are configured) and reads every device.
func (c *smartCollector) run(ctx context.Context, program string) ([]toolPoint, error) {
	devs, err := c.list(ctx, program)
	if err != nil {
		return nil, err
	}
	var pts []toolPoint
	var errs []error
	for _, d := range devs {
		args := []string{"--json", "-a", "-n", "standby"}
		if d.typ != "" {
			args = append(args, "-d", d.typ)
		}
		dctx, cancel := context.WithTimeout(ctx, c.timeout)
		out, code, err := runTool(dctx, program, append(args, d.name)...)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fields, err := parseSmart(out, code)
		if errors.Is(err, errStandby) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("smartctl %s: %w", d.name, err))
			continue
		}
		if len(fields) > 0 {
			pts = append(pts, toolPoint{measurement: "smart", tags: []wire.Tag{{Key: "device", Value: filepath.Base(d.name)}}, fields: fields})
		}
	}
	return pts, errors.Join(errs...)
}

// list returns the configured devices or those smartctl --scan finds.
func (c *smartCollector) list(ctx context.Context, program string) ([]smartDevice, error) {
	if len(c.devices) > 0 {
		devs := make([]smartDevice, len(c.devices))
		for i, d := range c.devices {
			devs[i] = smartDevice{name: d}
		}
		return devs, nil
	}
	sctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	out, _, err := runTool(sctx, program, "--scan", "--json")
	if err != nil {
		return nil, err
	}
	return parseSmartScan(out)
}

// parseSmartScan parses `smartctl --scan --json`.
func parseSmartScan(out []byte) ([]smartDevice, error) {
	var scan struct {
		Devices []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"devices"`
	}
	if err := json.Unmarshal(out, &scan); err != nil {
		return nil, fmt.Errorf("smartctl --scan: %w", err)
	}
	var devs []smartDevice
	for _, d := range scan.Devices {
		if strings.HasPrefix(d.Name, "/dev/") {
			devs = append(devs, smartDevice{name: d.Name, typ: d.Type})
		}
	}
	return devs, nil
}

var errStandby = errors.New("device in standby")

// smartJSON is what is read of `smartctl --json -a`.
type smartJSON struct {
	Smartctl struct {
		Messages []struct {
			String string `json:"string"`
		} `json:"messages"`
	} `json:"smartctl"`
	SmartStatus *struct {
		Passed bool `json:"passed"`
	} `json:"smart_status"`
	Temperature *struct {
		Current *float64 `json:"current"`
	} `json:"temperature"`
	PowerOnTime *struct {
		Hours *int64 `json:"hours"`
	} `json:"power_on_time"`
	ATA *struct {
		Table []struct {
			ID    int `json:"id"`
			Value int `json:"value"`
			Raw   struct {
				Value int64 `json:"value"`
			} `json:"raw"`
		} `json:"table"`
	} `json:"ata_smart_attributes"`
	NVMe *struct {
		PercentageUsed *float64 `json:"percentage_used"`
		MediaErrors    *int64   `json:"media_errors"`
	} `json:"nvme_smart_health_information_log"`
	SCSIGrownDefects *int64   `json:"scsi_grown_defect_list"`
	SCSIEndurance    *float64 `json:"scsi_percentage_used_endurance_indicator"`
}

// parseSmart converts one device's JSON; exit is smartctl's exit status.
func parseSmart(out []byte, exit int) ([]wire.Field, error) {
	var s smartJSON
	if err := json.Unmarshal(out, &s); err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	if exit&3 != 0 {
		msg := fmt.Sprintf("exit status %d", exit)
		for _, m := range s.Smartctl.Messages {
			if strings.Contains(strings.ToUpper(m.String), "STANDBY") {
				return nil, errStandby
			}
			msg += ": " + m.String
		}
		return nil, errors.New(msg)
	}
	var f []wire.Field
	if s.SmartStatus != nil {
		f = append(f, wire.I("healthy", b01(s.SmartStatus.Passed)))
	}
	wear := -1.0
	if s.ATA != nil {
		for _, a := range s.ATA.Table {
			switch a.ID {
			case 5:
				f = append(f, wire.I("reallocated_sectors", a.Raw.Value))
			case 197:
				f = append(f, wire.I("pending_sectors", a.Raw.Value))
			case 177, 231, 233:
				if wear < 0 && a.Value >= 0 && a.Value <= 100 {
					wear = float64(100 - a.Value)
				}
			}
		}
	}
	if s.SCSIGrownDefects != nil {
		f = append(f, wire.I("reallocated_sectors", *s.SCSIGrownDefects))
	}
	switch {
	case s.NVMe != nil && s.NVMe.PercentageUsed != nil:
		wear = *s.NVMe.PercentageUsed
	case s.SCSIEndurance != nil:
		wear = *s.SCSIEndurance
	}
	if wear >= 0 {
		f = append(f, wire.F("wear_percent_used", wear))
	}
	if s.NVMe != nil && s.NVMe.MediaErrors != nil {
		f = append(f, wire.I("media_errors", *s.NVMe.MediaErrors))
	}
	if s.Temperature != nil && s.Temperature.Current != nil {
		f = append(f, wire.F("temperature_c", *s.Temperature.Current))
	}
	if s.PowerOnTime != nil && s.PowerOnTime.Hours != nil {
		f = append(f, wire.I("power_on_hours", *s.PowerOnTime.Hours))
	}
	return f, nil
}

var (
	_ Collector    = (*smartCollector)(nil)
	_ Availability = (*smartCollector)(nil)
)
