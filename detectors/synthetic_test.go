package detectors

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden files")

// synStep is the sampling interval of the synthetic series: 5 minutes, as in most NAB files.
const synStep = 5 * time.Minute

// synDay is the number of samples per day.
const synDay = int(24 * time.Hour / synStep)

// synCase is one synthetic series with one anomaly starting at Onset (-1: none).
type synCase struct {
	Name  string
	Xs    []float64
	Times []int64 // nil: regular sampling every synStep
	Onset int
}

// synAmp is the amplitude of the daily sine of synBase: 10, or 0 for the non-seasonal variant.
var synAmp = 10.0

// synBase is a daily sine (amplitude synAmp) around 100 with N(0,1) noise, seeded.
func synBase(seed uint64, n int) []float64 {
	r := newRand(seed)
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = 100 + synAmp*math.Sin(2*math.Pi*float64(i)/float64(synDay)) + r.NormFloat64()
	}
	return xs
}

// synCasesFlat is synCases without the daily sine (the seasonal break then is a new sine).
func synCasesFlat() []synCase {
	synAmp = 0
	defer func() { synAmp = 10 }()
	return synCases()
}

// synCases builds the synthetic scenarios: every one but "flat line" and "no anomaly" has an
// anomaly at Onset, 4 days into the series.
func synCases() []synCase {
	n, on := 5*synDay, 4*synDay
	spike := synBase(1, n)
	spike[on] += 15
	shift := synBase(2, n)
	for i := on; i < n; i++ {
		shift[i] += 8
	}
	trend := synBase(3, n)
	for i := on; i < n; i++ {
		trend[i] += 0.2 * float64(i-on)
	}
	burst := synBase(4, n)
	r := newRand(44)
	for i := on; i < on+60; i++ {
		burst[i] += 6 * r.NormFloat64()
	}
	season := synBase(5, n)
	for i := on; i < n; i++ { // the daily pattern flips
		season[i] -= 20 * math.Sin(2*math.Pi*float64(i)/float64(synDay))
	}
	flat := make([]float64, n)
	for i := range flat {
		flat[i] = 42
	}
	flat[on] = 43
	gaps := synBase(6, n)
	times := make([]int64, n)
	for i := range times { // a 6-hour outage of the collector, then a spike right after
		times[i] = t2026 + int64(i)*int64(synStep)
		if i >= on-72 {
			times[i] += int64(6 * time.Hour)
		}
	}
	gaps[on] += 15
	return []synCase{
		{"no_anomaly", synBase(7, n), nil, -1},
		{"spike", spike, nil, on},
		{"level_shift", shift, nil, on},
		{"trend_change", trend, nil, on},
		{"variance_burst", burst, nil, on},
		{"seasonal_break", season, nil, on},
		{"flat_line_blip", flat, nil, on},
		{"gap_then_spike", gaps, times, on},
	}
}

func (c synCase) time(i int) int64 {
	if c.Times != nil {
		return c.Times[i]
	}
	return t2026 + int64(i)*int64(synStep)
}

// synRun feeds a fresh detector the case and returns the scores.
func synRun(name string, c synCase) []Score {
	d, err := NewDetector(name)
	if err != nil {
		panic(err)
	}
	out := make([]Score, len(c.Xs))
	for i, x := range c.Xs {
		out[i] = d.Observe(c.time(i), x)
	}
	return out
}

// synDetectors are the detectors of this change (ewma has its own tests).
var synDetectors = []string{"mad", "cusum", "pagehinkley", "holtwinters", "levelshift", "relentropy", "context", "shape", "vigil"}

// maxLik returns the largest likelihood in s[from:to] and its index.
func maxLik(s []Score, from, to int) (float64, int) {
	best, at := -1.0, -1
	for i := max(from, 0); i < min(to, len(s)); i++ {
		if s[i].Likelihood > best {
			best, at = s[i].Likelihood, i
		}
	}
	return best, at
}

