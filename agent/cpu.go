package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/shirou/gopsutil/v3/cpu"

	"github.com/vigil-sre/vigil/internal/wire"
)

// cpuCollector measures CPU utilisation: the share of time each core (tag
// cpu=cpuN) and all cores together (cpu=cpu-total) spent in each state
// since the previous tick, in percent.
//
// It reads the cumulative jiffy counters of /proc/stat (gopsutil
// cpu.Times, following HOST_PROC) once per tick and keeps the previous
// reading itself — never cpu.Percent, whose baseline is package-global.
// For a state s over one tick:
//
//	usage_s = 100 · Δs / Δtotal,  total = user+nice+system+idle+iowait+irq+softirq+steal
//
// The kernel counts guest time inside user (and guest_nice inside nice), so
// usage_user and usage_nice exclude it and usage_guest(_nice) report it
// separately, as Telegraf does. A negative delta (iowait may go backwards)
// counts as 0. cpu-total sums the deltas of the cores seen in both readings,
// so a core going offline does not disturb it.
//
// Warm-up: the factory takes a priming reading, so the first tick already
// has a delta; a core seen for the first time is reported from the next
// tick on. Memory: one small record per core.
//
// Options: percpu (default true), totalcpu (default true).
type cpuCollector struct {
	perCPU, total bool
	prev          map[string]cpuTimes
	fields        []wire.Field
	tags          []wire.Tag
}

type cpuTimes struct {
	user, nice, system, idle, iowait, irq, softirq, steal, guest, guestNice float64
}

func init() {
	Register("cpu", newCPUCollector, "percpu", "totalcpu")
}

func newCPUCollector(o Options) (Collector, error) {
	c := &cpuCollector{
		perCPU: boolOr(o.PerCPU, true),
		total:  boolOr(o.TotalCPU, true),
		prev:   map[string]cpuTimes{},
		fields: make([]wire.Field, 0, 10),
		tags:   make([]wire.Tag, 1),
	}
	if err := c.read(context.Background(), nil); err != nil {
		return nil, err
	}
	return c, nil
}

// Name implements Collector.
func (c *cpuCollector) Name() string { return "cpu" }

// Collect implements Collector.
func (c *cpuCollector) Collect(ctx context.Context, _ time.Time, emit Emit) error {
	return c.read(ctx, emit)
}

// read takes a reading; with emit non-nil it emits the deltas against the
// previous reading.
func (c *cpuCollector) read(ctx context.Context, emit Emit) error {
	stats, err := cpu.TimesWithContext(ctx, true)
	if err != nil {
		return fmt.Errorf("cpu times: %w", err)
	}
	var sum cpuTimes
	n := 0
	for i := range stats {
		s := &stats[i]
		cur := cpuTimes{s.User, s.Nice, s.System, s.Idle, s.Iowait, s.Irq, s.Softirq, s.Steal, s.Guest, s.GuestNice}
		prev, seen := c.prev[s.CPU]
		c.prev[s.CPU] = cur
		if !seen || emit == nil {
			continue
		}
		d := cur.delta(prev)
		sum.add(d)
		n++
		if c.perCPU {
			c.emit(emit, s.CPU, d)
		}
	}
	if c.total && n > 0 && emit != nil {
		c.emit(emit, "cpu-total", sum)
	}
	return nil
}

func (c *cpuCollector) emit(emit Emit, name string, d cpuTimes) {
	total := d.user + d.nice + d.system + d.idle + d.iowait + d.irq + d.softirq + d.steal
	if total <= 0 {
		return // no time passed on this core (ticks closer than one jiffy)
	}
	p := func(v float64) float64 { return percent(v, total) }
	c.tags[0] = wire.Tag{Key: "cpu", Value: name}
	c.fields = append(c.fields[:0],
		wire.F("usage_user", p(max(d.user-d.guest, 0))),
		wire.F("usage_system", p(d.system)),
		wire.F("usage_idle", p(d.idle)),
		wire.F("usage_nice", p(max(d.nice-d.guestNice, 0))),
		wire.F("usage_iowait", p(d.iowait)),
		wire.F("usage_irq", p(d.irq)),
		wire.F("usage_softirq", p(d.softirq)),
		wire.F("usage_steal", p(d.steal)),
		wire.F("usage_guest", p(d.guest)),
		wire.F("usage_guest_nice", p(d.guestNice)),
	)
	emit("cpu", c.tags, c.fields)
}

// delta returns t − prev per state, negative deltas clamped to 0.
func (t cpuTimes) delta(prev cpuTimes) cpuTimes {
	d := func(a, b float64) float64 { return max(a-b, 0) }
	return cpuTimes{
		d(t.user, prev.user), d(t.nice, prev.nice), d(t.system, prev.system),
		d(t.idle, prev.idle), d(t.iowait, prev.iowait), d(t.irq, prev.irq),
		d(t.softirq, prev.softirq), d(t.steal, prev.steal), d(t.guest, prev.guest),
		d(t.guestNice, prev.guestNice),
	}
}

func (t *cpuTimes) add(d cpuTimes) {
	t.user += d.user
	t.nice += d.nice
	t.system += d.system
	t.idle += d.idle
	t.iowait += d.iowait
	t.irq += d.irq
	t.softirq += d.softirq
	t.steal += d.steal
	t.guest += d.guest
	t.guestNice += d.guestNice
}

var _ Collector = (*cpuCollector)(nil)
