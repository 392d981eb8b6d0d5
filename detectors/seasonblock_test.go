package detectors

import (
	"math"
	"testing"
	"time"
)

func TestSeasonBlockConfigValidate(t *testing.T) {
	bad := map[string]func(*SeasonBlockConfig){
		"block 0":   func(c *SeasonBlockConfig) { c.Block = 0 },
		"block 2h":  func(c *SeasonBlockConfig) { c.Block = 2 * time.Hour },
		"rate 0":    func(c *SeasonBlockConfig) { c.Rate = 0 },
		"rate 1":    func(c *SeasonBlockConfig) { c.Rate = 1 },
		"disp NaN":  func(c *SeasonBlockConfig) { c.DispersionRate = math.NaN() },
		"clip 0.5":  func(c *SeasonBlockConfig) { c.Clip = 0.5 },
		"clip +Inf": func(c *SeasonBlockConfig) { c.Clip = math.Inf(1) },
	}
	if err := DefaultSeasonBlockConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range bad {
		c := DefaultSeasonBlockConfig()
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
	ec := DefaultEnsembleConfig()
	ec.Block.Block = 2 * time.Hour
	if ec.Validate() == nil {
		t.Error("ensemble with a 2 h block accepted")
	}
	ec.Block = SeasonBlockConfig{}
	if err := ec.Validate(); err != nil {
		t.Errorf("ensemble with the block member disabled: %v", err)
	}
}

// weekly returns a 5-minute series starting on a Sunday (UTC): a daily bump of height 100 on
// weekdays and 20 on Saturday and Sunday, plus noise of σ 3; holiday is a weekday index (from
// 0) that gets the weekend's shape, −1 for none.
func weekly(seed uint64, days, holiday int) (ts []int64, xs []float64) {
	r := newRand(seed)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC) // a Sunday
	step := 5 * time.Minute
	for i := range days * 288 {
		tt := t0.Add(time.Duration(i) * step)
		day := i / 288
		amp := 100.0
		if wd := tt.Weekday(); wd == time.Saturday || wd == time.Sunday || day == holiday {
			amp = 20
		}
		h := float64(tt.Hour()) + float64(tt.Minute())/60
		x := 50 + amp*math.Max(0, math.Sin(math.Pi*(h-6)/14)) + 3*r.NormFloat64()
		ts, xs = append(ts, tt.UnixNano()), append(xs, x)
	}
	return ts, xs
}

// TestSeasonBlockHoliday: a weekday with a weekend's shape (a holiday) gives block z-scores far
// beyond any of the ordinary days', and nothing is judged in the first week.
func TestSeasonBlockHoliday(t *testing.T) {
	const holiday = 24 // a Wednesday of the fourth week
	ts, xs := weekly(3, 35, holiday)
	s := NewSeasonBlock(DefaultSeasonBlockConfig())
	var worstOrdinary, worstHoliday float64
	judged := 0
	for i := range ts {
		sc := s.Observe(ts[i], xs[i])
		if sc.Raw == 0 {
			continue
		}
		judged++
		if i < 7*288 {
			t.Fatalf("sample %d: judged in the first week (z %.2f)", i, sc.Raw)
		}
		day := (i - 1) / 288 // the block closed by sample i
		if day == holiday {
			worstHoliday = max(worstHoliday, -sc.Raw)
		} else if day < holiday || day > holiday+1 {
			worstOrdinary = max(worstOrdinary, math.Abs(sc.Raw))
		}
	}
	t.Logf("%d blocks judged; largest |z| on ordinary days %.1f, largest −z on the holiday %.1f", judged, worstOrdinary, worstHoliday)
	if judged < 27*48-48 {
		t.Errorf("%d blocks judged, want about %d", judged, 27*48)
	}
	if !(worstHoliday > 3*worstOrdinary) {
		t.Errorf("holiday −z %.1f, ordinary |z| %.1f: want the holiday 3× beyond", worstHoliday, worstOrdinary)
	}
}

