package backup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchData are the contents benchmarks back up: random (incompressible,
// like already-compressed models or archives) and log-like text.
var benchData = []struct {
	name string
	gen  func(seed uint64, n int) []byte
}{
	{"random", randBytes},
	{"text", logBytes},
}

// benchFormats are the repository formats benchmarks compare.
var benchFormats = []struct {
	name string
	opts InitOptions
}{
	{"v1", InitOptions{Version: 1}},
	{"v2-zstd", InitOptions{}},
	{"v2-zstd-encrypted", InitOptions{Encrypt: true, Password: testPassword, scryptLogN: 10}},
}

// benchTree writes n MiB of gen's data as 4 MiB files under dir.
func benchTree(b *testing.B, dir string, mib int, gen func(uint64, int) []byte) int64 {
	var total int64
	for i := 0; i*4 < mib; i++ {
		data := gen(uint64(100+i), 4<<20)
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

// BenchmarkBackup200MB: a full backup of 200 MiB into an empty repository
// (read, chunk, hash, compress, encrypt, write every chunk with fsync),
// per repository format and kind of data. stored_% is the repository's
// size as a share of the data's.
func BenchmarkBackup200MB(b *testing.B) {
	for _, d := range benchData {
		src := b.TempDir()
		size := benchTree(b, src, 200, d.gen)
		for _, f := range benchFormats {
			b.Run(f.name+"/"+d.name, func(b *testing.B) {
				b.SetBytes(size)
				b.ReportAllocs()
				var stored int64
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					r, err := InitWith(filepath.Join(b.TempDir(), "repo"), f.opts)
					if err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					s, err := r.Backup(context.Background(), Options{Paths: []string{src}})
					if err != nil {
						b.Fatal(err)
					}
					stored = s.Stats.BytesStored
					b.StopTimer()
					os.RemoveAll(r.Path())
					b.StartTimer()
				}
				b.ReportMetric(100*float64(stored)/float64(size), "stored_%")
			})
		}
	}
}

// BenchmarkRestore200MB: a complete restore of that backup (read,
// authenticate, decompress and check every chunk, write, check every
// file's SHA-256, set modes and mtimes).
func BenchmarkRestore200MB(b *testing.B) {
	for _, d := range benchData {
		src := b.TempDir()
		size := benchTree(b, src, 200, d.gen)
		for _, f := range benchFormats {
			b.Run(f.name+"/"+d.name, func(b *testing.B) {
				r, err := InitWith(filepath.Join(b.TempDir(), "repo"), f.opts)
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
			})
		}
	}
}

// BenchmarkIncrementalUnchanged200MB: an incremental backup of the same
// unchanged 200 MiB: only metadata is compared.
func BenchmarkIncrementalUnchanged200MB(b *testing.B) {
	src := b.TempDir()
	benchTree(b, src, 200, randBytes)
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

// BenchmarkObject: encoding and decoding one 1 MiB chunk in memory (id,
// compression, encryption; no file system), per format and data.
func BenchmarkObject(b *testing.B) {
	for _, d := range benchData {
		data := d.gen(7, 1<<20)
		for _, f := range benchFormats[1:] {
			r := newRepoWith(b, f.opts)
			enc, dec := r.newChunkIO(), r.newChunkIO()
			id := enc.id(data)
			b.Run("encode/"+f.name+"/"+d.name, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					enc.idSum(data)
					if _, err := r.encode(enc, kindChunk, id, data); err != nil {
						b.Fatal(err)
					}
				}
			})
			stored, _ := r.encode(enc, kindChunk, id, data)
			stored = append([]byte(nil), stored...)
			b.Run("decode/"+f.name+"/"+d.name, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				buf := make([]byte, len(stored))
				for i := 0; i < b.N; i++ {
					copy(buf, stored) // decryption works in place
					out, err := r.decode(dec, kindChunk, id, buf)
					if err != nil || !dec.matches(id, out) {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkCopy200MB: copying a 200 MiB snapshot into an empty repository
// (read, authenticate, decompress and check every chunk; name it anew,
// compress, seal and write it with fsync), from an encrypted repository
// into another with its own key, and from format 1 into format 2 with
// and without encryption; per kind of data.
func BenchmarkCopy200MB(b *testing.B) {
	enc := InitOptions{Encrypt: true, Password: testPassword, scryptLogN: 10}
	pairs := []struct {
		name     string
		src, dst InitOptions
	}{
		{"v2-encrypted-to-v2-encrypted", enc, enc},
		{"v1-to-v2-encrypted", InitOptions{Version: 1}, enc},
		{"v1-to-v2-zstd", InitOptions{Version: 1}, InitOptions{}},
	}
	for _, d := range benchData {
		tree := b.TempDir()
		size := benchTree(b, tree, 200, d.gen)
		for _, p := range pairs {
			b.Run(p.name+"/"+d.name, func(b *testing.B) {
				src := newRepoWith(b, p.src)
				if _, err := src.Backup(context.Background(), Options{Paths: []string{tree}}); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(size)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					dst, err := InitWith(filepath.Join(b.TempDir(), "copy"), p.dst)
					if err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					res, err := src.Copy(context.Background(), dst, nil)
					if err != nil || res.Bytes != size {
						b.Fatalf("copy: %+v %v", res, err)
					}
					b.StopTimer()
					os.RemoveAll(dst.Path())
					b.StartTimer()
				}
			})
		}
	}
}
