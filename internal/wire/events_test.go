package wire

import (
	"math"
	"strings"
	"testing"
	"time"
)

// decodeEvents decodes AppendLine output and fails on any malformed line.
func decodeEvents(t *testing.T, lines []byte) []point {
	t.Helper()
	var d Decoder
	pts, bad, errs := decodeAll(t, &d, string(lines))
	if bad != 0 {
		t.Fatalf("AppendLine wrote malformed line protocol %q: %v", lines, errs)
	}
	return pts
}

func fieldOf(p point, key string) (Field, bool) {
	for _, f := range p.Fields {
		if f.Key == key {
			return f, true
		}
	}
	return Field{}, false
}

func TestEventAppendLineEscapes(t *testing.T) {
	ts := time.Unix(1700000000, 42)
	e := &Event{
		ID: "ev-1", Kind: KindRule, Time: ts, Host: "web 1,eu",
		Series: "disk.used_percent", SeriesTags: "device=sda,path=/",
		Rule: "disk full, root", Group: "g=1", Severity: "critical", State: "firing",
		Error:  `exit "1" in C:\tmp`,
		Output: "line1\nline2\r\n",
		Value:  97.5, Values: map[string]float64{"used": 97.5, "a b": 1, "bad": math.NaN()},
	}
	line := string(e.AppendLine(nil))
	for _, want := range []string{
		`vigil_rule,`, `host=web\ 1\,eu`, `series_tags=device\=sda\,path\=/`,
		`rule=disk\ full\,\ root`, `group=g\=1`, `error="exit \"1\" in C:\\tmp"`, ` 1700000000000000042`,
	} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	if strings.ContainsAny(line, "\n\r") {
		t.Errorf("line %q holds a newline", line)
	}
	pts := decodeEvents(t, []byte(line))
	if len(pts) != 1 {
		t.Fatalf("decoded %d points", len(pts))
	}
	p := pts[0]
	wantTags := []Tag{{"group", "g=1"}, {"host", "web 1,eu"}, {"rule", "disk full, root"},
		{"series", "disk.used_percent"}, {"series_tags", "device=sda,path=/"}, {"severity", "critical"}, {"state", "firing"}}
	if p.M != "vigil_rule" || p.Time != ts.UnixNano() || !p.HasTime || len(p.Tags) != len(wantTags) {
		t.Fatalf("decoded %+v", p)
	}
	for i, tg := range wantTags {
		if p.Tags[i] != tg {
			t.Errorf("tag %d = %v, want %v", i, p.Tags[i], tg)
		}
	}
	for _, want := range []Field{S("id", "ev-1"), I("firing", 1), F("value", 97.5), S("error", e.Error),
		S("output", "line1 line2  "), F("v_used", 97.5), F("v_a b", 1)} {
		if got, ok := fieldOf(p, want.Key); !ok || got != want {
			t.Errorf("field %q = %+v (present %v), want %+v", want.Key, got, ok, want)
		}
	}
	if _, ok := fieldOf(p, "v_bad"); ok {
		t.Errorf("NaN value was written: %q", line)
	}
}

func TestEventAppendLineFields(t *testing.T) {
	ts := time.Unix(1700000000, 0)
	cases := []struct {
		name string
		e    Event
		want []Field // in order
	}{
		{"anomaly numbers, non-finite skipped", Event{Kind: KindAnomaly, Time: ts, Host: "h", Score: 0.99, Raw: math.Inf(1),
			Level: math.NaN(), Value: -3}, []Field{F("value", -3), F("score", 0.99)}},
		{"no field at all", Event{Kind: KindAnomaly, Time: ts}, []Field{I("event", 1)}},
		{"rule not firing", Event{Kind: KindRule, Time: ts, State: "resolved"}, []Field{I("firing", 0)}},
		{"forecast", Event{Kind: KindForecast, Time: ts, ETASeconds: 600, PredictedAt: ts.Add(10 * time.Minute),
			Confidence: 0.8, Slope: 0.01}, []Field{F("eta_seconds", 600), F("predicted_at", 1700000600),
			F("confidence", 0.8), F("slope_per_second", 0.01)}},
		{"action", Event{ID: "a1", Kind: KindAction, Time: ts, Action: "failover", ActionKind: "exec", Outcome: "failure",
			Key: "k", ExitCode: 2, DurationSeconds: 1.5, LeadSeconds: 30}, []Field{S("id", "a1"), F("duration_seconds", 1.5),
			F("lead_seconds", 30), I("exit_code", 2), S("key", "k")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pts := decodeEvents(t, c.e.AppendLine(nil))
			if len(pts) != 1 || pts[0].M != c.e.Measurement() {
				t.Fatalf("decoded %+v", pts)
			}
			got := pts[0].Fields
			if len(got) != len(c.want) {
				t.Fatalf("fields %+v, want %+v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("field %d = %+v, want %+v", i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestEventAppendLineBatch(t *testing.T) {
	ts := time.Unix(1700000000, 0)
	var buf []byte
	kinds := []string{KindAnomaly, KindForecast, KindRule, KindAction}
	for i, k := range kinds {
		e := Event{ID: "id-" + k, Kind: k, Time: ts.Add(time.Duration(i)), Host: "h=" + k, Value: float64(i + 1)}
		buf = append(e.AppendLine(buf), '\n')
	}
	pts := decodeEvents(t, buf)
	if len(pts) != len(kinds) {
		t.Fatalf("decoded %d of %d events", len(pts), len(kinds))
	}
	for i, p := range pts {
		if p.M != "vigil_"+kinds[i] || p.Tags[0] != (Tag{"host", "h=" + kinds[i]}) || p.Time != ts.UnixNano()+int64(i) {
			t.Errorf("event %d decoded as %+v", i, p)
		}
		if f, _ := fieldOf(p, "value"); f.Float != float64(i+1) {
			t.Errorf("event %d value %+v", i, f)
		}
	}
}

// A newline or a trailing backslash in a tag value must not break the line.
func TestEventAppendLineHostileStrings(t *testing.T) {
	for _, v := range []string{"a\nb", `C:\x\`, "x,y=z w", `q"uote\`} {
		e := &Event{ID: "1", Kind: KindRule, Time: time.Unix(1, 0), Host: v, Rule: v, Error: v, Values: map[string]float64{v: 1}}
		line := e.AppendLine(nil)
		var d Decoder
		var got *PointView
		var host, rule string
		ok, bad, errs := d.Decode(line, func(p *PointView) {
			got = p
			h, _ := p.Tag("host")
			r, _ := p.Tag("rule")
			host, rule = string(h), string(r)
		})
		if ok != 1 || bad != 0 || got == nil {
			t.Fatalf("value %q: line %q decodes to ok=%d bad=%d %v", v, line, ok, bad, errs)
		}
		want := strings.ReplaceAll(v, "\n", " ")
		if host != want || rule != want {
			t.Errorf("value %q: host %q rule %q, want %q", v, host, rule, want)
		}
	}
}
