package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// benchCollect measures one Collect of c per iteration.
func benchCollect(b *testing.B, c Collector) {
	b.Helper()
	var batch wire.Batch
	now := time.Now()
	emit := func(m string, tags []wire.Tag, fields []wire.Field) { batch.Point(m, tags, fields, now) }
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		batch.Reset()
		now = now.Add(time.Second)
		if err := c.Collect(ctx, now, emit); err != nil {
			b.Fatal(err)
		}
	}
	if cl, ok := c.(interface{ Close() error }); ok {
		cl.Close()
	}
}

// BenchmarkSignalCollectors measures the per-tick cost of the collectors
// added for issue 3, each on this machine with its defaults (gpu and smart
// only check whether their tool is due; procstat, probes and logs with a
// typical small configuration).
func BenchmarkSignalCollectors(b *testing.B) {
	for _, name := range []string{"psi", "fd", "netstat", "boot", "clock", "sensors", "gpu", "smart"} {
		b.Run(name, func(b *testing.B) {
			c, err := NewCollector(name, Options{Log: discardLog()})
			if err != nil {
				b.Fatal(err)
			}
			benchCollect(b, c)
		})
	}
	b.Run("procstat_pidfile", func(b *testing.B) {
		pf := filepath.Join(b.TempDir(), "self.pid")
		os.WriteFile(pf, []byte(strings.TrimSpace(itoa(os.Getpid()))), 0o600)
		c, err := NewCollector("procstat", Options{Watches: []ProcWatch{{Name: "self", PidFile: pf}}})
		if err != nil {
			b.Fatal(err)
		}
		benchCollect(b, c)
	})
	b.Run("procstat_scan", func(b *testing.B) {
		// A scan every tick: the worst case (scan_every at or below the interval).
		c, err := NewCollector("procstat", Options{ScanEvery: time.Nanosecond,
			Watches: []ProcWatch{{Name: "self", Process: "agent.test"}}})
		if err != nil {
			b.Fatal(err)
		}
		benchCollect(b, c)
	})
	b.Run("logs_idle", func(b *testing.B) {
		p := filepath.Join(b.TempDir(), "app.log")
		os.WriteFile(p, []byte("x\n"), 0o600)
		c, err := NewCollector("logs", Options{Files: []LogFile{{Name: "app", Path: p,
			Patterns: []LogPattern{{Name: "error", Regex: `\bERROR\b`}, {Name: "oom", Regex: `out of memory`}}}}})
		if err != nil {
			b.Fatal(err)
		}
		benchCollect(b, c)
	})
}

// BenchmarkLogsLines measures counting appended lines: 100 lines of ~100
// bytes per iteration against two patterns.
func BenchmarkLogsLines(b *testing.B) {
	p := filepath.Join(b.TempDir(), "app.log")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	c, err := NewCollector("logs", Options{Files: []LogFile{{Name: "app", Path: p,
		Patterns: []LogPattern{{Name: "error", Regex: `\bERROR\b`}, {Name: "oom", Regex: `out of memory`}}}}})
	if err != nil {
		b.Fatal(err)
	}
	chunk := []byte(strings.Repeat("2026-01-02T03:04:05Z INFO request served path=/v1/predict status=200 latency_ms=12 model=m1\n", 100))
	emit := func(string, []wire.Tag, []wire.Field) {}
	b.ReportAllocs()
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		f.Write(chunk)
		if err := c.Collect(context.Background(), time.Now(), emit); err != nil {
			b.Fatal(err)
		}
	}
}
