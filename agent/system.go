package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/shirou/gopsutil/v3/cpu"
	"github.com/shirou/gopsutil/v3/host"
	"github.com/shirou/gopsutil/v3/load"

	"github.com/vigil-sre/vigil/internal/wire"
)

// systemCollector measures load and uptime (measurement system).
//
// load1, load5, load15: the kernel's run-queue averages over 1, 5 and 15
// minutes (/proc/loadavg via gopsutil load.Avg, following HOST_PROC).
// Compare them with n_cpus, the number of logical CPUs: a load above n_cpus
// means runnable tasks wait for a CPU. uptime: seconds since boot, from
// the sysinfo system call (cheap; host.Info, which runs lsb_release, is
// kept out of the tick).
//
// n_cpus is read from /proc/cpuinfo when the collector is built and then
// every cpusRefresh ticks (CPU hot-plug is rare). No other state, no
// options.
type systemCollector struct {
	nCPUs  int
	ticks  int
	fields []wire.Field
}

// cpusRefresh is how many ticks n_cpus is cached.
const cpusRefresh = 60

func init() {
	Register("system", func(Options) (Collector, error) {
		c := &systemCollector{fields: make([]wire.Field, 0, 5)}
		n, err := cpu.Counts(true)
		if err != nil {
			return nil, fmt.Errorf("cpu count: %w", err)
		}
		c.nCPUs = n
		return c, nil
	})
}

// Name implements Collector.
func (c *systemCollector) Name() string { return "system" }

// Collect implements Collector.
func (c *systemCollector) Collect(ctx context.Context, _ time.Time, emit Emit) error {
	avg, err := load.AvgWithContext(ctx)
	if err != nil {
		return fmt.Errorf("load average: %w", err)
	}
	up, err := host.UptimeWithContext(ctx)
	if err != nil {
		return fmt.Errorf("uptime: %w", err)
	}
	if c.ticks++; c.ticks >= cpusRefresh {
		c.ticks = 0
		if n, err := cpu.CountsWithContext(ctx, true); err == nil && n > 0 {
			c.nCPUs = n
		}
	}
	c.fields = append(c.fields[:0],
		wire.F("load1", avg.Load1),
		wire.F("load5", avg.Load5),
		wire.F("load15", avg.Load15),
		wire.I("n_cpus", int64(c.nCPUs)),
		wire.I("uptime", i64(up)),
	)
	emit("system", nil, c.fields)
	return nil
}

var _ Collector = (*systemCollector)(nil)
