package controller_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/controller"
)

func TestAPIHealthAndStatus(t *testing.T) {
	env := startNATSEnv(t)
	path, set := writeRules(t, t.TempDir(), cpuRule)
	rc := startCtl(t, ctlConfig(t, env.srv.URL(), "rules: ["+path+"]\n"), env.nc, set)

	rec := rc.get(t, "/healthz")
	if rec.Code != http.StatusOK || rec.Body.String() != "ok\n" {
		t.Errorf("/healthz: %d %q", rec.Code, rec.Body)
	}

	seen := time.Unix(1_700_000_000, 0).UTC()
	env.publish(t, "web-1", "r", 1, "cpu,host=web-1 usage=97 1700000000000000000\nmem,host=web-1 used_percent=50 1699999999000000000\n")
	eventually(t, "cpu_high firing on web-1", func() bool { return rc.status(t).ruleState("cpu_high", "web-1") == "firing" })
	// Per-rule counters reach /metrics (refreshed once a second).
	eventually(t, "per-rule metrics", func() bool {
		body := rc.get(t, "/metrics").Body.String()
		return strings.Contains(body, `vigil_rule_transitions_total{group="g",rule="cpu_high"} `) &&
			!strings.Contains(body, `vigil_rule_evaluations_total{group="g",rule="cpu_high"} 0`+"\n")
	})
	if _, problems := exposition(rc.get(t, "/metrics").Body.String()); len(problems) > 0 {
		t.Errorf("/metrics with per-rule counters is not valid exposition: %v", problems)
	}

	rec = rc.get(t, "/api/v1/status")
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("status content type %q", ct)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	var top []string
	for k := range raw {
		top = append(top, k)
	}
	sort.Strings(top)
	if strings.Join(top, ",") != "hosts,leader,name,rules,time" {
		t.Errorf("status keys %q, want hosts,leader,name,rules,time", top)
	}
	st := rc.status(t)
	if st.Name != "test-ctl" || time.Since(st.Time) > time.Minute || st.Time.After(time.Now()) {
		t.Errorf("status name %q time %v", st.Name, st.Time)
	}
	if len(st.Hosts) != 1 || st.Hosts[0].Host != "web-1" || st.Hosts[0].Series != 2 || !st.Hosts[0].LastSeen.Equal(seen) {
		t.Errorf("hosts %+v, want web-1 with 2 series last seen %v (its newest sample)", st.Hosts, seen)
	}
	if len(st.Rules) != 1 {
		t.Fatalf("rules %+v, want one state", st.Rules)
	}
	r := st.Rules[0]
	if vals, _ := r["values"].(map[string]any); vals["value:cpu.usage"] != 97.0 {
		t.Errorf("rule values %v, want value:cpu.usage = 97", r["values"])
	}
	if r["group"] != "g" || r["rule"] != "cpu_high" || r["subject"] != "web-1" || r["state"] != "firing" {
		t.Errorf("rule state %v, want g/cpu_high on web-1 firing", r)
	}
}

func TestAPIReload(t *testing.T) {
	env := startNATSEnv(t)
	path, set := writeRules(t, t.TempDir(), cpuRule)
	rc := startCtl(t, ctlConfig(t, env.srv.URL(), "rules: ["+path+"]\n"), env.nc, set)
	post := func() (int, map[string]string) {
		rec := httptest.NewRecorder()
		rc.h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/rules/reload", nil))
		var body map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("reload answer %q: %v", rec.Body, err)
		}
		return rec.Code, body
	}
	if code, body := post(); code != http.StatusOK || body["status"] != "reloaded" {
		t.Errorf("good reload: %d %v", code, body)
	}
	if err := os.WriteFile(path, []byte("groups:\n  - name: g\n    rules:\n      - name: x\n        expr: nosuchfunc(1) > 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, body := post()
	if code != http.StatusBadRequest || !strings.Contains(body["error"], path+":5:") {
		t.Errorf("bad reload: %d %v, want 400 naming %s:5", code, body, path)
	}
	if rec := rc.get(t, "/api/v1/rules/reload"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET reload: %d, want 405", rec.Code)
	}
}

func TestAPIStatusWithoutRunningController(t *testing.T) {
	env := startNATSEnv(t)
	c, err := controller.New(ctlConfig(t, env.srv.URL(), ""), env.nc, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/status", nil).WithContext(ctx))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status of a controller that is not running: %d, want 503", rec.Code)
	}
}

