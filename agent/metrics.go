package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The agent's Prometheus endpoint: GET /metrics on metrics.listen (off by
// default; use a loopback address, it has no authentication), in the
// Prometheus text format 0.0.4, written by hand (no client library). It
// shows the same self-monitoring as the vigil_agent measurement, so a
// Prometheus that scrapes the host sees the agent's health even while NATS
// is away:
//
//	vigil_agent_info{host,run}                   1
//	vigil_agent_heartbeat_seq                    ticks taken in this run
//	vigil_agent_batches_total                    batches made (last Vigil-Seq)
//	vigil_agent_published_total, _acked_total, _duplicates_total,
//	  _resent_total, _publish_errors_total       publisher counters
//	vigil_agent_dropped_batches_total            batches lost for good
//	vigil_agent_backlog_batches, _backlog_bytes  in memory, unacknowledged
//	vigil_agent_spool_batches, _spool_bytes      on disk, unacknowledged
//	vigil_agent_spool_corrupt_total, _spool_errors_total
//	vigil_agent_nats_connected                   1 or 0
//	vigil_agent_collector_runs_total{collector}, _errors_total, _timeouts_total,
//	  _panics_total, _skipped_total               per collector
//	vigil_agent_collector_duration_seconds{collector}  last finished run
//	vigil_agent_collector_points{collector}      points of the last run

// MetricsHandler serves GET /metrics (and GET /healthz).
func (a *Agent) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		a.WriteMetrics(w)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	return mux
}

// WriteMetrics writes the counters in the Prometheus text format.
func (a *Agent) WriteMetrics(w io.Writer) {
	st := a.Stats()
	var b strings.Builder
	metric := func(name, typ, help string, v float64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, help, name, typ, name, num(v))
	}
	fmt.Fprintf(&b, "# HELP vigil_agent_info The agent's host and run id.\n# TYPE vigil_agent_info gauge\nvigil_agent_info{host=%s,run=%s} 1\n",
		labelValue(a.host), labelValue(st.Run))
	metric("vigil_agent_heartbeat_seq", "gauge", "Ticks taken in this run (the heartbeat_seq field).", float64(st.Ticks))
	metric("vigil_agent_batches_total", "counter", "Batches made in this run (the last Vigil-Seq).", float64(st.Seq))
	metric("vigil_agent_published_total", "counter", "Publish attempts.", float64(st.Published))
	metric("vigil_agent_acked_total", "counter", "Batches JetStream acknowledged.", float64(st.Acked))
	metric("vigil_agent_duplicates_total", "counter", "Acknowledged batches JetStream already had.", float64(st.Duplicates))
	metric("vigil_agent_resent_total", "counter", "Publish attempts after the first of a batch.", float64(st.Resent))
	metric("vigil_agent_publish_errors_total", "counter", "Failed publish attempts.", float64(st.PublishErrors))
	metric("vigil_agent_dropped_batches_total", "counter", "Batches lost for good (backlog or spool full, damaged, too large).", float64(st.Dropped))
	metric("vigil_agent_backlog_batches", "gauge", "Batches in memory not yet acknowledged.", float64(st.Backlog))
	metric("vigil_agent_backlog_bytes", "gauge", "Bytes of the batches in memory not yet acknowledged.", float64(st.BacklogBytes))
	metric("vigil_agent_spool_batches", "gauge", "Batches in the disk spool not yet acknowledged.", float64(st.Spool.Batches))
	metric("vigil_agent_spool_bytes", "gauge", "Bytes of the disk spool's files.", float64(st.Spool.Bytes))
	metric("vigil_agent_spool_corrupt_total", "counter", "Damaged or cut-short spool records skipped.", float64(st.Spool.Corrupt))
	metric("vigil_agent_spool_errors_total", "counter", "Failed reads and writes of spool files.", float64(st.Spool.Errors))
	metric("vigil_agent_nats_connected", "gauge", "1 while connected to NATS.", b2f(st.Connected))
	writeCollectorMetrics(&b, st.Collectors)
	if a.exec != nil {
		writeExecutorMetrics(&b, a.exec.stats())
	}
	_, _ = io.WriteString(w, b.String())
}

func writeCollectorMetrics(b *strings.Builder, cs map[string]CollectorStats) {
	names := make([]string, 0, len(cs))
	for n := range cs {
		names = append(names, n)
	}
	sort.Strings(names)
	family := []struct {
		name, typ, help string
		v               func(CollectorStats) float64
	}{
		{"vigil_agent_collector_runs_total", "counter", "Ticks the collector was due.", func(c CollectorStats) float64 { return float64(c.Runs) }},
		{"vigil_agent_collector_errors_total", "counter", "Runs that failed, panicked, timed out or were skipped.", func(c CollectorStats) float64 { return float64(c.Errors) }},
		{"vigil_agent_collector_timeouts_total", "counter", "Runs that did not finish within the timeout.", func(c CollectorStats) float64 { return float64(c.Timeouts) }},
		{"vigil_agent_collector_panics_total", "counter", "Runs that panicked.", func(c CollectorStats) float64 { return float64(c.Panics) }},
		{"vigil_agent_collector_skipped_total", "counter", "Ticks skipped because the previous run was still going.", func(c CollectorStats) float64 { return float64(c.Skipped) }},
		{"vigil_agent_collector_duration_seconds", "gauge", "Duration of the last finished run.", func(c CollectorStats) float64 { return c.LastDuration.Seconds() }},
		{"vigil_agent_collector_points", "gauge", "Points emitted by the last finished run.", func(c CollectorStats) float64 { return float64(c.Points) }},
	}
	for _, f := range family {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.typ)
		for _, n := range names {
			fmt.Fprintf(b, "%s{collector=%s} %s\n", f.name, labelValue(n), num(f.v(cs[n])))
		}
	}
}

// labelValue quotes a label value: backslash, double quote and newline
// escaped, as the text format wants.
func labelValue(s string) string { return `"` + labelEscaper.Replace(s) + `"` }

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// serveMetrics listens on metrics.listen (if set) and serves
// MetricsHandler until stop is called; stop waits for the server.
func (a *Agent) serveMetrics() (stop func(), err error) {
	addr := a.cfg.MetricsAddr()
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen %s: %w", addr, err)
	}
	a.mu.Lock()
	a.metricsAddr = ln.Addr().String()
	a.mu.Unlock()
	srv := &http.Server{Handler: a.MetricsHandler(), ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("metrics server failed", "err", err)
		}
	}()
	a.log.Info("metrics listening", "addr", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		wg.Wait()
	}, nil
}

// MetricsAddr is the address the metrics endpoint listens on ("" when off
// or before Run), useful with port 0.
func (a *Agent) MetricsAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.metricsAddr
}