// TestSyntheticGolden records, for each detector and scenario, the strongest likelihood in the
// day before the anomaly and in the hour after its onset; testdata/golden/synthetic.txt holds
// the expected values (go test -run SyntheticGolden -update rewrites it).
func TestSyntheticGolden(t *testing.T) {
	var b strings.Builder
	for _, name := range synDetectors {
		for k, c := range append(synCases(), synCasesFlat()...) {
			if k >= len(synCases()) {
				c.Name = "flat/" + c.Name
			}
			s := synRun(name, c)
			on := c.Onset
			if on < 0 {
				on = 4 * synDay
			}
			before, _ := maxLik(s, on-synDay, on)
			after, at := maxLik(s, on, on+synAfter)
			fmt.Fprintf(&b, "%-12s %-15s before=%.6f after=%.6f at=%+d\n", name, c.Name, before, after, at-on)
		}
	}
	path := filepath.Join("testdata", "golden", "synthetic.txt")
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("synthetic scores changed; diff against %s:\n%s", path, lineDiff(string(want), got))
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "- %s\n+ %s\n", wl, gl)
		}
	}
	return b.String()
}

// synAfter is the number of samples after an onset in which an anomaly must be seen (3 hours).
const synAfter = 36

// TestSyntheticCatches checks the behaviour the golden file must keep: which detector sees
// which anomaly (its likelihood in the hour after the onset beats everything in the day before).
func TestSyntheticCatches(t *testing.T) {
	// seasonal series; the level-shift family is meant for non-seasonal ones (see flatCatches).
	catches := map[string][]string{
		"mad":         {"spike", "gap_then_spike", "flat_line_blip"},
		"holtwinters": {"spike", "level_shift", "variance_burst", "gap_then_spike", "flat_line_blip"},
		"relentropy":  {"flat_line_blip"},
		"vigil":       {"spike", "level_shift", "variance_burst", "gap_then_spike", "flat_line_blip"},
	}
	flatCatches := map[string][]string{
		"mad":         {"spike", "level_shift", "gap_then_spike", "flat_line_blip"},
		"cusum":       {"level_shift", "trend_change"},
		"pagehinkley": {"level_shift", "variance_burst"},
		"levelshift":  {"level_shift", "variance_burst"},
		"relentropy":  {"level_shift", "trend_change", "variance_burst", "seasonal_break", "flat_line_blip"},
		"vigil":       {"spike", "level_shift", "variance_burst", "seasonal_break", "gap_then_spike"},
	}
	check := func(kind string, cs []synCase, catches map[string][]string) {
		cases := map[string]synCase{}
		for _, c := range cs {
			cases[c.Name] = c
		}
		for name, list := range catches {
			for _, cn := range list {
				c := cases[cn]
				s := synRun(name, c)
				before, _ := maxLik(s, c.Onset-synDay, c.Onset)
				after, _ := maxLik(s, c.Onset, c.Onset+synAfter)
				if !(after > before) {
					t.Errorf("%s misses %s %s: max likelihood %.6f after the onset, %.6f the day before",
						name, kind, cn, after, before)
				}
			}
		}
	}
	check("seasonal", synCases(), catches)
	check("flat", synCasesFlat(), flatCatches)
	cases := map[string]synCase{}
	for _, c := range synCases() {
		cases[c.Name] = c
	}
	// With no anomaly the ensemble's smallest per-sample tail probability over the last day
	// (288 samples) must stay above 1e-4.
	c := cases["no_anomaly"]
	if l, at := maxLik(synRun("vigil", c), 4*synDay, 5*synDay); l >= 0.9999 {
		t.Errorf("vigil alarms on plain seasonal noise: %.4f at %d", l, at)
	}
}

// TestNonFiniteNeverPoisons inserts NaN and ±Inf into every scenario: they must score Score{}
// and every other score must be exactly what it is without them.
func TestNonFiniteNeverPoisons(t *testing.T) {
	bad := []float64{math.NaN(), math.Inf(1), math.Inf(-1)}
	for _, name := range synDetectors {
		for _, c := range synCases() {
			clean := synRun(name, c)
			d, _ := NewDetector(name)
			for i, x := range c.Xs {
				if i%97 == 5 {
					for _, b := range bad {
						if s := d.Observe(c.time(i), b); s != (Score{}) {
							t.Fatalf("%s/%s: %v scored %+v", name, c.Name, b, s)
						}
					}
				}
				s := d.Observe(c.time(i), x)
				if s != clean[i] {
					t.Fatalf("%s/%s: sample %d scored %+v after non-finite input, %+v without", name, c.Name, i, s, clean[i])
				}
				if !finite(s.Raw) || !(s.Likelihood >= 0 && s.Likelihood <= 1) {
					t.Fatalf("%s/%s: sample %d: bad score %+v", name, c.Name, i, s)
				}
			}
		}
	}
}

