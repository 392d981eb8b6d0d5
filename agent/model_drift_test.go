package agent

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// Thresholds of the acceptance test: PSI 0.1, JS distance 0.1, and the two-sample KS critical
// value at α = 0.001 for the reference and window sizes, 1.95·√((R+C)/(R·C)).
const (
	psiThreshold = 0.1
	jsThreshold  = 0.1
)

func ksCritical(r, c float64) float64 { return 1.95 * math.Sqrt((r+c)/(r*c)) }

// driftGen draws observations of model "fraud": x ~ N(xMu, xSd), y ~ N(5, ySd), c from
// {a .5, b .3, c .2} or with a share newCat of the new category "d"; the prediction is
// "pos" when x > 0.
type driftGen struct {
	r            *rand.Rand
	xMu, xSd     float64
	ySd          float64
	newCat       float64
	seq, latency int
}

func (g *driftGen) lines(n int, withID bool) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		x := g.xMu + g.xSd*g.r.NormFloat64()
		y := 5 + g.ySd*g.r.NormFloat64()
		u := g.r.Float64()
		c := "a"
		switch {
		case u < g.newCat:
			c = "d"
		case u < g.newCat+(1-g.newCat)*0.5:
			c = "a"
		case u < g.newCat+(1-g.newCat)*0.8:
			c = "b"
		default:
			c = "c"
		}
		pred := "neg"
		if x > 0 {
			pred = "pos"
		}
		g.seq++
		id := ""
		if withID {
			id = fmt.Sprintf(`"id":"o%d",`, g.seq)
		}
		fmt.Fprintf(&b, `{"model":"fraud","version":"v7",%s"features":{"x":%g,"y":%g,"c":%q},"prediction":%q,"confidence":%g,"latency_ms":%d}`+"\n",
			id, x, y, c, pred, 0.5+0.5*math.Abs(math.Tanh(x)), 10+g.latency%100)
		g.latency++
	}
	return b.String()
}

func postOK(t *testing.T, m *Models, body string) {
	t.Helper()
	if code, res := post(t, m, body); code != http.StatusOK {
		t.Fatalf("POST: %d %+v", code, res)
	}
}

// driftOf returns psi, ks, js, wasserstein and window_count of one feature.
func driftOf(t *testing.T, pts []point, feature string) (psi, ks, js, w, n float64) {
	t.Helper()
	p := find(t, pts, "model_drift", "feature", feature)
	if p.tags["model"] != "fraud" {
		t.Fatalf("model_drift tags %v", p.tags)
	}
	return p.num(t, "psi"), p.num(t, "ks"), p.num(t, "js"), p.num(t, "wasserstein"), p.num(t, "window_count")
}

// crosses reports whether a feature's drift crosses the thresholds (any of the three), and
// under whether it stays under all of them.
func checkDrift(t *testing.T, pts []point, phase string, refN float64, drifted ...string) {
	t.Helper()
	for _, f := range []string{"x", "y", "c", predictionKey} {
		psi, ks, js, w, n := driftOf(t, pts, f)
		crit := ksCritical(refN, n)
		t.Logf("%-14s %-14s n=%4.0f psi=%.4f ks=%.4f (crit %.4f) js=%.4f w=%.4f", phase, f, n, psi, ks, crit, js, w)
		want := slices.Contains(drifted, f)
		switch {
		case want && !(psi >= psiThreshold && ks >= crit && js >= jsThreshold):
			t.Errorf("%s: %s should cross every threshold: psi %.4f, ks %.4f (crit %.4f), js %.4f", phase, f, psi, ks, crit, js)
		case !want && !(psi < psiThreshold && ks < crit && js < jsThreshold):
			t.Errorf("%s: %s should stay under every threshold: psi %.4f, ks %.4f (crit %.4f), js %.4f", phase, f, psi, ks, crit, js)
		}
	}
}

