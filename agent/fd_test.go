package agent

import (
	"os"
	"testing"
)

func TestFDCollector(t *testing.T) {
	pts := collect(t, newCollector(t, "fd", Options{}))
	if len(pts) != 1 || pts[0].m != "fd" {
		t.Fatalf("points %v", pts)
	}
	p := pts[0]
	b, err := os.ReadFile("/proc/sys/fs/file-nr")
	if err != nil {
		t.Fatal(err)
	}
	used, max, ok := parseFileNr(b)
	if !ok || p.num(t, "max") != float64(max) {
		t.Fatalf("max %v, file says %d", p.num(t, "max"), max)
	}
	// Handles come and go between the two reads.
	inRange(t, "allocated", p.num(t, "allocated"), float64(used)/2, float64(used)*2)
	inRange(t, "used_percent", p.num(t, "used_percent"), 0, 100)
	if got, want := p.num(t, "used_percent"), 100*p.num(t, "allocated")/p.num(t, "max"); got != want {
		t.Fatalf("used_percent %v, want %v", got, want)
	}
}

func TestParseFileNr(t *testing.T) {
	used, max, ok := parseFileNr([]byte("1536\t10\t9223372036854775807\n"))
	if !ok || used != 1526 || max != 9223372036854775807 {
		t.Fatalf("%d %d %v", used, max, ok)
	}
	for _, bad := range []string{"", "1 2", "1 2 3 4", "a 0 5", "1 2 3x", "1 5 9"} {
		if _, _, ok := parseFileNr([]byte(bad)); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseFileNr(f *testing.F) {
	f.Add([]byte("1536\t0\t9223372036854775807\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if used, _, ok := parseFileNr(b); ok && used > 1<<63 {
			t.Fatalf("used %d from %q", used, b)
		}
	})
}
