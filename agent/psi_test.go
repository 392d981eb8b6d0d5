package agent

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"
)

// logBuffer is a logger whose lines a test can count.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

func TestPSICollector(t *testing.T) {
	if _, err := os.Stat("/proc/pressure/cpu"); err != nil {
		t.Skipf("no PSI on this kernel: %v", err)
	}
	c := newCollector(t, "psi", Options{})
	pts := collect(t, c)
	if len(pts) != 3 {
		t.Fatalf("%d points, want 3", len(pts))
	}
	for i, p := range pts {
		if p.m != "pressure" || p.tags["resource"] != psiResources[i] {
			t.Fatalf("point %d: %s %v", i, p.m, p.tags)
		}
		for _, k := range []string{"some_avg10", "some_avg60", "some_avg300", "full_avg10", "full_avg60", "full_avg300"} {
			inRange(t, p.tags["resource"]+" "+k, p.num(t, k), 0, 100)
		}
		b, _ := os.ReadFile("/proc/pressure/" + psiResources[i])
		now, _ := parsePSI(b)
		// The counter only grows: the collector's reading is not after ours.
		inRange(t, "some_total", p.num(t, "some_total"), 0, now.some[3])
	}
}

func TestPSIUnavailable(t *testing.T) {
	t.Setenv("HOST_PROC", t.TempDir()) // no pressure directory
	log, buf := logBuffer()
	c := newCollector(t, "psi", Options{Log: log})
	for range 3 {
		if pts := collect(t, c); len(pts) != 0 {
			t.Fatalf("points without PSI: %v", pts)
		}
	}
	if n := strings.Count(buf.String(), "unavailable"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, buf)
	}
	if r := c.(Availability).Unavailable(); !strings.Contains(r, "pressure") {
		t.Fatalf("Unavailable() = %q", r)
	}
}

func TestParsePSI(t *testing.T) {
	p, ok := parsePSI([]byte("some avg10=1.50 avg60=0.25 avg300=0.00 total=123456\nfull avg10=0.10 avg60=0.00 avg300=0.00 total=789\n"))
	if !ok || p.some != [4]float64{1.5, 0.25, 0, 123456} || p.full != [4]float64{0.1, 0, 0, 789} || !p.hasFull {
		t.Fatalf("parsed %+v %v", p, ok)
	}
	p, ok = parsePSI([]byte("some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n"))
	if !ok || p.hasFull || p.some[3] != 5 {
		t.Fatalf("without full: %+v %v", p, ok)
	}
	for _, bad := range []string{"", "full avg10=0 avg60=0 avg300=0 total=0\n", "some avg10=x avg60=0 avg300=0 total=0",
		"some avg60=0 avg10=0 avg300=0 total=0", "some avg10=0 avg60=0 avg300=0", "other avg10=0 avg60=0 avg300=0 total=0",
		"some avg10=-1 avg60=0 avg300=0 total=0"} {
		if _, ok := parsePSI([]byte(bad)); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParsePSI(f *testing.F) {
	f.Add([]byte("some avg10=1.50 avg60=0.25 avg300=0.00 total=123456\nfull avg10=0.10 avg60=0.00 avg300=0.00 total=789\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, ok := parsePSI(b)
		if !ok {
			return
		}
		for _, v := range append(p.some[:], p.full[:]...) {
			if v < 0 || v != v {
				t.Fatalf("value %v from %q", v, b)
			}
		}
	})
}
