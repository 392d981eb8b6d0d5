package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/internal/config"
	"github.com/vigil-sre/vigil/internal/wire"
)

// History writes Vigil's history into InfluxDB from the JetStream streams,
// never from memory: events (JSON wire.Event on wire.EventsStream, one
// point each, measurement vigil_<kind>, the event's own timestamp) and, if
// enabled, raw telemetry (line protocol batches on wire.TelemetryStream).
//
// Each stream is read by a durable pull consumer. A batch of up to
// BatchSize messages (waiting at most FlushInterval for it to fill) is
// converted to line protocol and written with one blocking write; its
// messages are acknowledged only after InfluxDB accepted the write. So:
//
//   - an InfluxDB outage delays history and loses none: a retryable failure
//     (network error, timeout, 5xx, 429, 401/403/404 which are configuration
//     problems an operator can fix) keeps the batch unacknowledged and
//     retries it with exponential backoff (RetryMin doubling to RetryMax),
//     telling JetStream the messages are still in progress so they are not
//     redelivered meanwhile; at shutdown they are returned (Nak) to the
//     stream for the next run;
//   - a restarted controller resumes where it stopped (durable consumers);
//   - a batch InfluxDB refuses as bad data (400/422 "unable to parse",
//     "partial write", 413) is split in halves until only the bad message
//     is left, which is terminated and counted (Rejected); the good ones
//     are written. Telemetry lines the wire decoder finds malformed are
//     dropped and counted (Malformed) before the write, so one bad line
//     never costs its message.
//
// Writes are idempotent: InfluxDB keeps one point per series and
// timestamp, so a batch written again after a lost acknowledgement does not
// duplicate history. Telemetry lines without a timestamp get the time the
// stream stored their message, which keeps rewrites idempotent and dates
// samples by arrival, not by the end of an outage. Unsigned fields (12u)
// are written as integers, which InfluxDB 1.8 requires.
//
// Memory: one fetched batch per stream (at most BatchSize messages and
// about BatchBytes of line protocol per write).
type History struct {
	cfg     HistoryConfig
	js      jetstream.JetStream
	log     *slog.Logger
	streams []*historyStream
}

// HistoryConfig configures the InfluxDB history writer.
type HistoryConfig struct {
	// URL of InfluxDB (http://host:8086). "" disables InfluxDB history: the
	// events stream is then the history.
	URL config.Expand `yaml:"url"`
	// Token: an InfluxDB 2 API token, or "user:password" for InfluxDB 1.8
	// (any value when its authentication is off). Default "".
	Token config.Expand `yaml:"token"`
	// Org: InfluxDB 2 organisation; ignored by 1.8. Default "".
	Org string `yaml:"org"`
	// Bucket: InfluxDB 2 bucket, or "database/retention_policy" for 1.8.
	// Default "vigil/autogen".
	Bucket string `yaml:"bucket"`
	// Telemetry: also write the raw telemetry. Default true.
	Telemetry *bool `yaml:"telemetry"`
	// BatchSize: messages per fetch. Default 500.
	BatchSize int `yaml:"batch_size"`
	// BatchBytes: line protocol per write, at most (a larger fetch is
	// written in several parts). Default 8 MiB.
	BatchBytes int `yaml:"batch_bytes"`
	// FlushInterval: longest wait for a batch to fill. Default 1s.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// WriteTimeout of one write request. Default 10s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// RetryMin and RetryMax bound the exponential backoff between retries
	// of a failed write. Defaults 100ms and 30s.
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// Consumer: prefix of the durable consumer names (<prefix>-events,
	// <prefix>-telemetry). Default "vigil-history".
	Consumer string `yaml:"consumer"`
}

// WithDefaults fills zero fields with their defaults.
func (c HistoryConfig) WithDefaults() HistoryConfig {
	if c.Bucket == "" {
		c.Bucket = "vigil/autogen"
	}
	if c.Telemetry == nil {
		on := true
		c.Telemetry = &on
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = 8 << 20
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 30 * time.Second
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	if c.Consumer == "" {
		c.Consumer = "vigil-history"
	}
	return c
}

// HistoryStats counts what the writer did, per stream.
type HistoryStats struct {
	// Enabled is false when no InfluxDB URL is configured.
	Enabled   bool
	Events    HistoryStreamStats
	Telemetry HistoryStreamStats
}

// Lag is the number of messages not yet in InfluxDB, over both streams.
func (s HistoryStats) Lag() uint64 { return s.Events.Lag() + s.Telemetry.Lag() }

// HistoryStreamStats counts the writing of one stream.
type HistoryStreamStats struct {
	// Messages written and acknowledged.
	Messages uint64
	// Points (lines) InfluxDB accepted.
	Points uint64
	// Batches: successful write requests.
	Batches uint64
	// Retries: failed write requests that were retried.
	Retries uint64
	// Rejected: messages terminated, undecodable or refused by InfluxDB as
	// bad data.
	Rejected uint64
	// Malformed: telemetry lines dropped before writing.
	Malformed uint64
	// Pending: messages in the stream not yet fetched (as of the last
	// fetch); InFlight: fetched, not yet acknowledged.
	Pending  uint64
	InFlight uint64
	// LastWrite: time of the last successful write.
	LastWrite time.Time
	// LastError of a write, fetch or consumer setup, and its time.
	LastError   string
	LastErrorAt time.Time
}

// Lag is Pending + InFlight.
func (s HistoryStreamStats) Lag() uint64 { return s.Pending + s.InFlight }

// NewHistory checks the configuration; Run does all I/O.
func NewHistory(cfg HistoryConfig, js jetstream.JetStream, log *slog.Logger) (*History, error) {
	cfg = cfg.WithDefaults()
	if js == nil {
		return nil, errors.New("history: no JetStream context")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &History{cfg: cfg, js: js, log: log}
	if cfg.URL == "" {
		return h, nil
	}
	h.streams = append(h.streams, newHistoryStream(h, wire.EventsStream, cfg.Consumer+"-events", newEventLines))
	if *cfg.Telemetry {
		h.streams = append(h.streams, newHistoryStream(h, wire.TelemetryStream, cfg.Consumer+"-telemetry", newTelemetryLines))
	}
	return h, nil
}

// Enabled reports whether an InfluxDB URL is configured.
func (h *History) Enabled() bool { return h.cfg.URL != "" }

// Run writes history until ctx ends and returns nil then. A write in flight
// when ctx ends is finished (bounded by WriteTimeout); messages not yet
// written are returned to their stream for the next run. Without a URL it
// only waits for ctx.
func (h *History) Run(ctx context.Context) error {
	if !h.Enabled() {
		<-ctx.Done()
		return nil
	}
	opts := influxdb2.DefaultOptions().
		SetHTTPRequestTimeout(uint((h.cfg.WriteTimeout + time.Second - 1) / time.Second))
	client := influxdb2.NewClientWithOptions(h.cfg.URL.String(), h.cfg.Token.String(), opts)
	defer client.Close()
	w := client.WriteAPIBlocking(h.cfg.Org, h.cfg.Bucket)

	var wg sync.WaitGroup
	errs := make([]error, len(h.streams))
	for i, s := range h.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.run(ctx, w)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	return nil
}

// Stats returns a snapshot of the counters.
func (h *History) Stats() HistoryStats {
	st := HistoryStats{Enabled: h.Enabled()}
	for _, s := range h.streams {
		switch s.stream {
		case wire.EventsStream:
			st.Events = s.snapshot()
		case wire.TelemetryStream:
			st.Telemetry = s.snapshot()
		}
	}
	return st
}
