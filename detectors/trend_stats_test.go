package detectors

// Statistical properties of Trend: agreement with a batch fit, calibration of the prediction
// interval and of the confidence.

import (
	"math"
	"testing"
	"time"
)

// The incremental state must agree with a direct two-pass weighted least-squares fit that
// computes every weight explicitly: slope, level, the prediction interval (from the estimators
// written as linear combinations Σ cᵢxᵢ, whose variance is s²·Σcᵢ²) and the confidence.
func TestTrendMatchesBatchFit(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		r := newRand(seed)
		tr := NewTrend(DefaultTrendConfig())
		var ts []int64
		var xs []float64
		sec := 0.0
		for i := 0; i < 80; i++ {
			x := 40 + 0.003*sec + r.NormFloat64()
			ts, xs = append(ts, at(sec)), append(xs, x)
			tr.Observe(at(sec), x)
			if r.Float64() > 0.1 { // 10% duplicate timestamps
				sec += 60 * r.ExpFloat64()
			}
		}
		last := ts[len(ts)-1]
		n := len(xs)
		w, u := make([]float64, n), make([]float64, n)
		var s0, w2, su, sx float64
		for i := range xs {
			u[i] = float64(ts[i]-last) / 1e9
			w[i] = math.Exp(u[i] / DefaultTrendConfig().Window.Seconds())
			s0, w2, su, sx = s0+w[i], w2+w[i]*w[i], su+w[i]*u[i], sx+w[i]*xs[i]
		}
		ubar, xbar := su/s0, sx/s0
		var cuu, cux float64
		for i := range xs {
			cuu += w[i] * (u[i] - ubar) * (u[i] - ubar)
			cux += w[i] * (u[i] - ubar) * (xs[i] - xbar)
		}
		beta := cux / cuu
		var ssr float64
		for i := range xs {
			e := xs[i] - xbar - beta*(u[i]-ubar)
			ssr += w[i] * e * e
		}
		s2 := ssr / (s0 - 2*w2/s0)
		now, h := last+int64(7*time.Second), 20*time.Minute
		ustar := float64(now-last)/1e9 + h.Seconds()
		var varB, varFit float64
		for i := range xs {
			c := w[i] * (u[i] - ubar) / cuu
			g := w[i]/s0 + (ustar-ubar)*c
			varB += c * c
			varFit += g * g
		}
		varB, varFit = s2*varB, s2*varFit
		wantValue := xbar + beta*(ustar-ubar)
		half := 1.96 * math.Sqrt(varFit+s2)

		near := func(what string, got, want float64) {
			if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
				t.Errorf("seed %d: %s = %.12g, batch fit gives %.12g", seed, what, got, want)
			}
		}
		near("slope", tr.Slope(), beta)
		near("level", tr.Level(now), xbar+beta*(float64(now-last)/1e9-ubar))
		value, lo, hi, ok := tr.Predict(now, h)
		if !ok {
			t.Fatalf("seed %d: not ready after %d samples", seed, n)
		}
		near("predict", value, wantValue)
		near("predict lo", lo, wantValue-half)
		near("predict hi", hi, wantValue+half)
		fc := tr.ETA(now, 1e3) // far above: confidence that the slope is positive
		near("confidence", fc.Confidence, normCDF(beta/math.Sqrt(varB)))
	}
}