// TestSeasonBlockBlocks: a block is judged when the first sample of a later block arrives, with
// the mean of its samples; NaN/±Inf change nothing; Reset forgets everything.
func TestSeasonBlockBlocks(t *testing.T) {
	cfg := DefaultSeasonBlockConfig()
	s := NewSeasonBlock(cfg)
	bl := int64(cfg.Block)
	t0 := t2026 - t2026%hwWeek // a week boundary
	// Two samples per block over 3 weeks, all 10 except those of block odd in week 3: 30, 50.
	const odd = 2*7*48 + 101
	var z float64
	for b := range 3 * 7 * 48 {
		for j := range int64(2) {
			x := 10.0
			if b == odd {
				x = 30 + 20*float64(j)
			}
			ts := t0 + int64(b)*bl + j*bl/2
			if sc := s.Observe(ts, math.Inf(1)); sc != (Score{}) {
				t.Fatal("+Inf scored")
			}
			sc := s.Observe(ts, x)
			if j == 1 && sc != (Score{}) {
				t.Fatalf("block %d: scored by its second sample", b)
			}
			if j == 0 && b == odd+1 {
				z = sc.Raw
			}
		}
	}
	if !(z > 1e3) {
		t.Errorf("block of mean 40 on a profile of 10 with no dispersion: z %.3g, want huge", z)
	}
	s.Reset()
	if *s != (SeasonBlock{cfg: cfg}) {
		t.Error("Reset left state behind")
	}
	if a := testing.AllocsPerRun(100, func() { s.Observe(t2026, 1) }); a != 0 {
		t.Errorf("%v allocations per Observe", a)
	}
}

// TestEnsembleHoliday: the ensemble reports a weekday that looks like a weekend (its seasonal
// block member); with the member disabled it does not report it as strongly.
func TestEnsembleHoliday(t *testing.T) {
	const holiday = 24
	ts, xs := weekly(5, 35, holiday)
	run := func(cfg EnsembleConfig) (best float64) {
		e := NewEnsemble(cfg)
		for i := range ts {
			s := e.Observe(ts[i], xs[i])
			if i >= holiday*288 && i < (holiday+1)*288 {
				best = max(best, s.Likelihood)
			}
		}
		return best
	}
	on := run(DefaultEnsembleConfig())
	cfg := DefaultEnsembleConfig()
	cfg.Block = SeasonBlockConfig{}
	off := run(cfg)
	t.Logf("holiday: likelihood %.6f with the block member, %.6f without", on, off)
	if !(on > 0.999) || !(on > off) {
		t.Errorf("holiday: likelihood %.6f with the block member, %.6f without: want > 0.999 and higher", on, off)
	}
}

func BenchmarkSeasonBlock(b *testing.B) { benchDetector(b, "seasonblock") }

// TestSeasonBlockYoungCell: a holiday in the first week (the first visits of its hours) fades
// from the profile: a young cell is the plain mean of its blocks, unclipped, so after four
// Wednesdays (weeks 1–4, the first a holiday) at most 40% (1-h blocks: one visit per cell and
// week, the plain mean of the first three, then a clipped step) or 60% (30-min blocks: two
// visits, the plain mean of the first three, then clipped steps) of the holiday's offset is
// left in the Wednesday cells. With clipped Rate steps from the second visit on, more than 90%
// would be left.
func TestSeasonBlockYoungCell(t *testing.T) {
	const holiday = 3 // the Wednesday of the first week
	tsH, xsH := weekly(7, 29, holiday)
	tsC, xsC := weekly(7, 29, -1) // the same noise, no holiday
	for _, c := range []struct {
		min  int
		want float64
	}{{30, 0.6}, {60, 0.4}} {
		cfg := DefaultSeasonBlockConfig()
		cfg.Block = time.Duration(c.min) * time.Minute
		// profiles of the Wednesday cells after week 1 and after week 4, with and without
		// the holiday
		prof := func(ts []int64, xs []float64, days int) [24]float64 {
			s := NewSeasonBlock(cfg)
			for i := range days*288 + 1 { // the sample after the last day closes its last block
				s.Observe(ts[i], xs[i])
			}
			var p [24]float64
			for h := range p {
				p[h] = s.prof[bucket(ts[holiday*288+h*12], hwWeek, sbWeekCells)]
			}
			return p
		}
		h1, c1 := prof(tsH, xsH, 7), prof(tsC, xsC, 7)
		h4, c4 := prof(tsH, xsH, 28), prof(tsC, xsC, 28)
		worst, cells := 0.0, 0
		for h := range h1 {
			if off := h1[h] - c1[h]; math.Abs(off) >= 20 {
				worst = max(worst, (h4[h]-c4[h])/off)
				cells++
			}
		}
		t.Logf("block %d min: share of the holiday's offset left after 4 weeks, worst of %d cells: %.2f", c.min, cells, worst)
		if cells < 8 || !(worst <= c.want) {
			t.Errorf("block %d min: %.2f of the holiday's offset left after 4 weeks (%d cells), want ≤ %.2f",
				c.min, worst, cells, c.want)
		}
	}
}

