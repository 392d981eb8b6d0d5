package forecastbench

import "math"

// Scenarios returns the suite: every failure shape and its stable twin (same shape, no
// failure), in a fixed order.
func Scenarios() []Scenario {
	shapes := []Scenario{
		{Name: "disk_fill_linear", Series: "disk.used_percent", Level: 100, gen: diskLinear},
		{Name: "disk_fill_bursty", Series: "disk.used_percent", Level: 100, gen: diskBursty},
		{Name: "disk_fill_deletions", Series: "disk.used_percent", Level: 100, gen: diskDeletions},
		{Name: "memory_leak", Series: "mem.used_percent", Level: 95, gen: memoryLeak},
		{Name: "thermal_climb", Series: "gpu.temperature_celsius", Level: 90, gen: thermalClimb},
		{Name: "latency_creep", Series: "http.latency_p99_ms", Level: 1000, gen: latencyCreep},
		{Name: "inode_exhaustion", Series: "disk.inodes_used_percent", Level: 100, gen: inodeExhaustion},
	}
	var out []Scenario
	for _, s := range shapes {
		f := s
		f.Failure = true
		st := s
		st.Name = "stable_" + s.Name
		out = append(out, f, st)
	}
	return out
}

// diskLinear: a data disk at 35–75 % growing 0.05–0.5 %/day with a little wander; the failure
// is a runaway writer that fills the rest at a constant rate in 2–24 h.
func diskLinear(g *gen) {
	base := g.uniform(35, 75)
	growth := g.uniform(0.05, 0.5) / 86400
	fill := g.uniform(2, 24) * 3600
	n := ar{sd: 0.03, tau: 600}
	rate := math.NaN()
	g.run(func(t, dt float64) float64 {
		x := base + growth*t + n.next(g.r, dt)
		if t >= g.onset {
			if math.IsNaN(rate) {
				rate = (g.level - x) / fill
			}
			x += rate * (t - g.onset)
		}
		return clamp(x, 0, 100)
	})
}

// diskBursty: batch jobs write 2–8 % of temporary data over 20–60 min, 3–6 times a day, and
// delete it at once 30–120 min later; the failure is a process that keeps dumping 0.5–3 %
// bursts (each over 1–5 min) every ~15 min and never deletes them.
func diskBursty(g *gen) {
	base := g.uniform(40, 70)
	growth := g.uniform(0.05, 0.3) / 86400
	n := ar{sd: 0.02, tau: 300}
	var job struct{ start, write, hold, size float64 }
	job.start = g.uniform(0, 6*3600)
	var burst struct{ start, dur, size, done float64 }
	burst.start = math.Inf(1)
	g.run(func(t, dt float64) float64 {
		x := base + growth*t + n.next(g.r, dt)
		// the temporary data of the current job
		if t >= job.start+job.write+job.hold {
			job.start = t + g.uniform(3, 7)*3600
			job.write, job.hold, job.size = g.uniform(1200, 3600), g.uniform(1800, 7200), g.uniform(2, 8)
		}
		if t >= job.start {
			x += job.size * math.Min(1, (t-job.start)/job.write)
		}
		// the runaway bursts
		if t >= g.onset && math.IsInf(burst.start, 1) {
			burst.start = t
			burst.dur, burst.size = g.uniform(60, 300), g.uniform(0.5, 3)
		}
		if t >= burst.start+burst.dur {
			burst.done += burst.size
			burst.start = t + 900*g.r.ExpFloat64()
			burst.dur, burst.size = g.uniform(60, 300), g.uniform(0.5, 3)
		}
		x += burst.done
		if t >= burst.start {
			x += burst.size * (t - burst.start) / burst.dur
		}
		return clamp(x, 0, 100)
	})
}

// diskDeletions: logs grow 0.3–1.5 %/h and are rotated away every 2–6 h (a sawtooth); the
// failure is a writer at 4–12 %/h whose output a cleanup job trims by 30–70 % every 30–90 min,
// so the disk fills in steps down and ramps up.
func diskDeletions(g *gen) {
	base := g.uniform(40, 65)
	logRate := g.uniform(0.3, 1.5) / 3600
	rotate := g.uniform(2, 6) * 3600
	rate, frac, every := g.uniform(4, 12)/3600, g.uniform(0.3, 0.7), g.uniform(1800, 5400)
	n := ar{sd: 0.02, tau: 300}
	lastRotate, logs := 0.0, 0.0
	kept, since, lastClean := 0.0, 0.0, math.NaN()
	g.run(func(t, dt float64) float64 {
		if t-lastRotate >= rotate {
			lastRotate, logs = t, 0
		}
		logs += logRate * dt
		x := base + logs + n.next(g.r, dt)
		if t >= g.onset {
			if math.IsNaN(lastClean) {
				lastClean = t
			}
			since += rate * dt
			if t-lastClean >= every {
				kept += since * (1 - frac)
				since, lastClean = 0, t
			}
			x += kept + since
		}
		return clamp(x, 0, 100)
	})
}

