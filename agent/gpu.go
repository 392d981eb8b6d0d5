package agent

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// gpuCollector reports NVIDIA GPUs (measurement gpu, tags index and name)
// by running
//
//	nvidia-smi --query-gpu=index,name,uuid,utilization.gpu,memory.used,memory.total,
//	  temperature.gpu,power.draw,ecc.errors.corrected.volatile.total,
//	  ecc.errors.uncorrected.volatile.total,clocks_throttle_reasons.active
//	  --format=csv,noheader,nounits
//
// every `every` (default 30s) in the background with a timeout (default
// 10s); the next tick emits the result once. Fields: utilization_percent,
// memory_used_bytes, memory_total_bytes, memory_used_percent,
// temperature_c, power_watts, ecc_errors_corrected and
// ecc_errors_uncorrected (volatile: since the driver loaded; uncorrected
// ECC errors mean the GPU needs a reset or replacement), throttle_reasons
// (nvidia-smi's bitmask) and throttled (1 when a reason that slows a busy
// GPU is active: software power cap 0x4, hardware slowdown 0x8, software
// thermal slowdown 0x20, hardware thermal slowdown 0x40, power brake 0x80;
// idle, application clocks, sync boost and display clocks do not count).
// Values nvidia-smi gives as [N/A] or [Not Supported] are left out. The
// uuid is logged when the set of GPUs changes, not written (tags stay
// bounded).
//
// Without nvidia-smi the collector is unavailable: logged once, no points,
// no errors. Option program sets the tool's path. Cost per tick: nothing
// but emitting; one fork per `every`.
type gpuCollector struct {
	job  toolJob
	last string // index:uuid of the GPUs last seen, for logging changes
}

// nvidiaSmiArgs is the query.
var nvidiaSmiArgs = []string{
	"--query-gpu=index,name,uuid,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw," +
		"ecc.errors.corrected.volatile.total,ecc.errors.uncorrected.volatile.total,clocks_throttle_reasons.active",
	"--format=csv,noheader,nounits",
}

// throttleSlowdown are the throttle-reason bits that count as throttled.
const throttleSlowdown = 0x4 | 0x8 | 0x20 | 0x40 | 0x80

func init() {
	Register("gpu", newGPUCollector, "every", "program")
}

func newGPUCollector(o Options) (Collector, error) {
	if o.Every < 0 || o.Timeout < 0 {
		return nil, optErr("every", "every and timeout must not be negative")
	}
	c := &gpuCollector{}
	c.job = toolJob{
		collector: "gpu", tool: "nvidia-smi", program: o.Program,
		every: orDefault(o.Every, 30*time.Second), timeout: orDefault(o.Timeout, 10*time.Second),
		log: o.logger(), run: c.run,
	}
	return c, nil
}

// Name implements Collector.
func (c *gpuCollector) Name() string { return "gpu" }

// Collect implements Collector.
func (c *gpuCollector) Collect(_ context.Context, now time.Time, emit Emit) error {
	return c.job.collect(now, emit)
}

// Unavailable implements Availability.
func (c *gpuCollector) Unavailable() string { return c.job.Unavailable() }

// Close stops a running nvidia-smi and waits for it.
func (c *gpuCollector) Close() error { return c.job.close() }

// run runs nvidia-smi once (in the job's goroutine).
func (c *gpuCollector) run(ctx context.Context, program string) ([]toolPoint, error) {
	out, code, err := runTool(ctx, program, nvidiaSmiArgs...)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("nvidia-smi: exit status %d: %s", code, firstLine(out))
	}
	gpus, err := parseNvidiaSmi(out)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(gpus))
	pts := make([]toolPoint, len(gpus))
	for i, g := range gpus {
		ids[i] = g.index + ":" + g.uuid
		pts[i] = toolPoint{measurement: "gpu", tags: []wire.Tag{{Key: "index", Value: g.index}, {Key: "name", Value: g.name}}, fields: g.fields}
	}
	if s := strings.Join(ids, ","); s != c.last {
		c.last = s
		c.job.log.Info("GPUs found", "gpus", s)
	}
	return pts, nil
}

// gpuRow is one parsed line of nvidia-smi output.
type gpuRow struct {
	index, name, uuid string
	fields            []wire.Field
}

// parseNvidiaSmi parses the CSV lines of the query (11 columns each).
func parseNvidiaSmi(out []byte) ([]gpuRow, error) {
	var rows []gpuRow
	for n := 1; len(out) > 0; n++ {
		var line []byte
		line, out = nextLine(out)
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		cols := strings.Split(string(line), ",")
		if len(cols) != 11 {
			return nil, fmt.Errorf("nvidia-smi line %d: %d columns, want 11: %q", n, len(cols), line)
		}
		for i := range cols {
			cols[i] = strings.TrimSpace(cols[i])
		}
		if _, err := strconv.Atoi(cols[0]); err != nil || cols[1] == "" {
			return nil, fmt.Errorf("nvidia-smi line %d: bad index or name: %q", n, line)
		}
		rows = append(rows, gpuRow{index: cols[0], name: cols[1], uuid: cols[2], fields: gpuFields(cols)})
	}
	return rows, nil
}

// gpuFields converts columns 3.. of a row; unavailable values are left out.
func gpuFields(cols []string) []wire.Field {
	num := func(s string) (float64, bool) {
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil && v == v && v >= -1e15 && v <= 1e15
	}
	var f []wire.Field
	if v, ok := num(cols[3]); ok {
		f = append(f, wire.F("utilization_percent", v))
	}
	used, okU := num(cols[4])
	total, okT := num(cols[5])
	if okU {
		f = append(f, wire.I("memory_used_bytes", int64(used*(1<<20))))
	}
	if okT {
		f = append(f, wire.I("memory_total_bytes", int64(total*(1<<20))))
	}
	if okU && okT && total > 0 {
		f = append(f, wire.F("memory_used_percent", percent(used, total)))
	}
	if v, ok := num(cols[6]); ok {
		f = append(f, wire.F("temperature_c", v))
	}
	if v, ok := num(cols[7]); ok {
		f = append(f, wire.F("power_watts", v))
	}
	if v, ok := num(cols[8]); ok {
		f = append(f, wire.I("ecc_errors_corrected", int64(v)))
	}
	if v, ok := num(cols[9]); ok {
		f = append(f, wire.I("ecc_errors_uncorrected", int64(v)))
	}
	if r, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(cols[10]), "0x"), 16, 64); err == nil && strings.HasPrefix(strings.ToLower(cols[10]), "0x") {
		f = append(f, wire.I("throttle_reasons", i64(r)), wire.I("throttled", b01(r&throttleSlowdown != 0)))
	}
	return f
}

// firstLine is the first line of b, for error messages.
func firstLine(b []byte) []byte {
	l, _ := nextLine(b)
	if len(l) > 200 {
		l = l[:200]
	}
	return l
}

var (
	_ Collector    = (*gpuCollector)(nil)
	_ Availability = (*gpuCollector)(nil)
)
