package agent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

var nan = math.NaN()

// Models is the model-drift collector. It reads observations of model-serving processes —
// NDJSON on a loopback HTTP endpoint (POST /v1/observations) and from prediction logs it
// follows — and compares, per model and feature, a sliding window with a reference, using the
// statistics of package detectors (PSI, KS, Jensen–Shannon, Wasserstein-1 over histograms with
// quantile bins from the reference; categorical features over bounded category counts).
//
// It writes, every tick (tags model, version = the latest version seen):
//
//	model        observations (counter), throughput_per_second (since the last tick),
//	             window_observations, confidence_mean, labeled, accuracy, error_rate,
//	             latency_p50_ms, latency_p90_ms, latency_p99_ms (window), reference_count,
//	             reference_ready (0/1), pending_labels, and the counters labels_unmatched,
//	             labels_expired, labels_evicted, features_dropped, unknown_features,
//	             type_errors, missing_values, categories_overflow
//	model_drift  (tags model, feature; feature "__prediction__" is the prediction)
//	             window_count, and psi, ks, js, wasserstein once window_count ≥ min_count
//	model_ingest (no tag) requests, too_large, lines, accepted, rejected, log_lines,
//	             log_rejected, log_rotations, log_truncations, models_dropped (counters)
//
// Window statistics (accuracy etc.) are omitted while undefined (no label, no latency).
// Memory per model: panes × (3.7 KB latency sketch + 16 B × (bins+1) per numeric feature +
// 8 B × (max_categories+1) per categorical one) + pending_labels × ~100 B, plus the reference
// sample (8 B per value, up to reference.first per feature) while the reference is built.
type Models struct {
	cfg ModelsConfig
	lim *modelLimits
	log *slog.Logger

	mu     sync.Mutex // guards everything below
	models map[string]*modelState
	names  []string
	st     ModelIngestStats

	ln      net.Listener
	addr    atomic.Value // string: ln's address, once started
	srv     *http.Server
	sem     chan struct{} // bounds concurrent requests
	tailers []*modelTail

	tags   []wire.Tag   // Collect scratch
	fields []wire.Field // Collect scratch
}

// ModelIngestStats counts what the model endpoint and logs received.
type ModelIngestStats struct {
	Requests, TooLarge        uint64
	Lines, Accepted, Rejected uint64 // every source
	LogLines, LogRejected     uint64
	ModelsDropped             uint64 // observations of a model beyond max_models
}

type modelTail struct {
	t        *Tailer
	path     string
	lastWarn time.Time
}

// NewModels builds the collector from a defaulted, validated section and loads the reference
// file, if any (a bad line in it is an error naming file, line and field).
func NewModels(cfg ModelsConfig, log *slog.Logger) (*Models, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Models{cfg: cfg, lim: cfg.limits(), log: log.With("collector", "models"),
		models: map[string]*modelState{}, sem: make(chan struct{}, 4)}
	if cfg.Reference.File != "" {
		if err := m.loadReference(cfg.Reference.File, time.Now()); err != nil {
			return nil, err
		}
	}
	for _, l := range cfg.Logs {
		m.tailers = append(m.tailers, &modelTail{t: NewTailer(l.Path, l.FromStart, cfg.MaxLineBytes+1), path: l.Path})
	}
	return m, nil
}

// Name implements Collector.
func (m *Models) Name() string { return "models" }

// loadReference reads the reference file: every model's observation lines become its
// reference, frozen at the end.
func (m *Models) loadReference(path string, now time.Time) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("models: reference: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), m.cfg.MaxLineBytes)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		o, err := decodeObservation(line)
		if err != nil {
			return fmt.Errorf("models: reference %s:%d: %w", path, n, err)
		}
		if o.isLabel {
			continue
		}
		st := m.models[o.model]
		if st == nil {
			if len(m.models) >= m.cfg.MaxModels {
				return fmt.Errorf("models: reference %s:%d: more than max_models %d models", path, n, m.cfg.MaxModels)
			}
			st = m.addModel(o.model, now)
			st.fromFile = true
		}
		st.addReference(&o)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("models: reference %s: after line %d: %w", path, n, err)
	}
	for _, st := range m.models {
		st.freeze()
	}
	return nil
}

func (m *Models) addModel(name string, now time.Time) *modelState {
	st := newModelState(name, m.lim, now)
	m.models[name] = st
	m.names = append(m.names, name)
	sort.Strings(m.names)
	return st
}

// apply adds one decoded line; m.mu is held. The error names the field.
func (m *Models) apply(o *observation, now time.Time) error {
	st := m.models[o.model]
	if st == nil {
		if o.isLabel {
			return fieldErr("id", "label for model %q, which has no observation yet", o.model)
		}
		if len(m.models) >= m.cfg.MaxModels {
			m.st.ModelsDropped++
			return fieldErr("model", "%q would be one model too many (max_models %d)", o.model, m.cfg.MaxModels)
		}
		st = m.addModel(o.model, now)
	}
	if o.isLabel {
		st.label(o.id, o.label, now)
		return nil
	}
	st.observe(o, now)
	return nil
}

// Start binds the HTTP endpoint (unless listen is off). Call it once, before Run.
func (m *Models) Start() error {
	if m.cfg.Listen == "off" {
		return nil
	}
	ln, err := net.Listen("tcp", m.cfg.Listen)
	if err != nil {
		return fmt.Errorf("models: %w", err)
	}
	m.ln = ln
	m.addr.Store(ln.Addr().String())
	m.srv = &http.Server{Handler: m.handler(), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: time.Minute, IdleTimeout: time.Minute, ErrorLog: slog.NewLogLogger(m.log.Handler(), slog.LevelWarn)}
	m.log.Info("model observation endpoint listening", "addr", ln.Addr().String())
	return nil
}

// Addr is the endpoint's address once started ("" when off).
func (m *Models) Addr() string {
	a, _ := m.addr.Load().(string)
	return a
}

// Run serves the endpoint and follows the logs until ctx ends, then shuts the server down
// (waiting up to 2s for requests in flight) and closes the logs.
func (m *Models) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	if m.srv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.srv.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("models: serve: %w", err)
			}
		}()
	}
	m.followLogs(ctx)
	if m.srv != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		if err := m.srv.Shutdown(sctx); err != nil {
			m.srv.Close()
		}
		cancel()
	}
	wg.Wait()
	for _, t := range m.tailers {
		t.t.Close()
	}
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// Stats returns the ingest counters.
func (m *Models) Stats() ModelIngestStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st
}

// addModels adds the model-drift collector when the models section is set.
func (a *Agent) addModels() error {
	if a.cfg.Models == nil {
		return nil
	}
	m, err := NewModels(*a.cfg.Models, a.log)
	if err != nil {
		return err
	}
	a.models = m
	a.addRunner(m, min(a.cfg.Interval/2, 5*time.Second))
	return nil
}

// startModels binds a's model endpoint, if configured, and runs it until ctx ends or the
// returned stop function is called; stop waits for it.
func (a *Agent) startModels(ctx context.Context) (stop func(), err error) {
	if a.models == nil {
		return func() {}, nil
	}
	if err := a.models.Start(); err != nil {
		return nil, err
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.models.Run(mctx); err != nil {
			a.log.Error("model endpoint stopped", "err", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}
