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

// TestSeasonBlockYoungCell: a holiday in the first week (the first visit of its hours) fades
// from the profile: a young cell is the plain mean of its blocks, unclipped, so three weeks on
// the same weekday scores well below its first comparison, at 30-min and 1-h blocks. (With
// clipped Rate steps from the second visit on, 30-min blocks keep about 70% of it.) The
// weekday is still far from ordinary then: the clip slows the rest of the recovery.
func TestSeasonBlockYoungCell(t *testing.T) {
	const holiday = 3 // the Wednesday of the first week
	ts, xs := weekly(7, 42, holiday)
	for _, bm := range []int{30, 60} {
		cfg := DefaultSeasonBlockConfig()
		cfg.Block = time.Duration(bm) * time.Minute
		s := NewSeasonBlock(cfg)
		var wed [6]float64 // largest |z| on the Wednesday of each week
		var other float64
		for i := range ts {
			sc := s.Observe(ts[i], xs[i])
			if sc.Raw == 0 {
				continue
			}
			day := (i - 1) / 288
			if day%7 == holiday {
				wed[day/7] = max(wed[day/7], math.Abs(sc.Raw))
			} else if day >= 14 {
				other = max(other, math.Abs(sc.Raw))
			}
		}
		t.Logf("block %d min: |z| on the Wednesdays of weeks 1–6 %.1f, other days from week 3 %.1f", bm, wed, other)
		if later := max(wed[3], wed[4], wed[5]); !(wed[1] > 10*other) || !(later < 0.55*wed[1]) {
			t.Errorf("block %d min: Wednesdays of weeks 4–6 |z| up to %.1f, week 2 %.1f, other days %.1f: want week 2 > 10× other days and weeks 4–6 < 55%% of week 2",
				bm, later, wed[1], other)
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
