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

// No GPU here: the parser is tested on a sample of nvidia-smi's output
// (testdata/nvidia-smi.csv, written after nvidia-smi's documented format),
// and the exec path with a script that checks its arguments and prints
// that sample. Only the absence of the tool is tested for real.

func TestParseNvidiaSmi(t *testing.T) {
	out, err := os.ReadFile("testdata/nvidia-smi.csv")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := parseNvidiaSmi(out)
	if err != nil || len(rows) != 3 {
		t.Fatalf("%d rows, %v", len(rows), err)
	}
	get := func(r gpuRow) map[string]float64 {
		m := map[string]float64{}
		for _, f := range r.fields {
			v := (&wire.FieldView{Kind: f.Kind, Int: f.Int, Float: f.Float}).Number
			x, _ := v()
			m[f.Key] = x
		}
		return m
	}
	g0, g1, g2 := get(rows[0]), get(rows[1]), get(rows[2])
	if rows[1].index != "1" || rows[1].name != "NVIDIA A100-SXM4-80GB" || !strings.HasPrefix(rows[1].uuid, "GPU-6a7b") {
		t.Fatalf("row 1 tags %+v", rows[1])
	}
	want0 := map[string]float64{"utilization_percent": 87, "memory_used_bytes": 61440 << 20, "memory_total_bytes": 81920 << 20,
		"memory_used_percent": 75, "temperature_c": 71, "power_watts": 312.45, "ecc_errors_corrected": 0,
		"ecc_errors_uncorrected": 0, "throttle_reasons": 0, "throttled": 0}
	for k, v := range want0 {
		if g0[k] != v {
			t.Errorf("gpu0 %s = %v, want %v", k, g0[k], v)
		}
	}
	// 0x44: software power cap + hardware thermal slowdown.
	if g1["throttle_reasons"] != 0x44 || g1["throttled"] != 1 || g1["ecc_errors_uncorrected"] != 1 || g1["ecc_errors_corrected"] != 12 {
		t.Errorf("gpu1 %v", g1)
	}
	// [N/A] left out; idle (0x1) is not throttled.
	if _, ok := g2["power_watts"]; ok || g2["throttled"] != 0 || g2["throttle_reasons"] != 1 || len(g2) != 7 {
		t.Errorf("gpu2 %v", g2)
	}
	for _, bad := range []string{"0, a, b\n", "x, A100, u, 1, 2, 3, 4, 5, 6, 7, 0x0\n", "0, , u, 1, 2, 3, 4, 5, 6, 7, 0x0\n"} {
		if _, err := parseNvidiaSmi([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseNvidiaSmi(f *testing.F) {
	sample, _ := os.ReadFile("testdata/nvidia-smi.csv")
	f.Add(sample)
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := parseNvidiaSmi(b)
		if err != nil {
			return
		}
		for _, r := range rows {
			if r.index == "" || r.name == "" || len(r.fields) > 10 {
				t.Fatalf("row %+v", r)
			}
		}
	})
}

// fakeTool writes an executable shell script.
func fakeTool(t *testing.T, name, body string) string {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// toolPoints ticks c at now until a tick emits points or returns an error.
func toolPoints(t *testing.T, c Collector, now time.Time) ([]point, error) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		var pts []point
		err := c.Collect(context.Background(), now, func(m string, tags []wire.Tag, fields []wire.Field) {
			p := point{m: m, tags: map[string]string{}, fields: map[string]wire.Field{}}
			for _, tg := range tags {
				p.tags[tg.Key] = tg.Value
			}
			for _, f := range fields {
				p.fields[f.Key] = f
			}
			pts = append(pts, p)
		})
		if err != nil || len(pts) > 0 {
			return pts, err
		}
	}
	t.Fatal("no result after 10s")
	return nil, nil
}

func TestGPUCollectorExec(t *testing.T) {
	sample, _ := filepath.Abs("testdata/nvidia-smi.csv")
	tool := fakeTool(t, "nvidia-smi", `[ "$1" = "`+nvidiaSmiArgs[0]+`" ] && [ "$2" = "`+nvidiaSmiArgs[1]+`" ] || exit 9
cat `+sample)
	c := newCollector(t, "gpu", Options{Program: tool, Every: time.Minute})
	defer c.(interface{ Close() error }).Close()
	t0 := time.Now()
	pts, err := toolPoints(t, c, t0)
	if err != nil || len(pts) != 3 {
		t.Fatalf("%d points, %v", len(pts), err)
	}
	if p := pts[1]; p.m != "gpu" || p.tags["index"] != "1" || p.tags["name"] != "NVIDIA A100-SXM4-80GB" || p.num(t, "throttled") != 1 {
		t.Fatalf("point %v", p)
	}
	// Not run again before `every`: later ticks emit nothing.
	for i := 1; i < 4; i++ {
		if got := collectAtNoErr(t, c, t0.Add(time.Duration(i)*10*time.Second)); len(got) != 0 {
			t.Fatalf("tick %d: %d points before every passed", i, len(got))
		}
	}
	if pts, err := toolPoints(t, c, t0.Add(time.Minute)); err != nil || len(pts) != 3 {
		t.Fatalf("second run: %d points, %v", len(pts), err)
	}
}

// collectAtNoErr ticks c once (after giving a background run time to end).
func collectAtNoErr(t *testing.T, c Collector, now time.Time) []point {
	t.Helper()
	time.Sleep(20 * time.Millisecond)
	return tickAt(t, c, now)
}

func TestGPUCollectorFailures(t *testing.T) {
	failing := fakeTool(t, "nvidia-smi", `echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver" ; exit 9`)
	c := newCollector(t, "gpu", Options{Program: failing})
	defer c.(interface{ Close() error }).Close()
	if _, err := toolPoints(t, c, time.Now()); err == nil || !strings.Contains(err.Error(), "couldn't communicate") {
		t.Fatalf("failing tool: %v", err)
	}
	hanging := fakeTool(t, "nvidia-smi", `exec sleep 30`)
	h, err := NewCollector("gpu", Options{Program: hanging, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer h.(interface{ Close() error }).Close()
	start := time.Now()
	if _, err := toolPoints(t, h, time.Now()); err == nil || !strings.Contains(err.Error(), "deadline") || time.Since(start) > 5*time.Second {
		t.Fatalf("hanging tool: %v after %v", err, time.Since(start))
	}
}

func TestGPUCollectorAbsent(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no nvidia-smi anywhere
	log, buf := logBuffer()
	c := newCollector(t, "gpu", Options{Log: log, Every: time.Second})
	defer c.(interface{ Close() error }).Close()
	t0 := time.Now()
	for i := range 5 { // five due times
		if pts := tickAt(t, c, t0.Add(time.Duration(i)*time.Second)); len(pts) != 0 {
			t.Fatalf("points without the tool: %v", pts)
		}
	}
	if n := strings.Count(buf.String(), "nvidia-smi not found"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, buf)
	}
	if c.(Availability).Unavailable() == "" {
		t.Fatal("Unavailable() empty")
	}
}