// memoryLeak: memory at 35–55 % with a daily cycle, wandering load (AR(1), 2.5 %, 5 min) and
// jobs that take 5–15 % at once for 20–180 min, 2–6 times a day; the failure is a leak of
// 2–10 %/h on top.
func memoryLeak(g *gen) {
	base := g.uniform(35, 55)
	amp, phase := g.uniform(3, 8), g.r.Float64()
	leak := g.uniform(2, 10) / 3600
	n := ar{sd: 2.5, tau: 300}
	var job struct{ start, dur, size float64 }
	job.start = g.uniform(0, 8*3600)
	g.run(func(t, dt float64) float64 {
		x := base + daily(t, amp, phase) + n.next(g.r, dt) + 0.5*g.r.NormFloat64()
		if t >= job.start+job.dur {
			job.start = t + g.uniform(4, 12)*3600
			job.dur, job.size = g.uniform(1200, 10800), g.uniform(5, 15)
		}
		if t >= job.start {
			x += job.size
		}
		if t >= g.onset {
			x += leak * (t - g.onset)
		}
		return clamp(x, 0, 100)
	})
}

// thermalClimb: a GPU at 55–68 °C with a daily cycle and wander, heating by 5–12 °C (first
// order, 2 min) while training jobs run; the failure is a failing fan: the temperature
// approaches 35–50 °C more with a time constant of 1–4 h.
func thermalClimb(g *gen) {
	base := g.uniform(55, 68)
	phase := g.r.Float64()
	rise, tauF := g.uniform(35, 50), g.uniform(1, 4)*3600
	n := ar{sd: 1.5, tau: 120}
	var job struct{ start, dur, heat float64 }
	job.start = g.uniform(0, 6*3600)
	load := 0.0
	g.run(func(t, dt float64) float64 {
		if t >= job.start+job.dur {
			job.start = t + g.uniform(1, 6)*3600
			job.dur, job.heat = g.uniform(1800, 14400), g.uniform(5, 12)
		}
		target := 0.0
		if t >= job.start {
			target = job.heat
		}
		load += (target - load) * (1 - math.Exp(-dt/120))
		x := base + daily(t, 3, phase) + load + n.next(g.r, dt) + 0.5*g.r.NormFloat64()
		if t >= g.onset {
			x += rise * (1 - math.Exp(-(t-g.onset)/tauF))
		}
		return x
	})
}

// latencyCreep: p99 latency of 60–150 ms with a daily cycle (±20 %), log-normal noise and
// rare spikes of 1.5–2.5×, never above 90 % of the 1 s SLO; the failure is a creep of
// 50–300 ms/h (a leak in a cache, a growing queue).
func latencyCreep(g *gen) {
	base := g.uniform(60, 150)
	phase := g.r.Float64()
	creep := g.uniform(50, 300) / 3600
	n := ar{sd: 0.1, tau: 600}
	g.run(func(t, dt float64) float64 {
		x := base * (1 + daily(t, 0.2, phase)) * math.Exp(n.next(g.r, dt)+0.15*g.r.NormFloat64())
		if g.r.Float64() < 0.005 {
			x *= g.uniform(1.5, 2.5)
		}
		x = math.Min(x, 0.9*g.level)
		if t >= g.onset {
			x += creep * (t - g.onset)
		}
		return x
	})
}

// inodeExhaustion: inode usage at 20–70 %, temporary files adding 0.5–2 %/day that a nightly
// cleaner removes at once; the failure is a small-file storm of 2–12 %/h.
func inodeExhaustion(g *gen) {
	base := g.uniform(20, 70)
	tmp := g.uniform(0.5, 2) / 86400
	storm := g.uniform(2, 12) / 3600
	g.run(func(t, dt float64) float64 {
		day := math.Mod(t+3*3600, 86400) // the cleaner runs at 03:00
		x := base + tmp*day + 0.005*g.r.NormFloat64()
		if t >= g.onset {
			x += storm * (t - g.onset)
		}
		return clamp(x, 0, 100)
	})
}
