package agent

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDecodeObservation(t *testing.T) {
	o, err := decodeObservation([]byte(`{"model":"fraud","version":"v3","id":17,"features":{"amount":12.5,"country":"FR","vip":true,"age":null},` +
		`"prediction":"approve","confidence":0.93,"latency_ms":12.1,"ts":"2025-01-02T15:04:05.5Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(o.features, func(a, b namedValue) int { return strings.Compare(a.name, b.name) })
	want := []namedValue{
		{"age", value{}},
		{"amount", value{kind: kindNumber, num: 12.5}},
		{"country", value{kind: kindString, str: "FR"}},
		{"vip", value{kind: kindString, str: "true"}},
	}
	if o.model != "fraud" || o.version != "v3" || o.id != "17" || o.isLabel || !reflect.DeepEqual(o.features, want) ||
		!o.hasPred || o.pred.str != "approve" || o.conf != 0.93 || o.latency != 12.1 ||
		!o.ts.Equal(time.Date(2025, 1, 2, 15, 4, 5, 5e8, time.UTC)) || o.hasLabel {
		t.Errorf("decoded %+v", o)
	}
	l, err := decodeObservation([]byte(`{"model":"fraud","id":"r-1","label":0}`))
	if err != nil || !l.isLabel || l.id != "r-1" || l.label.kind != kindNumber || l.label.num != 0 {
		t.Errorf("label line: %+v, %v", l, err)
	}
	p, err := decodeObservation([]byte(`{"model":"m","prediction":3,"ts":1700000000.25}`))
	if err != nil || !p.hasPred || p.pred.num != 3 || !math.IsNaN(p.conf) || p.ts.UnixMilli() != 1700000000250 {
		t.Errorf("prediction only: %+v, %v", p, err)
	}
}

func TestDecodeObservationErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct{ line, field string }{
		{`{"version":"v1","prediction":1}`, `"model"`},
		{`{"model":"","prediction":1}`, `"model"`},
		{`{"model":7,"prediction":1}`, `"model"`},
		{`{"model":"m","prediction":1,"confidence":1.5}`, `"confidence"`},
		{`{"model":"m","prediction":1,"confidence":"high"}`, `"confidence"`},
		{`{"model":"m","prediction":1,"latency_ms":-3}`, `"latency_ms"`},
		{`{"model":"m","prediction":[1,2]}`, `"prediction"`},
		{`{"model":"m","features":{"x":{"a":1}}}`, `"features.x"`},
		{`{"model":"m","features":[1]}`, `"features"`},
		{`{"model":"m","features":{"__prediction__":1}}`, `"features.__prediction__"`},
		{`{"model":"m","features":{"x":1e999}}`, `"features.x"`},
		{`{"model":"m","prediction":1,"ts":"yesterday"}`, `"ts"`},
		{`{"model":"m","prediction":1,"id":1.5}`, `"id"`},
		{`{"model":"m","prediction":1,"extra":1}`, `"extra"`},
		{`{"model":"m","label":1}`, `"id"`},
		{`{"model":"m","id":"a"}`, `"features"`},
		{`{"model":"m","id":"a","label":1,"confidence":0.5}`, `"confidence"`},
		{`{"model":"m\u0001","prediction":1}`, `"model"`},
	} {
		_, err := decodeObservation([]byte(tc.line))
		if err == nil || !strings.Contains(err.Error(), "field "+tc.field) {
			t.Errorf("%s: error %v, want one naming field %s", tc.line, err, tc.field)
		}
	}
	for _, line := range []string{`not json`, `[1]`, `null`, `{"model":"m"} trailing`, `{"model":"m","prediction":1`} {
		if _, err := decodeObservation([]byte(line)); err == nil || !strings.Contains(err.Error(), "JSON") {
			t.Errorf("%s: error %v, want a JSON error", line, err)
		}
	}
}

// encodeObservation is the inverse of decodeObservation, for the round-trip property.
func encodeObservation(o observation) []byte {
	val := func(v value) any {
		switch v.kind {
		case kindNumber:
			return v.num
		case kindString:
			return v.str
		}
		return nil
	}
	m := map[string]any{"model": o.model}
	if o.version != "" {
		m["version"] = o.version
	}
	if o.id != "" {
		m["id"] = o.id
	}
	if o.hasLabel {
		m["label"] = val(o.label)
	}
	if !o.isLabel {
		fs := map[string]any{}
		for _, f := range o.features {
			fs[f.name] = val(f.value)
		}
		m["features"] = fs
		if o.hasPred {
			m["prediction"] = val(o.pred)
		}
		if !math.IsNaN(o.conf) {
			m["confidence"] = o.conf
		}
		if !math.IsNaN(o.latency) {
			m["latency_ms"] = o.latency
		}
		if !o.ts.IsZero() {
			m["ts"] = o.ts.Format(time.RFC3339Nano)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func FuzzDecodeObservation(f *testing.F) {
	for _, s := range []string{
		`{"model":"fraud","version":"v3","id":"r-17","features":{"amount":12.5,"country":"FR"},"prediction":"approve","confidence":0.93,"latency_ms":12.1,"ts":"2025-01-02T15:04:05Z"}`,
		`{"model":"fraud","id":"r-17","label":"approve"}`,
		`{"model":"m","id":12,"features":{"a":-1e-300,"b":false,"c":null},"prediction":0.5,"ts":1700000000}`,
		`{"model":"m","features":{"x":"\u00e9\n"}}`,
		`{"model":"m","prediction":1,"confidence":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		o, err := decodeObservation(line)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if checkName("model", o.model) != nil {
			t.Fatalf("accepted bad model name %q", o.model)
		}
		if !math.IsNaN(o.conf) && !(o.conf >= 0 && o.conf <= 1) || !math.IsNaN(o.latency) && !(o.latency >= 0) {
			t.Fatalf("accepted confidence %v, latency %v", o.conf, o.latency)
		}
		for _, fv := range o.features {
			if fv.kind == kindNumber && (math.IsNaN(fv.num) || math.IsInf(fv.num, 0)) {
				t.Fatalf("feature %q = %v", fv.name, fv.num)
			}
		}
		again, err := decodeObservation(encodeObservation(o))
		if err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", encodeObservation(o), err)
		}
		sortF := func(fs []namedValue) {
			slices.SortFunc(fs, func(a, b namedValue) int { return strings.Compare(a.name, b.name) })
		}
		sortF(o.features)
		sortF(again.features)
		if len(o.features) == 0 {
			o.features, again.features = nil, nil
		}
		if !reflect.DeepEqual(fmtObs(o), fmtObs(again)) {
			t.Fatalf("round trip:\n%+v\n%+v", o, again)
		}
	})
}

// fmtObs makes NaNs comparable.
func fmtObs(o observation) observation {
	if math.IsNaN(o.conf) {
		o.conf = -1
	}
	if math.IsNaN(o.latency) {
		o.latency = -1
	}
	o.ts = o.ts.UTC()
	if len(o.features) == 0 {
		o.features = nil
	}
	return o
}
