package agent

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/shirou/gopsutil/v3/disk"

	"github.com/vigil-sre/vigil/internal/wire"
)

// diskioCollector measures block-device activity (measurement diskio, tag
// name = device name such as sda or nvme0n1), from /proc/diskstats
// (gopsutil disk.IOCounters, following HOST_PROC).
//
// All fields are cumulative counters since boot, written as they are (rates
// are derived downstream, as with Telegraf): reads, writes (completed
// requests), merged_reads, merged_writes, read_bytes, write_bytes,
// read_time, write_time (ms spent by requests), io_time (ms the device was
// busy; its rate over wall time is utilisation), weighted_io_time (ms
// weighted by queue depth), and the gauge iops_in_progress (requests in
// flight). A rising io_time rate close to 1000 ms/s means a saturated disk.
//
// Devices whose counters are all zero are skipped by gopsutil; devices
// matching an ignore_devices glob are skipped (default ["loop*", "ram*"]).
// Points are emitted in name order. No state beyond the options.
type diskioCollector struct {
	ignore []string
	names  []string
	tags   []wire.Tag
	fields []wire.Field
}

func init() {
	Register("diskio", func(o Options) (Collector, error) {
		ignore := o.IgnoreDevices
		if ignore == nil {
			ignore = []string{"loop*", "ram*"}
		}
		if err := validGlobs(ignore); err != nil {
			return nil, fmt.Errorf("ignore_devices: %w", err)
		}
		return &diskioCollector{ignore: ignore, tags: make([]wire.Tag, 1), fields: make([]wire.Field, 0, 11)}, nil
	}, "ignore_devices")
}

// Name implements Collector.
func (c *diskioCollector) Name() string { return "diskio" }

// Collect implements Collector.
func (c *diskioCollector) Collect(ctx context.Context, _ time.Time, emit Emit) error {
	stats, err := disk.IOCountersWithContext(ctx)
	if err != nil {
		return fmt.Errorf("disk io counters: %w", err)
	}
	c.names = c.names[:0]
	for name := range stats {
		if !matchAny(c.ignore, name) {
			c.names = append(c.names, name)
		}
	}
	sort.Strings(c.names)
	for _, name := range c.names {
		s := stats[name]
		c.tags[0] = wire.Tag{Key: "name", Value: name}
		c.fields = append(c.fields[:0],
			wire.I("reads", i64(s.ReadCount)),
			wire.I("writes", i64(s.WriteCount)),
			wire.I("merged_reads", i64(s.MergedReadCount)),
			wire.I("merged_writes", i64(s.MergedWriteCount)),
			wire.I("read_bytes", i64(s.ReadBytes)),
			wire.I("write_bytes", i64(s.WriteBytes)),
			wire.I("read_time", i64(s.ReadTime)),
			wire.I("write_time", i64(s.WriteTime)),
			wire.I("io_time", i64(s.IoTime)),
			wire.I("weighted_io_time", i64(s.WeightedIO)),
			wire.I("iops_in_progress", i64(s.IopsInProgress)),
		)
		emit("diskio", c.tags, c.fields)
	}
	return nil
}

var _ Collector = (*diskioCollector)(nil)
