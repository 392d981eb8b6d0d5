package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/shirou/gopsutil/v3/net"

	"github.com/vigil-sre/vigil/internal/wire"
)

// netCollector measures network-interface traffic and errors (measurement
// net, tag interface), from /proc/net/dev (gopsutil net.IOCounters,
// following HOST_PROC; it shows the interfaces of the agent's network
// namespace).
//
// Cumulative counters since the interface appeared, written as they are:
// bytes_sent, bytes_recv, packets_sent, packets_recv, err_in, err_out
// (transmission errors), drop_in, drop_out (packets dropped, e.g. a full
// receive queue). Rising drop or error rates precede many service failures.
//
// Interfaces matching an ignore_interfaces glob are skipped (default
// ["lo"]). No state beyond the options.
type netCollector struct {
	ignore []string
	tags   []wire.Tag
	fields []wire.Field
}

func init() {
	Register("net", func(o Options) (Collector, error) {
		ignore := o.IgnoreInterfaces
		if ignore == nil {
			ignore = []string{"lo"}
		}
		if err := validGlobs(ignore); err != nil {
			return nil, fmt.Errorf("ignore_interfaces: %w", err)
		}
		return &netCollector{ignore: ignore, tags: make([]wire.Tag, 1), fields: make([]wire.Field, 0, 8)}, nil
	}, "ignore_interfaces")
}

// Name implements Collector.
func (c *netCollector) Name() string { return "net" }

// Collect implements Collector.
func (c *netCollector) Collect(ctx context.Context, _ time.Time, emit Emit) error {
	stats, err := net.IOCountersWithContext(ctx, true)
	if err != nil {
		return fmt.Errorf("net io counters: %w", err)
	}
	for i := range stats {
		s := &stats[i]
		if matchAny(c.ignore, s.Name) {
			continue
		}
		c.tags[0] = wire.Tag{Key: "interface", Value: s.Name}
		c.fields = append(c.fields[:0],
			wire.I("bytes_sent", i64(s.BytesSent)),
			wire.I("bytes_recv", i64(s.BytesRecv)),
			wire.I("packets_sent", i64(s.PacketsSent)),
			wire.I("packets_recv", i64(s.PacketsRecv)),
			wire.I("err_in", i64(s.Errin)),
			wire.I("err_out", i64(s.Errout)),
			wire.I("drop_in", i64(s.Dropin)),
			wire.I("drop_out", i64(s.Dropout)),
		)
		emit("net", c.tags, c.fields)
	}
	return nil
}

var _ Collector = (*netCollector)(nil)
