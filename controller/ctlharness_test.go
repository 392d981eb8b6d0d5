package controller_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/controller"
	"github.com/vigil-sre/vigil/internal/natsembed"
	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

// natsEnv is an embedded NATS with Vigil's streams and a client.
type natsEnv struct {
	srv *natsembed.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

func startNATSEnv(t *testing.T) *natsEnv {
	t.Helper()
	srv := natsembed.StartT(t)
	nc := connectNATS(t, srv.URL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := controller.EnsureStreams(ctx, js, controller.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	return &natsEnv{srv: srv, nc: nc, js: js}
}

func connectNATS(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// publish sends one telemetry batch of host through JetStream with the
// agent's headers; seq 0 sends none.
func (e *natsEnv) publish(t *testing.T, host, run string, seq uint64, batch string) *jetstream.PubAck {
	t.Helper()
	msg := nats.NewMsg(wire.TelemetrySubject(host))
	msg.Data = []byte(batch)
	if seq > 0 {
		msg.Header.Set(wire.HeaderRun, run)
		msg.Header.Set(wire.HeaderSeq, strconv.FormatUint(seq, 10))
		msg.Header.Set(wire.HeaderMsgID, wire.MsgID(host, run, seq))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := e.js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatalf("publish %s seq %d: %v", host, seq, err)
	}
	return ack
}

// ctlConfig is a controller config for tests: no API listener, no
// InfluxDB, the given extra YAML appended.
func ctlConfig(t *testing.T, url, extra string) *controller.Config {
	t.Helper()
	cfg, err := controller.ParseConfig("test.yaml", []byte(fmt.Sprintf("name: test-ctl\nnats: {url: %q}\napi: {listen: \"off\"}\n%s", url, extra)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runningCtl is a controller whose Run goroutine the test owns.
type runningCtl struct {
	c      *controller.Controller
	h      http.Handler
	cancel context.CancelFunc
	done   chan error
	err    error
	ended  bool
}

func startCtl(t *testing.T, cfg *controller.Config, nc *nats.Conn, set *rules.Set) *runningCtl {
	t.Helper()
	c, err := controller.New(cfg, nc, set, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rc := &runningCtl{c: c, h: c.Handler(), cancel: cancel, done: make(chan error, 1)}
	go func() { rc.done <- c.Run(ctx) }()
	t.Cleanup(func() { rc.stop(t) })
	return rc
}

// stop ends Run and fails the test if it does not return nil promptly.
func (rc *runningCtl) stop(t *testing.T) {
	t.Helper()
	if rc.ended {
		return
	}
	rc.ended = true
	rc.cancel()
	select {
	case rc.err = <-rc.done:
		if rc.err != nil {
			t.Errorf("Run: %v", rc.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of cancellation")
	}
}

func (rc *runningCtl) get(t *testing.T, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	rc.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

// metrics parses /metrics into name (with labels) -> value.
func (rc *runningCtl) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	rec := rc.get(t, "/metrics")
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("/metrics: bad sample line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

func (rc *runningCtl) metric(t *testing.T, name string) float64 {
	t.Helper()
	m := rc.metrics(t)
	v, ok := m[name]
	if !ok {
		t.Fatalf("metric %s missing", name)
	}
	return v
}

// statusDoc is /api/v1/status as a client reads it.
type statusDoc struct {
	Name  string    `json:"name"`
	Time  time.Time `json:"time"`
	Hosts []struct {
		Host     string    `json:"host"`
		LastSeen time.Time `json:"last_seen"`
		Series   int       `json:"series"`
	} `json:"hosts"`
	Rules []map[string]any `json:"rules"`
}

func (rc *runningCtl) status(t *testing.T) *statusDoc {
	t.Helper()
	rec := rc.get(t, "/api/v1/status")
	if rec.Code != http.StatusOK {
		t.Fatalf("/api/v1/status: %d %s", rec.Code, rec.Body)
	}
	var st statusDoc
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatalf("/api/v1/status: %v\n%s", err, rec.Body)
	}
	return &st
}

// hostSeries is the series count of host in st, -1 when it is absent.
func (st *statusDoc) hostSeries(host string) int {
	for _, h := range st.Hosts {
		if h.Host == host {
			return h.Series
		}
	}
	return -1
}

// ruleState finds the state of rule on subject in st ("" if absent).
func (st *statusDoc) ruleState(rule, subject string) string {
	for _, r := range st.Rules {
		if r["rule"] == rule && r["subject"] == subject {
			s, _ := r["state"].(string)
			return s
		}
	}
	return ""
}

// eventually polls cond every 10 ms for up to 15 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitMetric waits until metric reaches want and fails if it passes it.
func (rc *runningCtl) waitMetric(t *testing.T, name string, want float64) {
	t.Helper()
	var got float64
	deadline := time.Now().Add(15 * time.Second)
	for {
		got = rc.metric(t, name)
		if got >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got != want {
		t.Fatalf("%s = %v, want %v", name, got, want)
	}
}
