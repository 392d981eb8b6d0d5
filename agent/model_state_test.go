package agent

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPendingLabelsBounded(t *testing.T) {
	var p pendingLabels
	p.init(3, time.Minute)
	t0 := time.Unix(1000, 0)
	num := func(x float64) value { return value{kind: kindNumber, num: x} }
	for i := 0; i < 5; i++ { // ids 0..4: 0 and 1 evicted
		p.put(fmt.Sprint(i), num(float64(i)), t0)
	}
	if p.evicted != 2 || p.live() != 3 {
		t.Fatalf("evicted %d, live %d; want 2, 3", p.evicted, p.live())
	}
	if _, ok, _ := p.take("0", t0); ok {
		t.Error("evicted id 0 still found")
	}
	if v, ok, _ := p.take("3", t0); !ok || v.num != 3 {
		t.Errorf("take 3 = %v %v", v, ok)
	}
	// A taken id frees its place: putting one more evicts nothing.
	p.put("5", num(5), t0)
	if p.evicted != 2 || p.live() != 3 {
		t.Errorf("after a take and a put: evicted %d, live %d", p.evicted, p.live())
	}
	// Full again (2, 4, 5): 6 evicts the oldest, 2.
	p.put("6", num(6), t0.Add(30*time.Second))
	if p.evicted != 3 || p.live() != 3 {
		t.Errorf("after put 6: evicted %d, live %d; want 3, 3", p.evicted, p.live())
	}
	// TTL: 4 and 5 (put at t0) are older than a minute at t0+61s, 6 is not.
	if _, ok, expired := p.take("4", t0.Add(61*time.Second)); ok || !expired {
		t.Errorf("expired id 4 taken: ok %v expired %v", ok, expired)
	}
	p.expire(t0.Add(61 * time.Second))
	if p.live() != 1 || p.expired != 2 { // 4 by take, 5 by expire; 6 lives
		t.Errorf("after expiry: live %d, expired %d; want 1, 2", p.live(), p.expired)
	}
	if _, ok, _ := p.take("6", t0.Add(61*time.Second)); !ok {
		t.Error("id 6 lost")
	}
	// Compaction: many takes leave stale slots; the ring never loses a live id.
	for i := 0; i < 100; i++ {
		id := fmt.Sprint("c", i)
		p.put(id, num(1), t0.Add(62*time.Second))
		if i%2 == 0 {
			p.take(id, t0.Add(62*time.Second))
		}
	}
	if p.live() != 3 || p.evicted != 3+47 { // from c6 on, every even put evicts the oldest odd id
		t.Errorf("after 100 puts and 50 takes: live %d, evicted %d; want 3, 50", p.live(), p.evicted)
	}
}

