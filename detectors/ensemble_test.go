package detectors

import (
	"math"
	"slices"
	"testing"
	"unsafe"
)

func TestEnsembleConfigValidate(t *testing.T) {
	bad := map[string]func(*EnsembleConfig){
		"level":        func(c *EnsembleConfig) { c.Level = 1 },
		"rate":         func(c *EnsembleConfig) { c.Rate = 0 },
		"memory":       func(c *EnsembleConfig) { c.Memory = math.NaN() },
		"warmup":       func(c *EnsembleConfig) { c.Warmup = potInit },
		"refractory":   func(c *EnsembleConfig) { c.Refractory = 0 },
		"repeat":       func(c *EnsembleConfig) { c.Repeat = -1 },
		"repeat_gain":  func(c *EnsembleConfig) { c.RepeatGain = math.NaN() },
		"confirm":      func(c *EnsembleConfig) { c.Confirm = -1 },
		"confirm_w":    func(c *EnsembleConfig) { c.ConfirmWeight = math.Inf(1) },
		"multiplicity": func(c *EnsembleConfig) { c.Multiplicity = -1 },
		"season":       func(c *EnsembleConfig) { c.Season = 1 },
		"corrob<0":     func(c *EnsembleConfig) { c.Corroboration = -0.5 },
		"corrobNaN":    func(c *EnsembleConfig) { c.Corroboration = math.NaN() },
		"member":       func(c *EnsembleConfig) { c.MAD.Rate = 2 },
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

// histFractions feeds n statistics from gen to a long-memory calibrator and returns, per sign,
// the fraction of all samples (after the first 2000) judged to have P < 0.1% and P < 0.01%.
func histFractions(gen func() float64) (f3, f4 [2]float64) {
	cfg := DefaultEnsembleConfig()
	var c histCalib
	const n = 400000
	for i := range n {
		z := gen()
		sd := 0
		if z < 0 {
			sd = 1
		}
		lam := c.logTailProb(math.Log1p(math.Abs(z)), sd, &cfg)
		if i < 2000 {
			continue
		}
		if lam > math.Log(1e3) {
			f3[sd] += 1.0 / n
		}
		if lam > math.Log(1e4) {
			f4[sd] += 1.0 / n
		}
	}
	return f3, f4
}

// TestHistCalibTails: beyond its tail start (Tail = 0.5% per sign) the long-memory
// calibrator's one-sided tail probabilities are about right where its exponential model holds,
// for a power-law statistic (|z| = V^(−1/2) − 1, V uniform, so ln(1+|z|) is exponential):
// about 0.1% of samples per sign have P < 0.1% and 0.01% have P < 0.01%. For a normal
// statistic, whose tail is much thinner, they are conservative (MinExcess keeps the fitted tail
// from being steeper than 0.2 nats): fewer, never more.
func TestHistCalibTails(t *testing.T) {
	r := newRand(4)
	sign := func(v float64) float64 {
		if r.Float64() < 0.5 {
			return -v
		}
		return v
	}
	f3, f4 := histFractions(func() float64 { return sign(1/math.Sqrt(1-r.Float64()) - 1) })
	for sd := range f3 {
		t.Logf("power law, sign %d: P<0.1%%: %.5f, P<0.01%%: %.6f", sd, f3[sd], f4[sd])
		if f3[sd] < 0.0006 || f3[sd] > 0.0015 || f4[sd] < 0.00004 || f4[sd] > 0.0002 {
			t.Errorf("power law, sign %d: P<0.1%%: %.5f of samples, P<0.01%%: %.6f", sd, f3[sd], f4[sd])
		}
	}
	f3, f4 = histFractions(r.NormFloat64)
	for sd := range f3 {
		t.Logf("normal, sign %d: P<0.1%%: %.5f, P<0.01%%: %.6f", sd, f3[sd], f4[sd])
		if f3[sd] > 0.0012 || f4[sd] > 0.00012 {
			t.Errorf("normal, sign %d: P<0.1%%: %.5f of samples, P<0.01%%: %.6f", sd, f3[sd], f4[sd])
		}
	}
}

// TestHistCalibLongMemory: spikes that recur all through a series' history stop being
// surprising, the first such spike in a quiet series is very surprising, and so is the first
// dip in a series that only ever spiked up.
func TestHistCalibLongMemory(t *testing.T) {
	cfg := DefaultEnsembleConfig()
	var spiky, quiet histCalib
	r := newRand(6)
	const spike = 30.0
	var z float64
	for i := range 8000 {
		z = math.Abs(r.NormFloat64())
		sd := 0
		if r.Float64() < 0.5 {
			sd = 1
		}
		quiet.logTailProb(math.Log1p(z), sd, &cfg)
		if i%200 == 0 { // a routine upward spike every 200 samples
			z, sd = spike, 0
		}
		spiky.logTailProb(math.Log1p(z), sd, &cfg)
	}
	u := math.Log1p(spike)
	ls, lq, ld := spiky.logTailProb(u, 0, &cfg), quiet.logTailProb(u, 0, &cfg), spiky.logTailProb(u, 1, &cfg)
	t.Logf("λ of a spike: %.1f after routine spikes, %.1f in a quiet series; of a dip: %.1f", ls, lq, ld)
	if !(ls < math.Log(1000)) {
		t.Errorf("routine spike: λ = %.1f, want < ln 1000", ls)
	}
	if !(lq > math.Log(1e6)) {
		t.Errorf("first spike in a quiet series: λ = %.1f, want > ln 1e6", lq)
	}
	if !(ld > math.Log(1e6)) {
		t.Errorf("first dip after upward spikes: λ = %.1f, want > ln 1e6", ld)
	}
}

// A burst that builds up over a few samples is reported at its first step; the next steps are
// reported again only while each is RepeatGain nats stronger than the last report, so small
// steps are merged into one report and a much stronger one still gets through.
func TestEnsembleRepeatMergesBuildUp(t *testing.T) {
	run := func(repeat int, gain float64, steps []float64) (reports []int, raw []float64) {
		cfg := DefaultEnsembleConfig()
		cfg.Repeat, cfg.RepeatGain = repeat, gain
		cfg.Confirm = 0 // reports at their onsets: the confirmation would fold the steps into one
		e := NewEnsemble(cfg)
		r := newRand(21)
		for i := range 1010 {
			x := 100 + r.NormFloat64()
			if j := i - 1000; j >= 0 && j < len(steps) {
				x += steps[j]
			}
			s := e.Observe(t2026+int64(i)*int64(synStep), x)
			if i >= 1000 {
				raw = append(raw, s.Raw)
				if s.Likelihood > 0 {
					reports = append(reports, i-1000)
				}
			}
		}
		return reports, raw
	}
	climb := []float64{5, 10, 20, 40}
	rep, raw := run(0, 0, climb)
	if len(rep) < 3 || rep[0] != 0 {
		t.Fatalf("Repeat 0: a burst building up over 4 samples reported at %v (surprises %.2f), want at most of its steps", rep, raw)
	}
	// The same build-up with a gain bar above its growth over the first step: one report.
	gain := slices.Max(raw[1:len(climb)]) - raw[0] + 0.1
	if rep, _ := run(30, gain, climb); len(rep) != 1 || rep[0] != 0 {
		t.Errorf("Repeat 30, gain %.2f: reported at %v, want once at the first step", gain, rep)
	}
	// A much stronger spike right after is still reported.
	if rep, raw := run(30, gain, []float64{5, 0, 0, 400}); len(rep) != 2 || rep[1] != 3 {
		t.Errorf("Repeat 30: a much stronger spike 3 samples after a report: reports at %v (surprises %.2f), want at 0 and 3", rep, raw)
	}
}

// TestEnsembleRoutineSpikes: a series whose history is full of equal spikes stops reporting
// them with high likelihood, while its first spike of the same size, after a quiet start,
// is reported.
func TestEnsembleRoutineSpikes(t *testing.T) {
	e := NewEnsemble(DefaultEnsembleConfig())
	r := newRand(8)
	var first float64
	late := 0
	for i := range 9000 {
		x := 100 + r.NormFloat64()
		if i >= 2000 && i%250 == 0 {
			x += 20
		}
		s := e.Observe(t2026+int64(i)*int64(synStep), x)
		if i == 2000 {
			first = s.Likelihood
		}
		if i >= 6000 && s.Likelihood > 0.9999 {
			late++
		}
	}
	t.Logf("first spike: likelihood %.6f; reports > 0.9999 among the last 12 spikes: %d", first, late)
	if !(first > 0.9999) {
		t.Errorf("first spike: likelihood %.6f, want > 0.9999", first)
	}
	if late > 2 {
		t.Errorf("%d of the last 12 routine spikes reported above 0.9999, want ≤ 2", late)
	}
}

// TestCorroborate: a surprise seen by both views counts in full, one seen by a single view pays
// d nats (never below 0), d = 0 is the plain maximum, and a context surprise corroborates value
// surprises for Tolerance samples after it, but not the other way round.
func TestCorroborate(t *testing.T) {
	type step struct{ lv, lc, want float64 }
	for _, c := range []struct {
		name  string
		d     float64
		tol   int
		steps []step
	}{
		{"both views", 1, 0, []step{{8, 3, 8}, {3, 8, 8}}},
		{"one view", 1, 0, []step{{8, 0, 7}, {0, 8, 7}}},
		{"never negative", 1, 0, []step{{0.5, 0, 0}, {0, 0.5, 0}, {0, 0, 0}}},
		{"d = 0", 0, 0, []step{{8, 0, 8}, {0, 8, 8}, {8, 3, 8}}},
		{"context 2 samples before", 1, 2, []step{{0, 4, 3}, {0, 0, 0}, {8, 0, 8}}},
		{"context 3 samples before", 1, 2, []step{{0, 4, 3}, {0, 0, 0}, {0, 0, 0}, {8, 0, 7}}},
		{"values first: no tolerance", 1, 5, []step{{8, 0, 7}, {0, 6, 5}}},
		{"tolerance 0 is the same sample", 1, 0, []step{{0, 4, 3}, {8, 0, 7}}},
	} {
		cfg := DefaultEnsembleConfig()
		cfg.Corroboration, cfg.Tolerance = c.d, c.tol
		e := NewEnsemble(cfg)
		for i, s := range c.steps {
			if got := e.corroborate(s.lv, s.lc); got != s.want {
				t.Errorf("%s: step %d corroborate(%g, %g) = %g, want %g", c.name, i, s.lv, s.lc, got, s.want)
			}
		}
	}
}

// TestEnsembleCorroborationQuieter: on heavy-tailed noise without anomalies (Student-t-like
// outliers among familiar sequences), the default Corroboration alarms less often than none,
// while a level shift to never-seen values is still reported.
func TestEnsembleCorroborationQuieter(t *testing.T) {
	run := func(d float64) (alarms int, shift float64) {
		cfg := DefaultEnsembleConfig()
		cfg.Corroboration = d
		cfg.Multiplicity = 0 // it would discount both runs' noise alarms alike
		e := NewEnsemble(cfg)
		r := newRand(13)
		for i := range 12000 {
			x := 100 + r.NormFloat64()/math.Max(0.05, math.Abs(r.NormFloat64()))
			if i >= 11000 {
				x += 500
			}
			s := e.Observe(t2026+int64(i)*int64(synStep), x)
			if i >= 1000 && i < 11000 && s.Likelihood > 0.999 {
				alarms++
			}
			if i == 11000 {
				shift = s.Likelihood
			}
		}
		return alarms, shift
	}
	on, shiftOn := run(DefaultEnsembleConfig().Corroboration)
	off, _ := run(0)
	t.Logf("alarms over 10000 noise samples: %d with corroboration, %d without; shift %.6f", on, off, shiftOn)
	if on >= off {
		t.Errorf("alarms: %d with corroboration, %d without, want fewer", on, off)
	}
	if !(shiftOn > 0.9999) {
		t.Errorf("level shift: likelihood %.6f, want > 0.9999", shiftOn)
	}
}

// TestLog1pFast: log1pFast agrees with math.Log1p to 1e-9 from 0 to 1e9 (Raw's clamp).
func TestLog1pFast(t *testing.T) {
	r := newRand(9)
	xs := []float64{0, 1e-300, 1e-12, 1e-6, 0.4142135623, 0.4142135624, 1, 2, 3, 1e9}
	for range 100000 {
		xs = append(xs, math.Exp(r.Float64()*50-28))
	}
	for _, x := range xs {
		if got, want := log1pFast(x), math.Log1p(x); math.Abs(got-want) > 1e-9 {
			t.Fatalf("log1pFast(%g) = %.12g, math.Log1p = %.12g", x, got, want)
		}
	}
}

// TestSeasonScale: a statistic that routinely disperses 5× more at noon is divided by about 5
// at noon and hardly at the other hours (only by the noise of a ~10-sample dispersion), while
// the other member's statistic, without the burst, is hardly divided at noon either; Season 0
// leaves both alone everywhere.
func TestSeasonScale(t *testing.T) {
	cfg := DefaultEnsembleConfig()
	var s seasonScale
	r := newRand(7)
	const step = int64(5 * 60 * 1e9)
	noon := func(i int) bool { return bucket(t2026+int64(i)*step, hwDay, seasonBins) == 12 }
	n := 20 * 288
	for i := range n {
		z := r.NormFloat64()
		if noon(i) {
			z *= 5
		}
		s.scale(bucket(t2026+int64(i)*step, hwDay, seasonBins), [2]float64{z, r.NormFloat64()}, &cfg)
	}
	at := func(i, j int) float64 { // member j's divisor for z = 10 at sample i, without absorbing it
		c := s
		return 10 / c.scale(bucket(t2026+int64(i)*step, hwDay, seasonBins), [2]float64{10, 10}, &cfg)[j]
	}
	i := n
	for !noon(i) {
		i++
	}
	if d := at(i, 0); d < 3 || d > 7 {
		t.Errorf("divisor at noon %.2f, want about 5", d)
	}
	if d := at(i, 1); d > 1.5 {
		t.Errorf("the other member's divisor at noon %.2f, want about 1", d)
	}
	for h := 1; h < 12; h++ {
		if d := at(i+12*h, 0); d > 1.5 {
			t.Errorf("divisor %d hours after noon %.2f, want about 1", h, d)
		}
	}
	cfg.Season = 0
	if d := at(i, 0); d != 1 {
		t.Errorf("Season 0: divisor at noon %.2f, want 1", d)
	}
}

// TestEnsembleQuietOnRoutineBurstHour: a series whose noise is 5× larger every day at noon
// alarms less often once the ensemble has seen a few such days than without seasonal scaling.
func TestEnsembleQuietOnRoutineBurstHour(t *testing.T) {
	count := func(season float64) int {
		cfg := DefaultEnsembleConfig()
		cfg.Season = season
		e := NewEnsemble(cfg)
		r := newRand(11)
		const step = int64(5 * 60 * 1e9)
		alarms := 0
		for i := range 14 * 288 {
			ts := t2026 + int64(i)*step
			x := 100 + r.NormFloat64()
			if bucket(ts, hwDay, seasonBins) == 12 {
				x += 4 * r.NormFloat64()
			}
			if s := e.Observe(ts, x); i >= 4*288 && s.Likelihood > 0.999 {
				alarms++
			}
		}
		return alarms
	}
	on, off := count(DefaultEnsembleConfig().Season), count(0)
	t.Logf("alarms over 10 days: %d with seasonal scaling, %d without", on, off)
	if on >= off || on > 3 {
		t.Errorf("alarms over 10 days: %d with seasonal scaling, %d without", on, off)
	}
}

// TestEnsembleConfirm: a report below the alarm level is held for Confirm samples and emitted
// with their mean surprise, weighted ConfirmWeight, added, so a lasting shift ranks above a
// lone blip of the same onset; an onset at or above the alarm level, or a report reaching it
// during the hold, is emitted at once; Confirm 0 emits every report at its onset.
func TestEnsembleConfirm(t *testing.T) {
	// run feeds 1000 noisy samples, then a jump of size sz at sample 1000, kept if step, and
	// returns the raw surprises and likelihoods from sample 1000 on.
	run := func(confirm int, sz float64, step bool) (raw, lik []float64) {
		cfg := DefaultEnsembleConfig()
		cfg.Confirm = confirm
		cfg.Multiplicity = 0 // the emitted likelihoods below are those of confirmation alone
		e := NewEnsemble(cfg)
		r := newRand(31)
		for i := range 1020 {
			x := 100 + r.NormFloat64()
			if i == 1000 || (step && i > 1000) {
				x += sz
			}
			s := e.Observe(t2026+int64(i)*int64(synStep), x)
			if i >= 1000 {
				raw, lik = append(raw, s.Raw), append(lik, s.Likelihood)
			}
		}
		return raw, lik
	}
	reports := func(lik []float64) (at []int) {
		for i, l := range lik {
			if l > 0 {
				at = append(at, i)
			}
		}
		return at
	}
	// emitted is the likelihood of a report of λ0 confirmed by raw[1..j] over d samples.
	emitted := func(lam0 float64, raw []float64, j, d int) float64 {
		sum := 0.0
		for _, v := range raw[1 : j+1] {
			sum += v
		}
		return likelihood(lam0+DefaultEnsembleConfig().ConfirmWeight*sum/float64(d), 0.9999)
	}
	const d = 5
	if DefaultEnsembleConfig().Confirm != d {
		t.Fatalf("default Confirm %d, this test assumes %d", DefaultEnsembleConfig().Confirm, d)
	}

	// A jump of 7σ: onset below the alarm level, and the step stays below it for d samples.
	rawB, likB0 := run(0, 7, false)
	rawS, likS0 := run(0, 7, true)
	if !(rawB[0] > 0 && rawB[0] < alarmLam) || slices.Max(rawS[1:d+1]) >= alarmLam {
		t.Fatalf("precondition: onset λ %.2f, step λ %.2f, want the onset in (0, %.2f) and the step below it",
			rawB[0], rawS[:d+1], alarmLam)
	}
	if a, b := reports(likB0), reports(likS0); len(a) == 0 || a[0] != 0 || len(b) == 0 || b[0] != 0 || likB0[0] != likS0[0] {
		t.Fatalf("Confirm 0: blip reported at %v, step at %v (%.6f, %.6f), want both at 0, equal", a, b, likB0[0], likS0[0])
	}
	_, likB := run(d, 7, false)
	_, likS := run(d, 7, true)
	if a := reports(likB); len(a) != 1 || a[0] != d {
		t.Errorf("Confirm %d: blip reported at %v, want once at %d", d, a, d)
	} else if want := emitted(rawB[0], rawB, d, d); math.Abs(likB[d]-want) > 1e-12 {
		t.Errorf("Confirm %d: blip likelihood %.8f, want %.8f", d, likB[d], want)
	}
	if a := reports(likS); len(a) == 0 || a[0] != d {
		t.Errorf("Confirm %d: step first reported at %v, want at %d", d, a, d)
	} else if !(likS[d] > likB[d]) {
		t.Errorf("Confirm %d: step likelihood %.6f, blip %.6f, want the step higher", d, likS[d], likB[d])
	}

	// A jump of 10σ: the onset is above the alarm level, emitted at once.
	if raw, lik := run(d, 10, false); !(raw[0] >= alarmLam) || lik[0] != likelihood(raw[0], 0.9999) {
		t.Errorf("onset λ %.2f: likelihood %.6f at the onset, want %.6f", raw[0], lik[0], likelihood(raw[0], 0.9999))
	}

	// A 5σ step: the onset is held, a report during the hold reaches the alarm level and is
	// emitted at once, with the evidence seen so far.
	raw, lik0 := run(0, 5, true)
	j := slices.IndexFunc(raw, func(v float64) bool { return v >= alarmLam })
	if !(raw[0] < alarmLam) || j < 1 || j >= d || lik0[j] == 0 {
		t.Fatalf("precondition: 5σ step surprises %.2f, Confirm 0 likelihoods %.4f, want a report ≥ %.2f within %d samples of a weaker onset",
			raw[:d+1], lik0[:d+1], alarmLam, d)
	}
	_, lik := run(d, 5, true)
	if a := reports(lik); len(a) == 0 || a[0] != j {
		t.Errorf("5σ step: reported at %v, want first at %d", a, j)
	} else if want := emitted(raw[j], raw, j, d); math.Abs(lik[j]-want) > 1e-12 {
		t.Errorf("5σ step: likelihood %.8f at %d, want %.8f", lik[j], j, want)
	}
}

// TestEnsembleMultiplicity: a series that keeps reporting has each report emitted with its
// surprise lowered by ln k, k the exponentially weighted count of its reports over the last
// ~Multiplicity samples (this one included; no change while k ≤ 1), and Multiplicity 0 emits
// the same reports at full surprise.
func TestEnsembleMultiplicity(t *testing.T) {
	cfg := DefaultEnsembleConfig()
	off := cfg
	off.Multiplicity = 0
	e, e0 := NewEnsemble(cfg), NewEnsemble(off)
	// unlik inverts likelihood(·, 0.9999) for a positive likelihood.
	unlik := func(l float64) float64 {
		lam := -math.Log1p(-l)
		if lam > alarmLam {
			lam = alarmLam + math.Expm1(lam-alarmLam)
		}
		return lam
	}
	r := newRand(17)
	k, emitted, lowered := 0.0, 0, 0
	for i := range 6000 {
		x := 100 + r.NormFloat64()
		if i >= 1000 && i%400 == 0 {
			x += 5 + 3*r.Float64() // spikes the series keeps reporting
		}
		ts := t2026 + int64(i)*int64(synStep)
		s, s0 := e.Observe(ts, x), e0.Observe(ts, x)
		if e.n > int64(cfg.Warmup) {
			k -= k / float64(cfg.Multiplicity)
			if e.age == 0 { // a report (non-maximum suppression let it through)
				k++
			}
		}
		if math.Abs(e.reports-k) > 1e-9 {
			t.Fatalf("sample %d: report count %.6f, want %.6f", i, e.reports, k)
		}
		if (s.Likelihood > 0) != (s0.Likelihood > 0) || s.Raw != s0.Raw {
			t.Fatalf("sample %d: likelihood %.6f raw %.4f, with Multiplicity 0 %.6f raw %.4f: want the same reports",
				i, s.Likelihood, s.Raw, s0.Likelihood, s0.Raw)
		}
		if s.Likelihood == 0 {
			continue
		}
		lam, lam0 := unlik(s.Likelihood), unlik(s0.Likelihood)
		want := math.Log(max(1, k))
		if d := lam0 - lam; math.Abs(d-want) > 1e-6*(1+lam0) {
			t.Errorf("sample %d: surprise lowered by %.6f, want ln k = %.6f (k = %.3f)", i, d, want, k)
		}
		emitted++
		if want > math.Ln2 {
			lowered++
		}
	}
	if emitted < 5 || lowered < 3 {
		t.Errorf("%d reports, %d with k > 2: want ≥ 5 and ≥ 3", emitted, lowered)
	}
}

// TestEnsembleLayout: the long-memory calibrators are the first field of Ensemble and a multiple
// of 64 bytes long, and each one's histogram starts 64 bytes in, so on a page-aligned Ensemble
// (a large allocation) each calibrator's per-sample fields fill one cache line and no bin of the
// histogram straddles two; the ensemble stays under 36 KiB.
func TestEnsembleLayout(t *testing.T) {
	var e Ensemble
	if off := unsafe.Offsetof(e.hist); off != 0 {
		t.Errorf("hist at offset %d, want 0", off)
	}
	if size := unsafe.Sizeof(e.hist[0]); size%64 != 0 {
		t.Errorf("histCalib is %d bytes, want a multiple of 64", size)
	}
	if off := unsafe.Offsetof(e.hist[0].ws); off != 64 {
		t.Errorf("histCalib.ws at offset %d, want 64", off)
	}
	if size := unsafe.Sizeof(e); size > 36<<10 {
		t.Errorf("Ensemble is %d bytes, want at most 36 KiB", size)
	}
	p := NewEnsemble(DefaultEnsembleConfig())
	if a := uintptr(unsafe.Pointer(p)); a%64 != 0 {
		t.Errorf("NewEnsemble's result at %#x, not 64-byte aligned", a)
	}
}