// The acceptance test of drift detection, through the real HTTP endpoint: a reference frozen
// from the first 2000 observations, a window of 1000 observations in 10 panes. Observations
// drawn from the reference distribution stay under the thresholds (20 windows, fixed seeds);
// a mean shift, a variance change and a new category each cross them within one window,
// and only for the shifted feature (and the prediction, which follows x).
func TestModelDriftAcceptance(t *testing.T) {
	m := startModelsT(t, modelsConfig(func(c *ModelsConfig) {
		c.WindowCount, c.Reference.First = 1000, 2000
	}))
	g := &driftGen{r: rand.New(rand.NewPCG(2024, 3)), xSd: 1, ySd: 1}
	t0 := time.Unix(1_700_000_000, 0)
	postOK(t, m, g.lines(2000, false))
	pts := collectAt(t, m, t0)
	if p := find(t, pts, "model", "model", "fraud"); p.num(t, "reference_ready") != 1 || p.num(t, "reference_count") != 2000 {
		t.Fatalf("reference not frozen after 2000: %v", p.fields)
	}

	// Same distribution: 20 consecutive windows stay under.
	for w := 0; w < 20; w++ {
		postOK(t, m, g.lines(1000, w == 0))
		pts = collectAt(t, m, t0.Add(time.Duration(w+1)*10*time.Second))
		checkDrift(t, pts, fmt.Sprintf("same/%d", w), 2000)
		if w == 0 {
			checkWindowStats(t, m, pts, g)
		}
	}
	// Shifts, each within one window (1000 observations).
	g.xMu = 0.5
	postOK(t, m, g.lines(1000, false))
	pts = collectAt(t, m, t0.Add(300*time.Second))
	checkDrift(t, pts, "mean +0.5σ", 2000, "x", predictionKey)
	if _, _, _, w, _ := driftOf(t, pts, "x"); math.Abs(w-0.5) > 0.1 {
		t.Errorf("wasserstein of a 0.5 mean shift = %.3f, want 0.5 ± 0.1", w)
	}
	g.xMu, g.ySd = 0, 2
	postOK(t, m, g.lines(1000, false))
	pts = collectAt(t, m, t0.Add(310*time.Second))
	checkDrift(t, pts, "variance ×4", 2000, "y")
	g.ySd, g.newCat = 1, 0.2
	postOK(t, m, g.lines(1000, false))
	pts = collectAt(t, m, t0.Add(320*time.Second))
	checkDrift(t, pts, "new category", 2000, "c")
}

// checkWindowStats checks the model point after the first window of ids: throughput, latency
// quantiles against the exact ones, confidence, and accuracy from labels sent afterwards.
func checkWindowStats(t *testing.T, m *Models, pts []point, g *driftGen) {
	t.Helper()
	p := find(t, pts, "model", "model", "fraud")
	if got := p.num(t, "throughput_per_second"); got != 100 {
		t.Errorf("throughput %v, want 1000 observations / 10 s", got)
	}
	if p.num(t, "observations") != 3000 || p.tags["version"] != "v7" {
		t.Errorf("model point %v %v", p.tags, p.fields)
	}
	// The window: the last 1000 observations, latencies 10 + i%100 for i = 2000..2999.
	var lat []float64
	for i := 2000; i < 3000; i++ {
		lat = append(lat, float64(10+i%100))
	}
	slices.Sort(lat)
	for _, q := range []struct {
		f string
		q float64
	}{{"latency_p50_ms", 0.5}, {"latency_p90_ms", 0.9}, {"latency_p99_ms", 0.99}} {
		exact := lat[int(math.Ceil(q.q*float64(len(lat))))-1]
		if got := p.num(t, q.f); math.Abs(got-exact) > 0.01*exact {
			t.Errorf("%s = %v, exact %v", q.f, got, exact)
		}
	}
	if c := p.num(t, "confidence_mean"); !(c > 0.5 && c < 1) {
		t.Errorf("confidence_mean %v", c)
	}
	// Labels for the 1000 observations with ids o2001..o3000: every fifth is wrong.
	var b strings.Builder
	for i := 2001; i <= 3000; i++ {
		label := "pos"
		if i%5 == 0 {
			label = "nope"
		}
		fmt.Fprintf(&b, `{"model":"fraud","id":"o%d","label":%q}`+"\n", i, label)
	}
	b.WriteString(`{"model":"fraud","id":"unknown","label":"pos"}` + "\n")
	postOK(t, m, b.String())
	// Which labels are right depends on the predictions: recompute them from the same seed.
	h := &driftGen{r: rand.New(rand.NewPCG(2024, 3)), xSd: 1, ySd: 1}
	h.lines(2000, false)
	want := 0
	for i, line := range strings.Split(strings.TrimSpace(h.lines(1000, true)), "\n") {
		pos := strings.Contains(line, `"prediction":"pos"`)
		if pos && (2001+i)%5 != 0 {
			want++
		}
	}
	p = find(t, collectAt(t, m, time.Unix(1_700_000_010, 0)), "model", "model", "fraud")
	if p.num(t, "labeled") != 1000 || p.num(t, "labels_unmatched") != 1 || p.num(t, "pending_labels") != 0 {
		t.Errorf("labels: %v", p.fields)
	}
	if got := p.num(t, "accuracy"); math.Abs(got-float64(want)/1000) > 1e-12 || math.Abs(p.num(t, "error_rate")-(1-got)) > 1e-12 {
		t.Errorf("accuracy %v, want %v", got, float64(want)/1000)
	}
}