// Over many seeds and hours, the ~95% interval covers about 95% of outcomes; with sparse samples
// and a long horizon the uncertainty of the fit widens it beyond the noise alone (2·1.96·σ).
func TestTrendPredictCoverage(t *testing.T) {
	const sd = 2.0
	cases := []struct {
		step, horizon      float64 // seconds
		minWidth, maxWidth float64 // mean width, in units of 2·1.96·σ
	}{
		{2, 300, 0.95, 1.1},
		{30, 1800, 1.1, 1.5},
		{60, 3600, 1.3, 3},
	}
	for _, c := range cases {
		var checks, inside int
		var width float64
		for seed := uint64(1); seed <= 6; seed++ {
			r := newRand(seed)
			tr := NewTrend(DefaultTrendConfig())
			pending := map[float64][2]float64{} // target second → interval
			for s := 0.0; s < 6*3600; s += c.step {
				x := 50 - 0.001*s + sd*r.NormFloat64()
				if iv, ok := pending[s]; ok {
					checks++
					width += iv[1] - iv[0]
					if iv[0] <= x && x <= iv[1] {
						inside++
					}
					delete(pending, s)
				}
				tr.Observe(at(s), x)
				if int(s)%120 == 0 && s > 1800 {
					if _, lo, hi, ok := tr.Predict(at(s), time.Duration(c.horizon)*time.Second); ok {
						pending[s+c.horizon] = [2]float64{lo, hi}
					}
				}
			}
		}
		cover := float64(inside) / float64(checks)
		w := width / float64(checks) / (2 * 1.96 * sd)
		t.Logf("step %vs horizon %vs: coverage %d/%d = %.3f, mean width %.2f·2·1.96σ", c.step, c.horizon, inside, checks, cover, w)
		if checks < 600 || cover < 0.92 || cover > 0.98 {
			t.Errorf("step %vs: 95%% interval covered %d of %d (%.3f)", c.step, inside, checks, cover)
		}
		if w < c.minWidth || w > c.maxWidth {
			t.Errorf("step %vs: mean width %.2f·2·1.96σ, want in [%v,%v]", c.step, w, c.minWidth, c.maxWidth)
		}
	}
}

// Pure noise has no trend: the confidence behaves like a p-value (uniform on [0,1]), and
// confident forecasts are rare. Each seed gives one independent draw at the end of 30 min.
func TestTrendConfidenceCalibration(t *testing.T) {
	const seeds = 400
	above := map[float64]int{0.5: 0, 0.9: 0, 0.99: 0}
	for seed := uint64(1); seed <= seeds; seed++ {
		tr := NewTrend(DefaultTrendConfig())
		feedLine(tr, seed, 0, 1800, 1, 50, 0, 2)
		fc := tr.ETA(at(1800), 80)
		for p := range above {
			if fc.Confidence > p {
				above[p]++
			}
		}
	}
	for p, n := range above {
		want := (1 - p) * seeds
		if tol := 4*math.Sqrt(want*p) + 1; math.Abs(float64(n)-want) > tol {
			t.Errorf("confidence > %v in %d of %d noise runs, want %.0f ± %.0f", p, n, seeds, want, tol)
		}
	}
}

// Along one long noise series, confident forecasts stay rare and never steady.
func TestTrendPureNoise(t *testing.T) {
	var checks, confident, okConfident int
	var sum float64
	for _, seed := range []uint64{1, 2, 3} {
		tr := NewTrend(DefaultTrendConfig())
		r := newRand(seed)
		for s := 0.0; s < 8*3600; s++ {
			tr.Observe(at(s), 50+2*r.NormFloat64())
			if s < 1200 || int(s)%10 != 0 {
				continue
			}
			fc := tr.ETA(at(s), 80)
			checks++
			sum += fc.Confidence
			if fc.Confidence > 0.99 {
				confident++
				if fc.OK && fc.ETA < 4*time.Hour {
					okConfident++
				}
			}
		}
	}
	if mean := sum / float64(checks); mean < 0.35 || mean > 0.65 {
		t.Errorf("mean confidence on noise %.3f, want ≈ 0.5", mean)
	}
	if frac := float64(confident) / float64(checks); frac > 0.04 {
		t.Errorf("confidence > 0.99 in %.1f%% of noise checks, want ≈ 1%%", 100*frac)
	}
	if okConfident > 0 {
		t.Errorf("%d confident forecasts of crossing 80 within 4h on pure noise around 50", okConfident)
	}
}
