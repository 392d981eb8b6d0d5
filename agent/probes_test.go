package agent

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/config"
	"github.com/vigil-sre/vigil/internal/wire"
)

// probeResults ticks c (always at time now) until want results came in
// and returns them by measurement/name.
func probeResults(t *testing.T, c Collector, now time.Time, want int) (map[string]point, error) {
	t.Helper()
	got := map[string]point{}
	var errs []error
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		err := c.Collect(context.Background(), now, func(m string, tags []wire.Tag, fields []wire.Field) {
			p := point{m: m, tags: map[string]string{}, fields: map[string]wire.Field{}}
			for _, tg := range tags {
				p.tags[tg.Key] = tg.Value
			}
			for _, f := range fields {
				p.fields[f.Key] = f
			}
			key := m + "/" + p.tags["name"]
			if _, dup := got[key]; dup {
				t.Errorf("%s emitted twice", key)
			}
			got[key] = p
		})
		if err != nil {
			errs = append(errs, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(got) < want {
		t.Fatalf("%d of %d probe results after 10s: %v", len(got), want, got)
	}
	if len(errs) > 0 {
		return got, errs[0]
	}
	return got, nil
}

func TestHTTPProbes(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Token") != "secret" {
			w.WriteHeader(http.StatusUnauthorized)
		}
		fmt.Fprint(w, "status: ok")
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tlsSrv := httptest.NewUnstartedServer(mux)
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the unverified probe's handshake fails
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	down := httptest.NewServer(mux)
	downURL := down.URL
	down.Close()

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	hdr := map[string]config.Expand{"X-Token": "secret"}
	c := newCollector(t, "probes", Options{HTTP: []HTTPProbe{
		{Name: "ok", URL: config.Expand(srv.URL + "/ok"), Headers: hdr, BodyRegex: `status: ok`},
		{Name: "no_token", URL: config.Expand(srv.URL + "/ok")},
		{Name: "wrong_status", URL: config.Expand(srv.URL + "/fail")},
		{Name: "expected_503", URL: config.Expand(srv.URL + "/fail"), ExpectStatus: []int{503}},
		{Name: "body_mismatch", URL: config.Expand(srv.URL + "/ok"), Headers: hdr, BodyRegex: `healthy`},
		{Name: "timeout", URL: config.Expand(srv.URL + "/slow"), Timeout: 100 * time.Millisecond},
		{Name: "down", URL: config.Expand(downURL + "/ok")},
		{Name: "tls", URL: config.Expand(tlsSrv.URL + "/ok"), Headers: hdr, CAFile: caFile},
		{Name: "tls_unverified", URL: config.Expand(tlsSrv.URL + "/ok"), Headers: hdr},
		{Name: "tls_insecure", URL: config.Expand(tlsSrv.URL + "/ok"), Headers: hdr, InsecureSkipVerify: true},
	}})
	defer c.(interface{ Close() error }).Close()
	res, err := probeResults(t, c, time.Now(), 10)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		up, status float64 // status -1: no status_code field
		bodyMatch  float64 // -1: no body_match field
		tls        bool
	}
	wants := map[string]want{
		"ok":             {1, 200, 1, false},
		"no_token":       {0, 401, -1, false},
		"wrong_status":   {0, 503, -1, false},
		"expected_503":   {1, 503, -1, false},
		"body_mismatch":  {0, 200, 0, false},
		"timeout":        {0, -1, -1, false},
		"down":           {0, -1, -1, false},
		"tls":            {1, 200, -1, true},
		"tls_unverified": {0, -1, -1, false},
		"tls_insecure":   {1, 200, -1, true},
	}
	notAfter := tlsSrv.Certificate().NotAfter
	for name, w := range wants {
		p := res["probe_http/"+name]
		if p.fields == nil {
			t.Errorf("%s: no result", name)
			continue
		}
		if got := p.num(t, "up"); got != w.up {
			t.Errorf("%s: up = %v, want %v", name, got, w.up)
		}
		if _, has := p.fields["status_code"]; has != (w.status >= 0) || has && p.num(t, "status_code") != w.status {
			t.Errorf("%s: status_code %v, want %v", name, p.fields["status_code"], w.status)
		}
		if _, has := p.fields["body_match"]; has != (w.bodyMatch >= 0) || has && p.num(t, "body_match") != w.bodyMatch {
			t.Errorf("%s: body_match %v, want %v", name, p.fields["body_match"], w.bodyMatch)
		}
		if _, has := p.fields["tls_days_left"]; has != w.tls {
			t.Errorf("%s: tls_days_left present %v, want %v", name, has, w.tls)
		} else if has {
			days := time.Until(notAfter).Hours() / 24
			inRange(t, name+" tls_days_left", p.num(t, "tls_days_left"), days-0.01, days+0.01)
		}
		inRange(t, name+" latency_ms", p.num(t, "latency_ms"), 0, 3000)
	}
	// The probe's deadline starts a moment before its latency clock does, so
	// the latency can come out a little under the 100 ms timeout.
	if l := res["probe_http/timeout"].num(t, "latency_ms"); l < 50 || l > 2000 {
		t.Errorf("timeout probe took %vms, want about 100", l)
	}
}

