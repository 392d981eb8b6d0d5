package agent

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/natsembed"
)

var sampleLineRe = regexp.MustCompile(`^([a-z_]+)(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (\S+)$`)

// scrape reads /metrics and checks the text format: HELP and TYPE before
// a metric's samples, counters named _total, numeric values. It returns
// sample (name with labels) -> value.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("/metrics: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	types := map[string]string{}
	help := map[string]bool{}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, text, _ := strings.Cut(rest, " ")
			if help[name] || text == "" {
				t.Errorf("repeated or empty HELP %q", line)
			}
			help[name] = true
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || !help[f[0]] || (f[1] != "counter" && f[1] != "gauge") {
				t.Errorf("bad TYPE %q", line)
			}
			types[f[0]] = f[1]
			continue
		}
		m := sampleLineRe.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("bad sample line %q", line)
			continue
		}
		v, err := strconv.ParseFloat(m[4], 64)
		if err != nil || types[m[1]] == "" {
			t.Errorf("sample %q: value %v, type %q", line, err, types[m[1]])
		}
		if types[m[1]] == "counter" && !strings.HasSuffix(m[1], "_total") {
			t.Errorf("counter %s without _total", m[1])
		}
		out[m[1]+m[2]] = v
	}
	return out
}

func TestMetricsEndpoint(t *testing.T) {
	srv := natsembed.StartT(t)
	createStream(t, srv.URL())
	cfg := spoolConfig("h-metrics", srv.URL(), t.TempDir())
	cfg.Metrics.Listen = "127.0.0.1:0"
	cfg.Publish.ShutdownGrace = 50 * time.Millisecond
	a, _ := newTestAgent(t, cfg)
	a.AddCollector(&counter{name: "c"})
	a.AddCollector(&funcCollector{"bad", func(context.Context, Emit) error { return io.ErrUnexpectedEOF }})
	stop := start(t, a)
	waitFor(t, "4 acked batches", func() bool { return a.Stats().Acked >= 4 })
	m := scrape(t, a.MetricsAddr())
	st := a.Stats()
	for name, want := range map[string]float64{
		`vigil_agent_info{host="h-metrics",run="` + st.Run + `"}`: 1,
		"vigil_agent_nats_connected":                              1,
		"vigil_agent_dropped_batches_total":                       0,
		"vigil_agent_spool_batches":                               0,
		`vigil_agent_collector_points{collector="c"}`:             1,
		`vigil_agent_collector_errors_total{collector="c"}`:       0,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	for name, atLeast := range map[string]float64{
		"vigil_agent_heartbeat_seq":                           4,
		"vigil_agent_acked_total":                             4,
		"vigil_agent_batches_total":                           4,
		"vigil_agent_published_total":                         4,
		`vigil_agent_collector_errors_total{collector="bad"}`: 4,
		`vigil_agent_collector_runs_total{collector="bad"}`:   4,
	} {
		if m[name] < atLeast {
			t.Errorf("%s = %v, want ≥ %v", name, m[name], atLeast)
		}
	}
	if _, ok := m[`vigil_agent_collector_duration_seconds{collector="c"}`]; !ok {
		t.Error("no collector duration")
	}
	// NATS away: the endpoint shows it, and the spool filling.
	srv.Stop()
	waitFor(t, "batches in the spool", func() bool { return a.Stats().Spool.Batches >= 2 })
	m = scrape(t, a.MetricsAddr())
	if m["vigil_agent_nats_connected"] != 0 || m["vigil_agent_spool_batches"] < 2 || m["vigil_agent_spool_bytes"] <= 0 {
		t.Errorf("during outage: connected %v spool %v bytes %v", m["vigil_agent_nats_connected"], m["vigil_agent_spool_batches"], m["vigil_agent_spool_bytes"])
	}
	addr := a.MetricsAddr()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("metrics endpoint still listening after Run returned")
	}
}

func TestMetricsPortInUseFailsRun(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig("h", time.Second)
	cfg.Metrics.Listen = ln.Addr().String()
	a, _ := newTestAgent(t, cfg)
	if err := a.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "metrics listen") {
		t.Fatalf("Run with the port taken: %v", err)
	}
}

func TestLabelValueEscapes(t *testing.T) {
	if got := labelValue("a\"b\\c\nd"); got != `"a\"b\\c\nd"` {
		t.Fatalf("labelValue = %s", got)
	}
}