var (
	metricNameRe = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	valueRe      = regexp.MustCompile(`^[-+]?([0-9]+(\.[0-9]*)?(e[-+]?[0-9]+)?|Inf|NaN)$`)
	sampleRe     = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*\})? (\S+)$`)
)

// exposition checks Prometheus text format: every sample's metric has one
// HELP and one TYPE line before its first sample, samples of a metric are
// together, values are numbers, counters end in _total. It returns the
// types and the problems found.
func exposition(text string) (map[string]string, []string) {
	var bad []string
	errorf := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	help, typ := map[string]bool{}, map[string]string{}
	done := map[string]bool{} // metrics whose sample group ended
	current := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "# HELP "):
			f := strings.SplitN(line[len("# HELP "):], " ", 2)
			if len(f) != 2 || f[1] == "" || !metricNameRe.MatchString(f[0]) || help[f[0]] {
				errorf("bad or repeated HELP line %q", line)
				continue
			}
			help[f[0]] = true
		case strings.HasPrefix(line, "# TYPE "):
			f := strings.Fields(line[len("# TYPE "):])
			if len(f) != 2 || !help[f[0]] || typ[f[0]] != "" || (f[1] != "counter" && f[1] != "gauge") {
				errorf("bad TYPE line %q (must follow its HELP, once)", line)
				continue
			}
			typ[f[0]] = f[1]
		case strings.HasPrefix(line, "#") || line == "":
			errorf("unexpected line %q", line)
		default:
			m := sampleRe.FindStringSubmatch(line)
			if m == nil {
				errorf("bad sample line %q", line)
				continue
			}
			name := m[1]
			if !help[name] || typ[name] == "" {
				errorf("sample %q before its HELP and TYPE", line)
			}
			if name != current {
				if done[name] {
					errorf("samples of %s are not together", name)
				}
				done[current], current = true, name
			}
			if typ[name] == "counter" && !strings.HasSuffix(name, "_total") {
				errorf("counter %s does not end in _total", name)
			}
			if !valueRe.MatchString(m[4]) {
				errorf("value %q of %s is not a number", m[4], name)
			}
		}
	}
	for name := range help {
		if typ[name] == "" {
			errorf("%s has HELP but no TYPE", name)
		}
	}
	return typ, bad
}

func TestAPIMetricsExposition(t *testing.T) {
	env := startNATSEnv(t)
	// With a history URL the history metrics are exported too (nothing
	// connects to it: Run is not called).
	cfg := ctlConfig(t, env.srv.URL(), "history: {url: \"http://127.0.0.1:9\"}\n")
	c, err := controller.New(cfg, env.nc, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("/metrics: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	typ, problems := exposition(rec.Body.String())
	for _, p := range problems {
		t.Error(p)
	}
	for name, want := range map[string]string{
		"vigil_telemetry_messages_total":        "counter",
		"vigil_telemetry_malformed_lines_total": "counter",
		"vigil_telemetry_gaps_total":            "counter",
		"vigil_rule_reload_errors_total":        "counter",
		"vigil_actions_started_total":           "counter",
		"vigil_events_dropped_total":            "counter",
		"vigil_history_points_total":            "counter",
		"vigil_history_lag_messages":            "gauge",
	} {
		if typ[name] != want {
			t.Errorf("%s: type %q, want %q", name, typ[name], want)
		}
	}
	if !strings.Contains(rec.Body.String(), `vigil_history_lag_messages{stream="telemetry"} 0`) {
		t.Errorf("history lag per stream missing:\n%s", rec.Body)
	}
}

// TestExpositionCheckerCatchesErrors makes sure the checker above is not
// vacuous.
func TestExpositionCheckerCatchesErrors(t *testing.T) {
	for _, bad := range []string{
		"x_total 1\n",                                             // no HELP/TYPE
		"# HELP x_total h\nx_total 1\n",                           // no TYPE
		"# HELP x h\n# TYPE x counter\nx 1\n",                     // counter without _total
		"# HELP x_total h\n# TYPE x_total counter\nx_total one\n", // not a number
	} {
		if _, problems := exposition(bad); len(problems) == 0 {
			t.Errorf("checker accepted %q", bad)
		}
	}
	good := "# HELP x_total h\n# TYPE x_total counter\nx_total 1.5e+06\n# HELP g h\n# TYPE g gauge\ng{a=\"b\"} 0\n"
	if _, problems := exposition(good); len(problems) != 0 {
		t.Errorf("checker refused valid text: %q", problems)
	}
}
