package controller

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/detectors"
	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

func testStore(t testing.TB) *store {
	newDet := func() detectors.Detector { d, _ := detectors.NewDetector("ewma"); return d }
	newFc := func() detectors.Forecaster { f, _ := detectors.NewForecaster("trend"); return f }
	return newStore(newDet, newFc, nil)
}

// feed decodes line protocol (timestamps in the lines) into the store the
// way the controller's visit does.
func feed(t testing.TB, st *store, dec *wire.Decoder, lines string) {
	_, bad, errs := dec.Decode([]byte(lines), func(p *wire.PointView) {
		v, _ := p.Tag("host")
		h := st.host(string(v))
		if ts := time.Unix(0, p.Time); ts.After(h.lastSeen) {
			h.lastSeen = ts
		}
		for i := range p.Fields {
			x, _ := p.Fields[i].Number()
			st.observe(h, p, &p.Fields[i], x, p.Time)
		}
	})
	if bad > 0 {
		t.Fatalf("bad lines: %v", errs)
	}
}

var tBase = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// The ring keeps the last span at bounded size and always the latest sample.
func TestSampleRingBounded(t *testing.T) {
	r := newSampleRing(10 * time.Minute)
	for i := range 100000 {
		r.add(tBase.Add(time.Duration(i)*time.Second).UnixNano(), float64(i))
	}
	s := r.samples(nil)
	if len(s) > maxRingSamples || len(r.buf) > maxRingSamples {
		t.Fatalf("%d samples, buffer %d", len(s), len(r.buf))
	}
	last := s[len(s)-1]
	if last.V != 99999 || time.Duration(last.T-s[0].T) < 10*time.Minute-5*time.Second {
		t.Errorf("latest %v, span %s", last, time.Duration(last.T-s[0].T))
	}
	for i := 1; i < len(s); i++ {
		if s[i].T <= s[i-1].T {
			t.Fatalf("not in order at %d", i)
		}
	}
	// 10 s samples over a 10 m window: all 61 kept, no thinning.
	r = newSampleRing(10 * time.Minute)
	for i := range 500 {
		r.add(tBase.Add(time.Duration(i)*10*time.Second).UnixNano(), float64(i))
	}
	v, ok := rules.WindowQuery{Func: rules.WindowCount, Window: 10 * time.Minute}.Reduce(r.samples(nil), tBase.Add(499*10*time.Second))
	if !ok || v != 61 || len(r.buf) > 128 {
		t.Errorf("count %v %v, buffer %d", v, ok, len(r.buf))
	}
}

const scopeRules = `groups:
  - name: h
    rules:
      - name: rate_high
        expr: rate("net.bytes_recv", duration("5m")) > 100 && avg_over("cpu.usage_user", duration("2m")) > 0
  - name: s
    scope: service
    rules: [{name: down, expr: 'value("probe_http.up") < 1'}]
  - name: f
    scope: fleet
    rules: [{name: silent, expr: 'share_silent(role, duration("1m")) >= 0.5'}]
`

func TestStoreScopesWindowsLabelsGaps(t *testing.T) {
	set, err := rules.Parse("r.yaml", []byte(scopeRules))
	if err != nil {
		t.Fatal(err)
	}
	st, e, dec := testStore(t), rules.NewEngine(set), &wire.Decoder{}
	feed(t, st, dec, "net,host=a,role=gpu,interface=eth0 bytes_recv=1000 "+fmt.Sprint(tBase.UnixNano()))
	st.syncWindows(e) // a series that existed before the rules gets its ring
	var b strings.Builder
	for i := 1; i <= 20; i++ {
		ts := tBase.Add(time.Duration(i) * 30 * time.Second).UnixNano()
		fmt.Fprintf(&b, "net,host=a,role=gpu,interface=eth0 bytes_recv=%d %d\n", 1000+i*6000, ts)
		fmt.Fprintf(&b, "cpu,host=a,role=gpu,cpu=cpu-total usage_user=50 %d\n", ts)
		fmt.Fprintf(&b, "mem,host=a,role=gpu used_percent=10 %d\n", ts)
		if i <= 10 {
			fmt.Fprintf(&b, "probe_http,host=b,role=gpu,service=api,probe=health up=%d %d\n", map[bool]int{true: 1}[i < 8], ts)
		}
	}
	feed(t, st, dec, b.String())
	st.recordGap("a", tBase.Add(5*time.Minute), 3)
	now := tBase.Add(10 * time.Minute)
	if s := st.hosts["a"].ordered; s[0].win == nil || s[1].win == nil || s[2].win != nil {
		t.Fatalf("rings on net %v cpu %v mem %v", s[0].win != nil, s[1].win != nil, s[2].win != nil)
	}
	sel, _ := rules.ParseSelector("net.bytes_recv")
	if v, ok := st.Window("a", sel, rules.WindowQuery{Func: rules.WindowRate, Window: 5 * time.Minute}, now); !ok || math.Abs(v-200) > 1e-9 {
		t.Errorf("rate %v %v", v, ok)
	}
	if l := st.Labels("a"); l["role"] != "gpu" || len(l) != 1 {
		t.Errorf("labels %v", l)
	}
	if h := st.Hosts("gpu"); strings.Join(h, ",") != "a,b" {
		t.Errorf("hosts %v", h)
	}
	if n, ok := st.Gaps("a", now.Add(-10*time.Minute)); n != 3 || !ok {
		t.Errorf("gaps %d", n)
	}
	if n, _ := st.Gaps("a", now.Add(-time.Minute)); n != 0 {
		t.Errorf("gaps in the last minute %d", n)
	}
	svc := st.Scope(rules.ScopeService)
	if s := svc.Subjects(); strings.Join(s, ",") != "api" || svc.Labels("api")["role"] != "gpu" {
		t.Errorf("service subjects %v labels %v", s, svc.Labels("api"))
	}
	var trans []string
	e.Eval(now, st, func(tr rules.Transition) {
		trans = append(trans, tr.Rule.Name+":"+tr.Subject+"="+tr.To.String())
	}, nil)
	// b stopped at 5 min: half the gpu role is silent; api's probe is down.
	want := "rate_high:a=firing rate_high:b=nodata down:api=firing silent:gpu=firing"
	if got := strings.Join(trans, " "); got != want {
		t.Errorf("transitions %s\nwant        %s", got, want)
	}
}
