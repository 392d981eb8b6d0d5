package detectors

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// warmupAlarms counts, over seeds, the AR(1) noise series (standard deviation sd, correlation
// time tau, sampled every 10 s for dur) on which a Watch with the default horizon (2 h) and
// min confidence (0.9) starts a prediction for a level gap units above the start.
func warmupAlarms(seeds int, sd, tau, gap float64, dur time.Duration) (alarms int) {
	const step = 10.0
	for s := 0; s < seeds; s++ {
		r := rand.New(rand.NewPCG(uint64(s), 99))
		rt := NewRobustTrend(DefaultRobustTrendConfig())
		var w Watch
		phi := math.Exp(-step / tau)
		x := sd * r.NormFloat64()
		t0 := int64(1_700_000_000e9)
		for i := 0; float64(i)*step <= dur.Seconds(); i++ {
			t := t0 + int64(float64(i)*step*1e9)
			x = phi*x + sd*math.Sqrt(1-phi*phi)*r.NormFloat64()
			rt.Observe(t, 60+x)
			if w.Update(t, w.Forecast(rt, t, 60+gap, 2*time.Hour), 2*time.Hour, 0.9) == WatchStarted {
				alarms++
				break
			}
		}
	}
	return alarms
}

// The first 20 minutes of a flat series with AR(1) noise (σ 1.5, correlation time 2 min, so
// ρ ≈ 0.92 at 10 s) hold only a few independent samples: a slope fitted to them is no
// evidence of a crossing 20 σ away. Before the Student-t tail, the prior on ρ and the
// discounted warm-up means of the scales, 55 of these 400 series started a prediction (σ and
// ρ were measured on the first samples' residuals: too small and too weakly correlated).
func TestRobustTrendWarmupAR(t *testing.T) {
	if n := warmupAlarms(400, 1.5, 120, 30, 20*time.Minute); n > 0 {
		t.Errorf("%d of 400 AR(1) series predicted to cross 30 units (20 σ) up within 2 h in their first 20 min, want 0", n)
	}
}
