package backup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchTree writes n MiB of random data as 4 MiB files (plus a few small
// ones) under dir.
func benchTree(b *testing.B, dir string, mib int) int64 {
	var total int64
	for i := 0; i*4 < mib; i++ {
		data := randBytes(uint64(100+i), 4<<20)
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i%8), fmt.Sprintf("f%03d.bin", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(len(data))
	}
	return total
}

// BenchmarkBackup200MB: a full backup of 200 MiB of random data into an
// empty repository (read, chunk, hash, write every chunk with fsync).
func BenchmarkBackup200MB(b *testing.B) {
	src := b.TempDir()
	size := benchTree(b, src, 200)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r, err := Init(filepath.Join(b.TempDir(), "repo"))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := r.Backup(context.Background(), Options{Paths: []string{src}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRestore200MB: a complete restore of that backup (read and check
// every chunk, write, check every file's SHA-256, set modes and mtimes).
func BenchmarkRestore200MB(b *testing.B) {
	src := b.TempDir()
	size := benchTree(b, src, 200)
	r, err := Init(filepath.Join(b.TempDir(), "repo"))
	if err != nil {
		b.Fatal(err)
	}
	s, err := r.Backup(context.Background(), Options{Paths: []string{src}})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		target := filepath.Join(b.TempDir(), fmt.Sprint(i))
		res, err := r.Restore(context.Background(), s.ID, target, RestoreOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.MBps(), "restore_MB/s")
		b.StopTimer()
		os.RemoveAll(target)
		b.StartTimer()
	}
}

// BenchmarkIncrementalUnchanged200MB: an incremental backup of the same
// unchanged 200 MiB: only metadata is compared.
func BenchmarkIncrementalUnchanged200MB(b *testing.B) {
	src := b.TempDir()
	benchTree(b, src, 200)
	r, err := Init(filepath.Join(b.TempDir(), "repo"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.Backup(context.Background(), Options{Paths: []string{src}}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, err := r.Backup(context.Background(), Options{Kind: Incremental, Paths: []string{src}, Time: time.Now().Add(time.Duration(i+1) * time.Second)})
		if err != nil {
			b.Fatal(err)
		}
	}
}
