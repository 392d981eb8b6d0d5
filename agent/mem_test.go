package agent

import "testing"

func TestMemCollector(t *testing.T) {
	pts := collect(t, newCollector(t, "mem", Options{}))
	mem, swap := byMeasurement(pts, "mem"), byMeasurement(pts, "swap")
	if len(mem) != 1 || len(swap) != 1 || len(pts) != 2 {
		t.Fatalf("want one mem and one swap point, got %v", pts)
	}
	m := mem[0]
	total := m.num(t, "total")
	if total < 64<<20 {
		t.Fatalf("mem total = %v bytes", total)
	}
	for _, f := range []string{"available", "used", "free", "cached", "buffers"} {
		inRange(t, "mem "+f, m.num(t, f), 0, total)
	}
	inRange(t, "mem used_percent", m.num(t, "used_percent"), 0.1, 100)
	inRange(t, "mem available_percent", m.num(t, "available_percent"), 0.1, 100)
	if got, want := m.num(t, "used_percent"), 100*m.num(t, "used")/total; got != want {
		t.Errorf("used_percent %v, want %v", got, want)
	}
	s := swap[0]
	st := s.num(t, "total")
	inRange(t, "swap used", s.num(t, "used"), 0, st)
	inRange(t, "swap free", s.num(t, "free"), 0, st)
	if s.num(t, "used")+s.num(t, "free") != st {
		t.Errorf("swap used+free != total: %v", s.fields)
	}
	inRange(t, "swap used_percent", s.num(t, "used_percent"), 0, 100)
}
