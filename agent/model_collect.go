package agent

import (
	"context"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// Collect implements Collector: it writes the model, model_drift and model_ingest points
// (see Models) for the window ending at now.
func (m *Models) Collect(_ context.Context, now time.Time, emit Emit) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, name := range m.names {
		st := m.models[name]
		st.rotate(now)
		st.pending.expire(now)
		m.emitModel(st, now, emit)
		if !st.frozen {
			continue
		}
		for _, f := range st.order {
			m.emitDrift(st, f, emit)
		}
	}
	s := m.st
	var rot, trunc uint64
	for _, t := range m.tailers {
		ts := t.t.Stats()
		rot += ts.Rotations
		trunc += ts.Truncations
	}
	m.fields = append(m.fields[:0],
		wire.I("requests", i64(s.Requests)), wire.I("too_large", i64(s.TooLarge)),
		wire.I("lines", i64(s.Lines)), wire.I("accepted", i64(s.Accepted)), wire.I("rejected", i64(s.Rejected)),
		wire.I("log_lines", i64(s.LogLines)), wire.I("log_rejected", i64(s.LogRejected)),
		wire.I("log_rotations", i64(rot)), wire.I("log_truncations", i64(trunc)),
		wire.I("models_dropped", i64(s.ModelsDropped)))
	emit("model_ingest", nil, m.fields)
	return nil
}

func (m *Models) emitModel(st *modelState, now time.Time, emit Emit) {
	n, conf, labeled, correct := st.windowStats()
	elapsed := now.Sub(st.lastCollect).Seconds()
	tput := 0.0
	if elapsed > 0 {
		tput = float64(st.sinceCollect) / elapsed
	}
	st.sinceCollect, st.lastCollect = 0, now
	var overflow uint64
	for _, f := range st.features {
		if f.cats != nil {
			overflow += f.cats.Overflow
		}
	}
	fs := append(m.fields[:0],
		wire.I("observations", i64(st.observations)),
		wire.F("throughput_per_second", tput),
		wire.I("window_observations", i64(n)),
		wire.I("labeled", i64(labeled)),
		wire.I("reference_count", int64(st.refN)),
		wire.I("reference_ready", int64(btoi(st.frozen))),
		wire.I("pending_labels", int64(st.pending.live())),
		wire.I("labels_unmatched", i64(st.labelsUnmatched)),
		wire.I("labels_expired", i64(st.pending.expired)),
		wire.I("labels_evicted", i64(st.pending.evicted)),
		wire.I("features_dropped", i64(st.featuresDropped)),
		wire.I("unknown_features", i64(st.unknownFeatures)),
		wire.I("type_errors", i64(st.typeErrors)),
		wire.I("missing_values", i64(st.missing)),
		wire.I("categories_overflow", i64(overflow)),
	)
	if conf == conf {
		fs = append(fs, wire.F("confidence_mean", conf))
	}
	if labeled > 0 {
		acc := float64(correct) / float64(labeled)
		fs = append(fs, wire.F("accuracy", acc), wire.F("error_rate", 1-acc))
	}
	if st.latTotal.Count() > 0 {
		fs = append(fs, wire.F("latency_p50_ms", st.latTotal.Quantile(0.5)),
			wire.F("latency_p90_ms", st.latTotal.Quantile(0.9)),
			wire.F("latency_p99_ms", st.latTotal.Quantile(0.99)))
	}
	m.fields = fs
	m.tags = append(m.tags[:0], wire.Tag{Key: "model", Value: st.name}, wire.Tag{Key: "version", Value: st.version})
	emit("model", m.tags, m.fields)
}

func (m *Models) emitDrift(st *modelState, f *feature, emit Emit) {
	d, n := f.drift()
	m.fields = append(m.fields[:0], wire.I("window_count", int64(n)))
	if n >= float64(st.lim.minCount) {
		m.fields = append(m.fields, wire.F("psi", d.PSI), wire.F("ks", d.KS), wire.F("js", d.JS), wire.F("wasserstein", d.Wasserstein))
	}
	m.tags = append(m.tags[:0], wire.Tag{Key: "model", Value: st.name}, wire.Tag{Key: "feature", Value: f.name})
	emit("model_drift", m.tags, m.fields)
}

// Interface guard.
var _ Collector = (*Models)(nil)
