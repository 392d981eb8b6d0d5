package agent

import (
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"
)

func TestCPUCollector(t *testing.T) {
	c := newCollector(t, "cpu", Options{})
	burn(30 * time.Millisecond)
	pts := collect(t, c)
	seen := map[string]bool{}
	for _, p := range pts {
		if p.m != "cpu" {
			t.Fatalf("measurement %q", p.m)
		}
		name := p.tags["cpu"]
		seen[name] = true
		sum := 0.0
		for _, f := range []string{"usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait", "usage_irq", "usage_softirq", "usage_steal"} {
			v := p.num(t, f)
			inRange(t, name+" "+f, v, 0, 100)
			sum += v
		}
		for _, f := range []string{"usage_guest", "usage_guest_nice"} {
			inRange(t, name+" "+f, p.num(t, f), 0, 100)
		}
		// user excludes guest, so the states add up to 100 minus guest time.
		guest := p.num(t, "usage_guest") + p.num(t, "usage_guest_nice")
		if math.Abs(sum+guest-100) > 0.01 {
			t.Errorf("%s: states add up to %v (+ guest %v), want 100", name, sum, guest)
		}
	}
	if !seen["cpu-total"] {
		t.Errorf("no cpu-total point; got %v", seen)
	}
	for i := 0; i < runtime.NumCPU(); i++ {
		if !seen[fmt.Sprintf("cpu%d", i)] {
			t.Errorf("no point for cpu%d; got %v", i, seen)
		}
	}
}

func TestCPUCollectorTotalOnly(t *testing.T) {
	f := false
	c := newCollector(t, "cpu", Options{PerCPU: &f})
	burn(20 * time.Millisecond)
	pts := collect(t, c)
	if len(pts) != 1 || pts[0].tags["cpu"] != "cpu-total" {
		t.Fatalf("percpu false: got %d points %v", len(pts), pts)
	}
}

func TestCPUDeltaClampsNegative(t *testing.T) {
	prev := cpuTimes{user: 10, iowait: 5, idle: 100}
	cur := cpuTimes{user: 12, iowait: 4, idle: 101}
	d := cur.delta(prev)
	if d.user != 2 || d.iowait != 0 || d.idle != 1 {
		t.Fatalf("delta = %+v", d)
	}
}

// burn keeps one core busy for d so the CPU counters move.
func burn(d time.Duration) {
	x := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := 0; i < 1000; i++ {
			x += i
		}
	}
	_ = x
}
