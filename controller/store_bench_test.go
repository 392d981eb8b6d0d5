package controller

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

// benchRuleExprs are 10 realistic conditions; the benchmark loads each
// with 5 thresholds: 50 rules.
var benchRuleExprs = []string{
	`eta("disk.used_percent{path=/data}", 100) < duration("%dh")`,
	`eta("disk.inodes_used_percent", 100) < duration("%dh") && value("disk.inodes_used_percent") > 50`,
	`value("mem.used_percent") > 9%d && value("swap.used_percent") > 50`,
	`anomaly("cpu.usage_user{cpu=cpu-total}") > 0.99 && value("cpu.usage_user{cpu=cpu-total}") > 8%d`,
	`avg_over("cpu.usage_user{cpu=cpu-total}", duration("%dm")) > 90`,
	`rate("net.err_in{interface=eth0}", duration("%dm")) > 10`,
	`since_seen() > duration("%dm")`,
	`value("system.load5") > %d * value("system.n_cpus")`,
	`forecast("mem.used_percent", duration("%dh")) > 95 && labels.role == "gpu"`,
	`max_over("disk.used_percent{path=/data}", duration("%dm")) > 99 || gaps(duration("10m")) > 10`,
}

func benchRules(b *testing.B) *rules.Set {
	var sb strings.Builder
	sb.WriteString("groups:\n  - name: bench\n    interval: 10s\n    rules:\n")
	for i, e := range benchRuleExprs {
		for k := 1; k <= 5; k++ {
			fmt.Fprintf(&sb, "      - name: r%d_%d\n        expr: '%s'\n", i, k, fmt.Sprintf(e, k))
		}
	}
	set, err := rules.Parse("bench.yaml", []byte(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	return set
}

// benchStore: hosts with the agent's default series (cpu, mem, swap,
// system, two disks, net), 12 samples 10 s apart each.
func benchStore(b *testing.B, hosts int, e *rules.Engine) *store {
	st, dec := testStore(b), &wire.Decoder{}
	st.syncWindows(e)
	var sb strings.Builder
	for h := range hosts {
		sb.Reset()
		role := []string{"gpu", "cpu", "db"}[h%3]
		for i := range 12 {
			ts := tBase.Add(time.Duration(i) * 10 * time.Second).UnixNano()
			x := float64(h%50 + i)
			fmt.Fprintf(&sb, "cpu,host=h%05d,role=%s,cpu=cpu-total usage_user=%g,usage_system=5,usage_idle=%g %d\n", h, role, x, 95-x, ts)
			fmt.Fprintf(&sb, "mem,host=h%05d,role=%s used_percent=%g,available_percent=%g %d\n", h, role, 40+x/2, 60-x/2, ts)
			fmt.Fprintf(&sb, "swap,host=h%05d,role=%s used_percent=10 %d\n", h, role, ts)
			fmt.Fprintf(&sb, "system,host=h%05d,role=%s load1=1,load5=%g,load15=1,n_cpus=8 %d\n", h, role, x/10, ts)
			for _, p := range []string{"/", "/data"} {
				fmt.Fprintf(&sb, "disk,host=h%05d,role=%s,path=%s,device=sda,fstype=ext4 used_percent=%g,inodes_used_percent=%g %d\n", h, role, p, 30+x, 5+x/10, ts)
			}
			fmt.Fprintf(&sb, "net,host=h%05d,role=%s,interface=eth0 bytes_recv=%d,bytes_sent=%d,err_in=%d %d\n", h, role, i*1000, i*800, i, ts)
		}
		feed(b, st, dec, sb.String())
	}
	return st
}

// BenchmarkEvalRound10kx50: one evaluation round of 50 rules over 10,000
// hosts on the controller's real store (windows, forecasts, detectors).
// ns/eval is per rule and host; the budget is 1 s per round on one core.
func BenchmarkEvalRound10kx50(b *testing.B) { benchRound(b, 10000) }

// BenchmarkEvalRound100x50: the same over 100 hosts.
func BenchmarkEvalRound100x50(b *testing.B) { benchRound(b, 100) }

func benchRound(b *testing.B, hosts int) {
	set := benchRules(b)
	e := rules.NewEngine(set)
	st := benchStore(b, hosts, e)
	now := tBase.Add(2 * time.Minute)
	e.Eval(now, st, nil, nil)
	if s := e.Stats(); s.Evaluations != uint64(hosts*50) || s.Errors != 0 {
		b.Fatalf("stats %+v", s)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		now = now.Add(10 * time.Second)
		e.Eval(now, st, nil, nil)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*hosts*50), "ns/eval")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e9, "s/round")
}

// BenchmarkEvalChanged100x50: the evaluation that follows one host's batch
// of the agent's default series (17 samples) with the 50 rules of
// BenchmarkEvalRound (45 read those series; since_seen is left to rounds),
// over 100 hosts. ns/op is per batch, without decoding it.
func BenchmarkEvalChanged100x50(b *testing.B) {
	const hosts = 100
	e := rules.NewEngine(benchRules(b))
	st := benchStore(b, hosts, e)
	dec := &wire.Decoder{}
	batch := func(h, i int) string {
		ts := tBase.Add(2*time.Minute + time.Duration(i)*time.Second).UnixNano()
		x := float64(h%50 + i%20)
		var sb strings.Builder
		fmt.Fprintf(&sb, "cpu,host=h%05d,role=gpu,cpu=cpu-total usage_user=%g,usage_system=5,usage_idle=%g %d\n", h, x, 95-x, ts)
		fmt.Fprintf(&sb, "mem,host=h%05d,role=gpu used_percent=%g,available_percent=%g %d\n", h, 40+x/2, 60-x/2, ts)
		fmt.Fprintf(&sb, "swap,host=h%05d,role=gpu used_percent=10 %d\n", h, ts)
		fmt.Fprintf(&sb, "system,host=h%05d,role=gpu load1=1,load5=%g,load15=1,n_cpus=8 %d\n", h, x/10, ts)
		for _, p := range []string{"/", "/data"} {
			fmt.Fprintf(&sb, "disk,host=h%05d,role=gpu,path=%s,device=sda,fstype=ext4 used_percent=%g,inodes_used_percent=%g %d\n", h, p, 30+x, 5+x/10, ts)
		}
		fmt.Fprintf(&sb, "net,host=h%05d,role=gpu,interface=eth0 bytes_recv=%d,bytes_sent=%d,err_in=%d %d\n", h, 20000+i*1000, 20000+i*800, 20+i, ts)
		return sb.String()
	}
	st.nextPass()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		feed(b, st, dec, batch(i%hosts, 1+i/hosts))
		b.StartTimer()
		e.EvalChanged(tBase.Add(2*time.Minute+time.Duration(1+i/hosts)*time.Second), st, storeChanges{st}, nil, nil)
		st.nextPass()
	}
	b.StopTimer()
	s := e.Stats()
	if s.Errors != 0 || s.Triggered < uint64(b.N)*40 {
		b.Fatalf("stats: %d evaluations after %d batches, %d errors", s.Triggered, b.N, s.Errors)
	}
	b.ReportMetric(float64(s.Triggered)/float64(b.N), "evals/op")
}
