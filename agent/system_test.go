package agent

import (
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestSystemCollector(t *testing.T) {
	pts := collect(t, newCollector(t, "system", Options{}))
	if len(pts) != 1 || pts[0].m != "system" {
		t.Fatalf("want one system point, got %v", pts)
	}
	p := pts[0]
	for _, f := range []string{"load1", "load5", "load15"} {
		inRange(t, f, p.num(t, f), 0, 1000)
	}
	if n := p.num(t, "n_cpus"); n < float64(runtime.NumCPU()) || n > 4096 {
		t.Errorf("n_cpus = %v, runtime.NumCPU = %d", n, runtime.NumCPU())
	}
	raw, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Skip("no /proc/uptime")
	}
	up, err := strconv.ParseFloat(strings.Fields(string(raw))[0], 64)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.num(t, "uptime"); math.Abs(got-up) > 2 {
		t.Errorf("uptime = %v, /proc/uptime says %v", got, up)
	}
}
