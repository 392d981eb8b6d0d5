package detectors

import (
	"math"
	"testing"
)

func TestEnsembleConfigValidate(t *testing.T) {
	bad := map[string]func(*EnsembleConfig){
		"level":      func(c *EnsembleConfig) { c.Level = 1 },
		"rate":       func(c *EnsembleConfig) { c.Rate = 0 },
		"memory":     func(c *EnsembleConfig) { c.Memory = math.NaN() },
		"warmup":     func(c *EnsembleConfig) { c.Warmup = potInit },
		"refractory": func(c *EnsembleConfig) { c.Refractory = 0 },
		"member":     func(c *EnsembleConfig) { c.MAD.Rate = 2 },
	}
	if err := DefaultEnsembleConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range bad {
		c := DefaultEnsembleConfig()
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
}

// TestTailCalibGaussian: on |N(0,1)| surprises the calibrated tail probabilities are roughly
// right: about 1% of samples have P < 1% and about 0.1% have P < 0.1%.
func TestTailCalibGaussian(t *testing.T) {
	cfg := DefaultEnsembleConfig()
	var c tailCalib
	r := newRand(3)
	const n = 200000
	var p2, p3 int
	for i := range n {
		lam := c.logTailProb(math.Log1p(math.Abs(r.NormFloat64())), &cfg)
		if i < 2000 {
			continue
		}
		if lam > math.Log(100) {
			p2++
		}
		if lam > math.Log(1000) {
			p3++
		}
	}
	f2, f3 := float64(p2)/n, float64(p3)/n
	t.Logf("P<1%%: %.4f, P<0.1%%: %.5f", f2, f3)
	if f2 < 0.004 || f2 > 0.025 || f3 < 0.0002 || f3 > 0.004 {
		t.Errorf("P<1%%: %.4f of samples, P<0.1%%: %.5f", f2, f3)
	}
}

// TestEnsembleReportsOnsetOnce: a spike is reported; an equal spike soon after is not (the
// refractory peak still covers it); an equal spike after Refractory samples is reported again.
func TestEnsembleReportsOnsetOnce(t *testing.T) {
	cfg := DefaultEnsembleConfig()
	e := NewEnsemble(cfg)
	r := newRand(5)
	spikes := map[int]bool{1000: true, 1020: true, 1000 + cfg.Refractory + 50: true}
	var got []int
	for i := range 1000 + cfg.Refractory + 100 {
		x := 100 + r.NormFloat64()
		if spikes[i] {
			x += 40
		}
		s := e.Observe(t2026+int64(i)*int64(synStep), x)
		if i >= 1000 && s.Likelihood > 0.9999 {
			got = append(got, i)
		}
		if spikes[i] && !(s.Raw > math.Log(1e4)) {
			t.Errorf("spike at %d: raw surprise %.2f nats, want > ln 1e4", i, s.Raw)
		}
	}
	if len(got) != 2 || got[0] != 1000 || got[1] != 1000+cfg.Refractory+50 {
		t.Errorf("reported at %v, want [1000 %d]", got, 1000+cfg.Refractory+50)
	}
}
