package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// fdCollector reports the system-wide file handles (measurement fd), from
// /proc/sys/fs/file-nr (following HOST_PROC): "allocated unused max".
//
// Fields: allocated (file handles in use: allocated minus unused, which is
// 0 on current kernels), max (fs.file-max) and used_percent =
// 100·allocated/max. When it nears 100 %, open(2), socket(2) and accept(2)
// fail everywhere with ENFILE. Cost: one pread per tick (the file is kept open), no
// allocation.
type fdCollector struct {
	file   procFile
	fields []wire.Field
}

func init() {
	Register("fd", func(Options) (Collector, error) {
		return &fdCollector{file: procFile{path: hostProc("sys", "fs", "file-nr")}, fields: make([]wire.Field, 3)}, nil
	})
}

// Name implements Collector.
func (c *fdCollector) Name() string { return "fd" }

// Collect implements Collector.
func (c *fdCollector) Collect(_ context.Context, _ time.Time, emit Emit) error {
	b, err := c.file.read()
	if err != nil {
		return fmt.Errorf("file handles: %w", err)
	}
	used, max, ok := parseFileNr(b)
	if !ok {
		return fmt.Errorf("file handles: %s: unexpected content %q", c.file.path, b)
	}
	c.fields[0] = wire.I("allocated", i64(used))
	c.fields[1] = wire.I("max", i64(max))
	c.fields[2] = wire.F("used_percent", percent(float64(used), float64(max)))
	emit("fd", nil, c.fields)
	return nil
}

// Close closes file-nr.
func (c *fdCollector) Close() error { return c.file.close() }

// parseFileNr parses "allocated unused max" into handles in use and max.
func parseFileNr(b []byte) (used, max uint64, ok bool) {
	var f [4][]byte
	if fieldsN(trimNL(b), f[:]) != 3 {
		return 0, 0, false
	}
	alloc, ok1 := parseUint(f[0])
	unused, ok2 := parseUint(f[1])
	max, ok3 := parseUint(f[2])
	if !ok1 || !ok2 || !ok3 || unused > alloc {
		return 0, 0, false
	}
	return alloc - unused, max, true
}

// trimNL drops trailing newlines.
func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

var _ Collector = (*fdCollector)(nil)
