package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// modelsConfig is a defaulted models section on a free loopback port.
func modelsConfig(mod func(c *ModelsConfig)) ModelsConfig {
	c := ModelsConfig{Listen: "127.0.0.1:0"}
	if mod != nil {
		mod(&c)
	}
	c.withDefaults()
	return c
}

// startModels builds, starts and runs a Models until the test ends.
func startModelsT(t *testing.T, cfg ModelsConfig) *Models {
	t.Helper()
	var errs configErrs
	cfg.validate(errs.bad)
	if len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	m, err := NewModels(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Models.Run: %v", err)
		}
	})
	return m
}

type configErrs []string

func (e *configErrs) bad(_, format string, args ...any) {
	*e = append(*e, strings.TrimSpace(format))
}

// post sends body to the observation endpoint and decodes the answer.
func post(t *testing.T, m *Models, body string) (int, ingestResult) {
	t.Helper()
	resp, err := http.Post("http://"+m.Addr()+"/v1/observations", "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res ingestResult
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("answer %d %q: %v", resp.StatusCode, data, err)
	}
	return resp.StatusCode, res
}

// collectAt runs Collect at now and returns the points by measurement and key tag.
func collectAt(t *testing.T, m *Models, now time.Time) []point {
	t.Helper()
	var pts []point
	emit := func(name string, tags []wire.Tag, fields []wire.Field) {
		p := point{m: name, tags: map[string]string{}, fields: map[string]wire.Field{}}
		for _, tg := range tags {
			p.tags[tg.Key] = tg.Value
		}
		for _, f := range fields {
			if _, dup := p.fields[f.Key]; dup {
				t.Errorf("%s: field %q twice", name, f.Key)
			}
			p.fields[f.Key] = f
		}
		pts = append(pts, p)
	}
	if err := m.Collect(context.Background(), now, emit); err != nil {
		t.Fatal(err)
	}
	return pts
}

// find returns the point of measurement meas whose tag key equals val.
func find(t *testing.T, pts []point, meas, key, val string) point {
	t.Helper()
	for _, p := range pts {
		if p.m == meas && (key == "" || p.tags[key] == val) {
			return p
		}
	}
	t.Fatalf("no %s point with %s=%s in %v", meas, key, val, pts)
	return point{}
}

func TestModelEndpointKeepsGoodLinesOfABadRequest(t *testing.T) {
	m := startModelsT(t, modelsConfig(func(c *ModelsConfig) { c.MaxLineBytes = 256 }))
	body := strings.Join([]string{
		`{"model":"fraud","version":"v1","id":"a","features":{"amount":10},"prediction":"ok","confidence":0.9,"latency_ms":5}`,
		`{"model":"fraud","features":{"amount":11},"prediction":"ok","confidence":"high"}`,
		``,
		`{"model":"fraud","features":{"amount":12},"prediction":"no","latency_ms":7}`,
		`{"model":"fraud",`,
		`{"model":"fraud","features":{"amount":` + strings.Repeat("1", 300) + `}}`,
		`{"model":"fraud","id":"a","label":"ok"}`,
	}, "\n")
	code, res := post(t, m, body)
	if code != http.StatusBadRequest || res.Accepted != 3 || res.Rejected != 3 || len(res.Errors) != 3 {
		t.Fatalf("answer %d %+v, want 400 with 3 accepted, 3 rejected", code, res)
	}
	for i, want := range []string{`line 2: field "confidence": want a number in [0, 1], got "\"high\""`, `line 5: not a JSON object`, `line 6: longer than max_line_bytes 256`} {
		if !strings.HasPrefix(res.Errors[i], want) {
			t.Errorf("error %d = %q, want prefix %q", i, res.Errors[i], want)
		}
	}
	pts := collectAt(t, m, time.Now())
	mp := find(t, pts, "model", "model", "fraud")
	if mp.num(t, "observations") != 2 || mp.tags["version"] != "v1" || mp.num(t, "labeled") != 1 || mp.num(t, "accuracy") != 1 {
		t.Errorf("model point %v: want the 2 good observations and the label kept", mp.fields)
	}
	in := find(t, pts, "model_ingest", "", "")
	if in.num(t, "rejected") != 3 || in.num(t, "accepted") != 3 || in.num(t, "requests") != 1 {
		t.Errorf("model_ingest %v", in.fields)
	}

	code, res = post(t, m, `{"model":"fraud","prediction":"ok"}`+"\n")
	if code != http.StatusOK || res.Accepted != 1 || res.Rejected != 0 {
		t.Errorf("good request: %d %+v", code, res)
	}
	code, res = post(t, m, "\n\n")
	if code != http.StatusBadRequest || !strings.Contains(res.Error, "no observation") {
		t.Errorf("empty request: %d %+v", code, res)
	}
	resp, err := http.Get("http://" + m.Addr() + "/v1/observations")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", resp.StatusCode)
	}
}

func TestModelEndpointBoundsRequests(t *testing.T) {
	m := startModelsT(t, modelsConfig(func(c *ModelsConfig) { c.MaxBodyBytes = 1024; c.MaxModels = 1 }))
	line := `{"model":"m","features":{"x":1},"prediction":1}` + "\n"
	big := strings.Repeat(line, 40) // 1960 bytes
	code, res := post(t, m, big)    // with Content-Length: refused before reading
	if code != http.StatusRequestEntityTooLarge || res.Accepted != 0 || !strings.Contains(res.Error, "max_body_bytes 1024") {
		t.Errorf("large body: %d %+v", code, res)
	}
	// Without Content-Length the limit stops the read; the lines before it are kept.
	resp, err := http.Post("http://"+m.Addr()+"/v1/observations", "application/x-ndjson", io.MultiReader(strings.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	json.Unmarshal(data, &res)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || res.Accepted != 1024/len(line) {
		t.Errorf("chunked large body: %d %s, want 413 with %d accepted", resp.StatusCode, data, 1024/len(line))
	}
	// A second model is one too many.
	code, res = post(t, m, line+`{"model":"other","prediction":1}`)
	if code != http.StatusBadRequest || res.Accepted != 1 || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], `line 2: field "model": "other" would be one model too many (max_models 1)`) {
		t.Errorf("model cap: %d %+v", code, res)
	}
	st := m.Stats()
	if st.TooLarge != 2 || st.ModelsDropped != 1 || st.Requests != 3 {
		t.Errorf("stats %+v", st)
	}
	pts := collectAt(t, m, time.Now())
	if got := find(t, pts, "model_ingest", "", "").num(t, "too_large"); got != 2 {
		t.Errorf("too_large = %v", got)
	}
	if bytes.Count(data, []byte("\n")) != 1 {
		t.Errorf("answer is not one JSON line: %q", data)
	}
}