// TestHugeValues: values near the float64 limits give finite scores and do not break the state.
func TestHugeValues(t *testing.T) {
	for _, name := range synDetectors {
		d, _ := NewDetector(name)
		xs := synBase(9, 400)
		xs[300], xs[301] = 1e300, -1e300
		for i, x := range xs {
			s := d.Observe(t2026+int64(i)*int64(synStep), x)
			if !finite(s.Raw) || !(s.Likelihood >= 0 && s.Likelihood <= 1) {
				t.Fatalf("%s: sample %d (%g): bad score %+v", name, i, x, s)
			}
		}
		if s := d.Observe(t2026+int64(len(xs))*int64(synStep), xs[0]); !finite(s.Raw) {
			t.Errorf("%s: state broken after huge values: %+v", name, s)
		}
	}
}

// TestResetAndWarmup: each detector is silent during its warm-up and Reset restores the
// initial state exactly.
func TestResetAndWarmup(t *testing.T) {
	warm := map[string]int{"mad": 30, "cusum": 30, "pagehinkley": 30, "holtwinters": 30, "levelshift": 30, "relentropy": 94, "context": 150, "shape": 150, "vigil": 150}
	c := synCases()[1]
	for _, name := range synDetectors {
		d, _ := NewDetector(name)
		first := make([]Score, len(c.Xs))
		for i, x := range c.Xs {
			first[i] = d.Observe(c.time(i), x)
			if i < warm[name] && first[i] != (Score{}) {
				t.Fatalf("%s: sample %d scored %+v during warm-up", name, i, first[i])
			}
		}
		if name != "vigil" && name != "cusum" && name != "pagehinkley" && first[warm[name]] == (Score{}) {
			t.Errorf("%s: first sample after warm-up not scored", name)
		}
		d.Reset()
		for i, x := range c.Xs {
			if s := d.Observe(c.time(i), x); s != first[i] {
				t.Fatalf("%s: after Reset sample %d scored %+v, first run %+v", name, i, s, first[i])
			}
		}
	}
}

func TestObserveAllocs(t *testing.T) {
	xs := synBase(10, 2000)
	for _, name := range synDetectors {
		d, _ := NewDetector(name)
		i := 0
		if a := testing.AllocsPerRun(1000, func() {
			d.Observe(t2026+int64(i)*int64(synStep), xs[i%len(xs)])
			i++
		}); a != 0 {
			t.Errorf("%s: %v allocations per Observe", name, a)
		}
	}
}

// TestResetAllocs: the controller resets a series' detector when it learns that a series it
// took for a counter is a gauge; that must not allocate (the ensemble is ~36 KiB).
func TestResetAllocs(t *testing.T) {
	for _, name := range synDetectors {
		d, _ := NewDetector(name)
		if a := testing.AllocsPerRun(100, d.Reset); a != 0 {
			t.Errorf("%s: %v allocations per Reset", name, a)
		}
	}
}

func benchDetector(b *testing.B, name string) {
	xs := synBase(11, 4096)
	xs[1000] += 50
	d, _ := NewDetector(name)
	b.ReportAllocs()
	var sink float64
	i := 0
	for b.Loop() {
		sink += d.Observe(t2026+int64(i)*int64(synStep), xs[i&4095]).Likelihood
		i++
	}
	_ = sink
}

func BenchmarkMAD(b *testing.B)         { benchDetector(b, "mad") }
func BenchmarkCUSUM(b *testing.B)       { benchDetector(b, "cusum") }
func BenchmarkPageHinkley(b *testing.B) { benchDetector(b, "pagehinkley") }
func BenchmarkHoltWinters(b *testing.B) { benchDetector(b, "holtwinters") }
func BenchmarkLevelShift(b *testing.B)  { benchDetector(b, "levelshift") }
func BenchmarkEnsemble(b *testing.B)    { benchDetector(b, "vigil") }