func TestModelStateTimeWindowAndCaps(t *testing.T) {
	cfg := modelsConfig(func(c *ModelsConfig) {
		c.Window, c.Panes, c.Reference.First = 10*time.Second, 5, 10
		c.MaxFeatures, c.MaxCategories, c.MinCount = 2, 2, 5
	})
	st := newModelState("m", cfg.limits(), time.Unix(0, 0))
	obs := func(at int, feats string) {
		o, err := decodeObservation([]byte(`{"model":"m","features":` + feats + `,"prediction":1,"latency_ms":1}`))
		if err != nil {
			t.Fatal(err)
		}
		st.observe(&o, time.Unix(int64(at), 0))
	}
	for i := 0; i < 10; i++ { // reference: a numeric, b categorical; c is one feature too many
		obs(0, fmt.Sprintf(`{"a":%d,"b":"k%d","c":1}`, i, i%2))
	}
	if !st.frozen || st.featuresDropped != 10 || len(st.order) != 3 { // a, b, __prediction__
		t.Fatalf("frozen %v, dropped %d, features %d", st.frozen, st.featuresDropped, len(st.order))
	}
	obs(1, `{"a":"text","b":"k9","z":1,"q":null}`) // type error, new category, unknown feature, missing
	obs(1, `{"b":"k8"}`)                           // the cap is 2 categories: k9 and k8 go to "other"
	if st.typeErrors != 1 || st.unknownFeatures != 1 || st.missing != 1 || st.features["b"].cats.Overflow != 2 {
		t.Errorf("counters: type %d unknown %d missing %d overflow %d", st.typeErrors, st.unknownFeatures, st.missing, st.features["b"].cats.Overflow)
	}
	// Time window of 10 s in 5 panes of 2 s, [0,2) [2,4) …: at t=11 the window is the panes
	// [2,4) … [10,12), so what was added at t=1 is gone and t=3 is still in.
	for i := 0; i < 6; i++ {
		obs(3, `{"a":5}`)
	}
	if _, n := st.features["a"].drift(); n != 6 {
		t.Errorf("window count of a at t=3: %v, want 6", n)
	}
	if _, n := st.features["b"].drift(); n != 2 {
		t.Errorf("window count of b at t=3: %v, want 2", n)
	}
	st.rotate(time.Unix(11, 0))
	if _, n := st.features["b"].drift(); n != 0 {
		t.Errorf("window count of b at t=11: %v, want 0 (pane of t=1 dropped)", n)
	}
	if _, n := st.features["a"].drift(); n != 6 {
		t.Errorf("window count of a at t=11: %v, want 6 (t=3 still inside)", n)
	}
	st.rotate(time.Unix(12, 0))
	if _, n := st.features["a"].drift(); n != 0 {
		t.Errorf("window count of a at t=12: %v, want 0 (pane [2,4) dropped)", n)
	}
	st.rotate(time.Unix(100, 0)) // far ahead: every pane stale
	n, _, _, _ := st.windowStats()
	if _, fn := st.features["a"].drift(); n != 0 || fn != 0 {
		t.Errorf("after a long gap: window %d observations, a %v", n, fn)
	}
}

func TestModelReferenceFile(t *testing.T) {
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.ndjson")
	var b strings.Builder
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&b, `{"model":"a","features":{"x":%d},"prediction":"p%d"}`+"\n", i%50, i%2)
	}
	b.WriteString(`{"model":"a","id":"1","label":"p0"}` + "\n") // label lines are skipped
	os.WriteFile(ref, []byte(b.String()), 0o644)
	m, err := NewModels(modelsConfig(func(c *ModelsConfig) { c.Reference.File = ref; c.MinCount = 10 }), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	st := m.models["a"]
	if st == nil || !st.frozen || st.refN != 500 {
		t.Fatalf("model a from the file: %+v", st)
	}
	m.mu.Lock()
	for i := 0; i < 100; i++ {
		o, _ := decodeObservation([]byte(fmt.Sprintf(`{"model":"a","features":{"x":%d},"prediction":"p%d"}`, 100+i, i%2)))
		if err := m.apply(&o, now); err != nil {
			t.Fatal(err)
		}
	}
	m.mu.Unlock()
	pts := collectAt(t, m, now)
	x := find(t, pts, "model_drift", "feature", "x")
	// x: reference uniform on 0..49, window 100..199, all above the reference: KS 1, and
	// W1 = the difference of the means, 149.5 − 24.5.
	if x.num(t, "window_count") != 100 || x.num(t, "ks") != 1 || x.num(t, "psi") < 1 || math.Abs(x.num(t, "wasserstein")-125) > 1e-9 {
		t.Errorf("x moved out of the reference range: %v", x.fields)
	}
	if p := find(t, pts, "model_drift", "feature", predictionKey); p.num(t, "psi") > 0.01 {
		t.Errorf("prediction unchanged: %v", p.fields)
	}
	os.WriteFile(ref, []byte("{\"model\":\"a\",\"features\":{\"x\":1}}\n{\"model\":\"a\",\"features\":{\"x\":[]}}\n"), 0o644)
	_, err = NewModels(modelsConfig(func(c *ModelsConfig) { c.Reference.File = ref }), nil)
	if err == nil || !strings.Contains(err.Error(), "ref.ndjson:2: field \"features.x\"") {
		t.Errorf("bad reference line: %v", err)
	}
}
