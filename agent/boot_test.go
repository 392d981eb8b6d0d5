package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

func bootPoint(t *testing.T, stateDir string) point {
	t.Helper()
	pts := collect(t, newCollector(t, "boot", Options{StateDir: stateDir}))
	if len(pts) != 1 || pts[0].m != "system" {
		t.Fatalf("points %v", pts)
	}
	return pts[0]
}

func TestBootCollector(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	id, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Skip(err)
	}
	id = bytes.TrimSpace(id)
	p := bootPoint(t, dir)
	var up float64
	if b, err := os.ReadFile("/proc/uptime"); err == nil {
		up = parseUptime(t, b)
	}
	// boot_time = now − uptime, within a few seconds (btime is rounded).
	inRange(t, "boot_time", p.num(t, "boot_time"), float64(time.Now().Unix())-up-5, float64(time.Now().Unix())-up+5)
	if p.num(t, "reboots") != 0 {
		t.Fatalf("first start: reboots %v", p.num(t, "reboots"))
	}
	state := filepath.Join(dir, "boot_id")
	if b, _ := os.ReadFile(state); string(b) != string(id)+" 0\n" {
		t.Fatalf("state %q", b)
	}
	// Agent restart, same boot: no reboot.
	if p := bootPoint(t, dir); p.num(t, "reboots") != 0 {
		t.Fatalf("restart: reboots %v", p.num(t, "reboots"))
	}
	// The state says another boot: a reboot happened since.
	if err := os.WriteFile(state, []byte("00000000-1111-2222-3333-444444444444 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if p := bootPoint(t, dir); p.num(t, "reboots") != 3 {
		t.Fatalf("after reboot: reboots %v", p.num(t, "reboots"))
	}
	if b, _ := os.ReadFile(state); string(b) != string(id)+" 3\n" {
		t.Fatalf("state after reboot %q", b)
	}
	// No state dir: 0, no file anywhere.
	if p := bootPoint(t, ""); p.num(t, "reboots") != 0 {
		t.Fatal("reboots without state")
	}
	// A corrupt state file is an error, and the point is still written.
	if err := os.WriteFile(state, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCollector(t, "boot", Options{StateDir: dir})
	var n int
	err = c.Collect(t.Context(), time.Now(), func(string, []wire.Tag, []wire.Field) { n++ })
	if err == nil || !strings.Contains(err.Error(), "boot state") || n != 1 {
		t.Fatalf("corrupt state: err %v, %d points", err, n)
	}
}

func parseUptime(t *testing.T, b []byte) float64 {
	t.Helper()
	f := bytes.Fields(b)
	v, ok := parseFloat(f[0])
	if !ok {
		t.Fatalf("uptime %q", b)
	}
	return v
}

func TestParseBtime(t *testing.T) {
	if v, ok := parseBtime([]byte("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n")); !ok || v != 1700000000 {
		t.Fatalf("%d %v", v, ok)
	}
	for _, bad := range []string{"", "cpu 1\n", "btime x\n", "btime 0\n"} {
		if _, ok := parseBtime([]byte(bad)); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}