// Huge finite samples (an exporter's MaxFloat64 "infinity") whose block sum overflows must not
// poison the profile or the dispersions: the block is dropped and later blocks score finitely.
func TestSeasonBlockHugeFinite(t *testing.T) {
	cfg := DefaultSeasonBlockConfig()
	s := NewSeasonBlock(cfg)
	bl := int64(cfg.Block)
	t0 := t2026 - t2026%hwWeek
	r := newRand(3)
	judged := 0
	for b := range 4 * 7 * 48 {
		for j := range int64(2) {
			x := 100 + 10*math.Sin(2*math.Pi*float64(b%48)/48) + r.NormFloat64()
			if b == 2*7*48 || b == 2*7*48+50 {
				x = math.MaxFloat64 // two in a block: the sum overflows
				if b == 2*7*48+50 {
					x = -x
				}
			}
			sc := s.Observe(t0+int64(b)*bl+j*bl/2, x)
			if b > 2*7*48+51 && sc.Raw != 0 {
				judged++
				if !finite(sc.Raw) || !finite(sc.Likelihood) {
					t.Fatalf("block %d after the huge samples: score %+v", b, sc)
				}
			}
		}
	}
	if !finite(s.all) || judged < 7*48 {
		t.Errorf("after the huge samples: D = %v, %d blocks judged", s.all, judged)
	}
	for w, p := range s.prof {
		if !finite(p) || math.Abs(p) > 1e3 {
			t.Fatalf("profile cell %d = %v", w, p)
		}
	}
}

// TestSeasonBlockYoungDispersion: with 1-h blocks each hour-of-week cell is visited once a
// week, so an hour's dispersion is learned from a handful of deviations when judging starts.
// On ordinary noise (no anomaly) the early z-scores must stay moderate: a young hour's
// dispersion leans on the global one instead of trusting its first deviation, which by chance
// can be tiny (before, |z| reached 10–20 here, a heavy tail that hides later anomalies).
func TestSeasonBlockYoungDispersion(t *testing.T) {
	cfg := DefaultSeasonBlockConfig()
	cfg.Block = time.Hour
	worst := 0.0
	for seed := uint64(1); seed <= 8; seed++ {
		ts, xs := weekly(seed, 21, -1)
		s := NewSeasonBlock(cfg)
		for i := range ts {
			if sc := s.Observe(ts[i], xs[i]); sc.Raw != 0 {
				worst = max(worst, math.Abs(sc.Raw))
			}
		}
	}
	if worst > 8 {
		t.Errorf("ordinary weeks with 1-h blocks: worst |z| %.1f, want ≤ 8", worst)
	}
	t.Logf("worst |z| %.2f", worst)
}

// Data near the top of float64 (2e307·noise): the hour dispersions' weighted sum overflows
// while their mean does not; the member must keep judging (it dropped every block of an hour
// for good once its sum overflowed).
func TestSeasonBlockHugeScaleKeepsJudging(t *testing.T) {
	cfg := DefaultSeasonBlockConfig()
	s := NewSeasonBlock(cfg)
	bl := int64(cfg.Block)
	t0 := t2026 - t2026%hwWeek
	r := newRand(5)
	perWeek := make([]int, 10)
	for b := range 10 * 7 * 48 {
		x := 2e307 * max(-5, min(5, r.NormFloat64()))
		if sc := s.Observe(t0+int64(b)*bl, x); sc.Raw != 0 {
			perWeek[b/(7*48)]++
		}
	}
	for w := 2; w < 10; w++ {
		if perWeek[w] < 300 {
			t.Errorf("week %d: %d blocks judged, want ≈ 336 (per week: %v)", w, perWeek[w], perWeek)
			break
		}
	}
}
