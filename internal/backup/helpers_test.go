package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// state is what a tree holds: per relative path, type, content hash, mode
// and mtime (files only; directories' mtimes are compared separately).
type state map[string]string

func treeState(t *testing.T, root string) state {
	t.Helper()
	st := state{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case rel == ".":
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			st[rel] = "file " + hex.EncodeToString(sum[:]) + " " + info.Mode().String() + " " + info.ModTime().UTC().Format(time.RFC3339Nano)
		case info.IsDir():
			st[rel] = "dir " + info.Mode().String() + " " + info.ModTime().UTC().Format(time.RFC3339Nano)
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			st[rel] = "symlink " + target
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func sameState(t *testing.T, what string, got, want state) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s: %s missing", what, k)
		} else if g != w {
			t.Errorf("%s: %s is %q, want %q", what, k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected %s", what, k)
		}
	}
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 7}))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func writeFile(t *testing.T, path string, data []byte, mode fs.FileMode, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func newRepo(t *testing.T) *Repo {
	t.Helper()
	r, err := Init(filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// logBytes is n bytes of log-like text (compressible, like real logs).
func logBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 9}))
	levels := []string{"INFO", "INFO", "INFO", "WARN", "DEBUG", "ERROR"}
	paths := []string{"/api/v1/orders", "/api/v1/users", "/healthz", "/metrics", "/api/v1/payments"}
	b := make([]byte, 0, n+200)
	ts := int64(1767225600000)
	for len(b) < n {
		ts += int64(r.IntN(2000))
		b = fmt.Appendf(b, "%d %s request method=GET path=%s status=%d duration_ms=%d user=%05d trace=%016x\n",
			ts, levels[r.IntN(len(levels))], paths[r.IntN(len(paths))], []int{200, 200, 200, 404, 500}[r.IntN(5)],
			r.IntN(900), r.IntN(50000), r.Uint64())
	}
	return b[:n]
}

// testPassword and fast key derivation for tests.
var testPassword = []byte("correct horse battery staple")

// formats are the repository formats every round trip runs in.
var formats = []struct {
	name string
	opts InitOptions
}{
	{"v1", InitOptions{Version: 1}},
	{"v2-none", InitOptions{Compression: CompressNone}},
	{"v2-zstd", InitOptions{}},
	{"v2-zstd-encrypted", InitOptions{Encrypt: true, Password: testPassword, scryptLogN: 10}},
	{"v2-none-encrypted", InitOptions{Compression: CompressNone, Encrypt: true, Password: testPassword, scryptLogN: 10}},
}

func newRepoWith(t testing.TB, o InitOptions) *Repo {
	t.Helper()
	r, err := InitWith(filepath.Join(t.TempDir(), "repo"), o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