func TestTCPAndCommandProbes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	for _, p := range []string{"true", "false", "sleep"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not installed", p)
		}
	}
	c := newCollector(t, "probes", Options{
		TCP: []TCPProbe{
			{Name: "listening", Address: config.Expand(ln.Addr().String())},
			{Name: "refused", Address: config.Expand(closedAddr)},
		},
		Command: []CommandProbe{
			{Name: "true", Program: "true"},
			{Name: "false", Program: "false"},
			{Name: "exit3", Program: "sh", Args: []string{"-c", "exit 3"}},
			{Name: "hangs", Program: "sleep", Args: []string{"30"}, Timeout: 150 * time.Millisecond},
		},
	})
	defer c.(interface{ Close() error }).Close()
	start := time.Now()
	res, err := probeResults(t, c, time.Now(), 6)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the hanging command was not killed at its timeout: %v", took)
	}
	checks := []struct {
		key      string
		up, code float64 // code -2: no exit_code field
	}{
		{"probe_tcp/listening", 1, -2}, {"probe_tcp/refused", 0, -2},
		{"probe_cmd/true", 1, 0}, {"probe_cmd/false", 0, 1}, {"probe_cmd/exit3", 0, 3}, {"probe_cmd/hangs", 0, -1},
	}
	for _, ck := range checks {
		p := res[ck.key]
		if p.num(t, "up") != ck.up {
			t.Errorf("%s: up %v want %v", ck.key, p.num(t, "up"), ck.up)
		}
		if ck.code > -2 && p.num(t, "exit_code") != ck.code {
			t.Errorf("%s: exit_code %v want %v", ck.key, p.num(t, "exit_code"), ck.code)
		}
	}
	// As for the HTTP timeout: the deadline starts a moment before the
	// duration's clock (147.9 ms was seen under load).
	if d := res["probe_cmd/hangs"].num(t, "duration_ms"); d < 100 || d > 3000 {
		t.Errorf("hangs: duration_ms %v, want about 150", d)
	}
	inRange(t, "tcp latency_ms", res["probe_tcp/listening"].num(t, "latency_ms"), 0, 1000)
}

func TestProbeSchedule(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	c := newCollector(t, "probes", Options{HTTP: []HTTPProbe{{Name: "a", URL: config.Expand(srv.URL), Interval: time.Minute}}})
	defer c.(interface{ Close() error }).Close()
	t0 := time.Now()
	if _, err := probeResults(t, c, t0, 1); err != nil {
		t.Fatal(err)
	}
	// Not due again before its interval: ticks in between emit nothing.
	var n int
	emit := func(string, []wire.Tag, []wire.Field) { n++ }
	for i := 1; i < 5; i++ {
		c.Collect(context.Background(), t0.Add(time.Duration(i)*10*time.Second), emit)
	}
	if n != 0 {
		t.Fatalf("%d results before the interval passed", n)
	}
	if _, err := probeResults(t, c, t0.Add(time.Minute), 1); err != nil {
		t.Fatal(err)
	}
}

func TestCommandProbeNotFound(t *testing.T) {
	c := newCollector(t, "probes", Options{Command: []CommandProbe{{Name: "x", Program: "/nonexistent/vigil-probe"}}})
	defer c.(interface{ Close() error }).Close()
	res, err := probeResults(t, c, time.Now(), 1)
	if err == nil || !strings.Contains(err.Error(), "probe_cmd x") {
		t.Fatalf("error %v", err)
	}
	if p := res["probe_cmd/x"]; p.num(t, "up") != 0 || p.num(t, "exit_code") != -1 {
		t.Fatalf("result %v", p.fields)
	}
}

func TestProbesConfigErrors(t *testing.T) {
	y := `collectors:
  probes:
    http:
      - name: api
        url: ftp://x/
      - name: api
        url: http://127.0.0.1:8080/
        body_regex: "(x"
        expect_status: [999]
    tcp:
      - name: redis
        address: localhost
    command:
      - name: c
`
	_, err := ParseConfig("agent.yaml", []byte(y))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{
		`agent.yaml:5:14: collectors.probes.http[0].url: URL "ftp://x/": want http:// or https://`,
		`agent.yaml:6:15: collectors.probes.http[1].name: name "api" used twice`,
		`agent.yaml:8:21: collectors.probes.http[1].body_regex: bad regex`,
		`agent.yaml:9:24: collectors.probes.http[1].expect_status: status 999`,
		`agent.yaml:12:18: collectors.probes.tcp[0].address: address "localhost": want host:port`,
		`agent.yaml:14:9: collectors.probes.command[0]: program is required`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in\n%v", w, err)
		}
	}
}
