package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/shirou/gopsutil/v3/mem"

	"github.com/vigil-sre/vigil/internal/wire"
)

// memCollector measures memory and swap, from one read of /proc/meminfo
// (gopsutil mem.VirtualMemory, following HOST_PROC).
//
// Measurement mem, in bytes: total, available (what can be allocated
// without swapping, the kernel's MemAvailable), used (total − free −
// buffers − cached, as gopsutil computes it), free, cached, buffers; and
// used_percent = 100·used/total, available_percent = 100·available/total.
// Memory pressure is best read from available_percent.
//
// Measurement swap, in bytes: total, used, free; used_percent. A host
// without swap reports zeros.
//
// No state, no warm-up, no options.
type memCollector struct {
	fields []wire.Field
}

func init() {
	Register("mem", func(Options) (Collector, error) {
		return &memCollector{fields: make([]wire.Field, 0, 8)}, nil
	})
}

// Name implements Collector.
func (c *memCollector) Name() string { return "mem" }

// Collect implements Collector.
func (c *memCollector) Collect(ctx context.Context, _ time.Time, emit Emit) error {
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return fmt.Errorf("virtual memory: %w", err)
	}
	c.fields = append(c.fields[:0],
		wire.I("total", i64(vm.Total)),
		wire.I("available", i64(vm.Available)),
		wire.I("used", i64(vm.Used)),
		wire.I("free", i64(vm.Free)),
		wire.I("cached", i64(vm.Cached)),
		wire.I("buffers", i64(vm.Buffers)),
		wire.F("used_percent", percent(float64(vm.Used), float64(vm.Total))),
		wire.F("available_percent", percent(float64(vm.Available), float64(vm.Total))),
	)
	emit("mem", nil, c.fields)

	// Swap from the same /proc/meminfo reading (SwapTotal, SwapFree), which
	// spares the extra sysinfo call and /proc/vmstat read of SwapMemory.
	swUsed := vm.SwapTotal - min(vm.SwapFree, vm.SwapTotal)
	c.fields = append(c.fields[:0],
		wire.I("total", i64(vm.SwapTotal)),
		wire.I("used", i64(swUsed)),
		wire.I("free", i64(vm.SwapFree)),
		wire.F("used_percent", percent(float64(swUsed), float64(vm.SwapTotal))),
	)
	emit("swap", nil, c.fields)
	return nil
}

var _ Collector = (*memCollector)(nil)
