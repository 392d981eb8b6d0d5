package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vigil-sre/vigil/agent"
	"github.com/vigil-sre/vigil/internal/wire"
)

// simDisk is the demo's simulated data disk: a real directory that a
// writer fills with real files at a steady rate, up to a fixed capacity.
// Its collector measures the directory (the sum of its file sizes) and
// reports it like the disk collector reports a mount: measurement "disk",
// tags path=/data, device=simdisk0, fstype=simfs.
type simDisk struct {
	dir      string
	capacity int64
	start    float64       // used share at start, 0..1
	fillTime time.Duration // from start to 100 %
	tick     time.Duration

	mu     sync.Mutex
	fullAt time.Time // when a write first found the disk full
}

func (d *simDisk) Name() string { return "simdisk" }

// used sums the sizes of the files under dir.
func (d *simDisk) used() (int64, int) {
	var total int64
	var n int
	_ = filepath.WalkDir(d.dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if info, err := e.Info(); err == nil {
				total += info.Size()
				n++
			}
		}
		return nil
	})
	return total, n
}

func (d *simDisk) Collect(_ context.Context, _ time.Time, emit agent.Emit) error {
	used, files := d.used()
	free := d.capacity - used
	if free < 0 {
		free = 0
	}
	emit("disk", []wire.Tag{{Key: "path", Value: "/data"}, {Key: "device", Value: "simdisk0"}, {Key: "fstype", Value: "simfs"}},
		[]wire.Field{
			wire.U("total", uint64(d.capacity)),
			wire.U("used", uint64(used)),
			wire.U("free", uint64(free)),
			wire.F("used_percent", 100*float64(used)/float64(d.capacity)),
			wire.I("files", int64(files)),
		})
	return nil
}

// prepare writes the data that is on the disk from the start, so that the
// first sample already reads the starting level.
func (d *simDisk) prepare() error {
	return writeFile(filepath.Join(d.dir, "base.bin"), int64(float64(d.capacity)*d.start))
}

// fill writes files so that usage grows linearly from start to 100 % in
// fillTime; the last write fills the disk exactly. It returns when the
// disk is full or ctx ends.
func (d *simDisk) fill(ctx context.Context) error {
	base := int64(float64(d.capacity) * d.start)
	perTick := int64(float64(d.capacity-base) * float64(d.tick) / float64(d.fillTime))
	t := time.NewTicker(d.tick)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		used, _ := d.used()
		n := perTick
		if used+n >= d.capacity {
			n = d.capacity - used
		}
		if n <= 0 {
			d.mu.Lock()
			d.fullAt = time.Now()
			d.mu.Unlock()
			return nil
		}
		if err := writeFile(filepath.Join(d.dir, fmt.Sprintf("chunk-%05d.bin", i)), n); err != nil {
			return err
		}
	}
}

// FullAt is when the writer found the disk full (zero if not yet).
func (d *simDisk) FullAt() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fullAt
}

func writeFile(path string, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for n > 0 {
		k := int64(len(buf))
		if n < k {
			k = n
		}
		if _, err := f.Write(buf[:k]); err != nil {
			f.Close()
			return err
		}
		n -= k
	}
	return f.Close()
}

var _ agent.Collector = (*simDisk)(nil)
