package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/internal/wire"
)

// StreamsConfig bounds the JetStream streams the controller owns.
type StreamsConfig struct {
	// TelemetryMaxAge: how long telemetry is kept for a controller or the
	// history writer to catch up. Default 24h.
	TelemetryMaxAge time.Duration `yaml:"telemetry_max_age"`
	// TelemetryMaxBytes: size bound of the telemetry stream. Default 1 GiB.
	TelemetryMaxBytes int64 `yaml:"telemetry_max_bytes"`
	// EventsMaxAge: how long events are kept (the history of record when no
	// InfluxDB is configured). Default 30 days (720h).
	EventsMaxAge time.Duration `yaml:"events_max_age"`
	// EventsMaxBytes: size bound of the events stream. Default 1 GiB.
	EventsMaxBytes int64 `yaml:"events_max_bytes"`
	// Duplicates: JetStream de-duplication window for Nats-Msg-Id. Default 10m.
	Duplicates time.Duration `yaml:"duplicates"`
	// Replicas of each stream (1 for a single server). Default 1.
	Replicas int `yaml:"replicas"`
}

// WithDefaults fills zero fields with their defaults.
func (c StreamsConfig) WithDefaults() StreamsConfig {
	if c.TelemetryMaxAge == 0 {
		c.TelemetryMaxAge = 24 * time.Hour
	}
	if c.TelemetryMaxBytes == 0 {
		c.TelemetryMaxBytes = 1 << 30
	}
	if c.EventsMaxAge == 0 {
		c.EventsMaxAge = 30 * 24 * time.Hour
	}
	if c.EventsMaxBytes == 0 {
		c.EventsMaxBytes = 1 << 30
	}
	if c.Duplicates == 0 {
		c.Duplicates = 10 * time.Minute
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	return c
}

// EnsureStreams creates or updates the telemetry and events streams.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, c StreamsConfig) error {
	c = c.WithDefaults()
	streams := []jetstream.StreamConfig{{
		Name:        wire.TelemetryStream,
		Description: "Vigil telemetry from agents (line protocol)",
		Subjects:    []string{wire.TelemetryWildcard},
		Storage:     jetstream.FileStorage,
		MaxAge:      c.TelemetryMaxAge,
		MaxBytes:    c.TelemetryMaxBytes,
		MaxMsgSize:  wire.MaxBatchBytes * 2,
		Duplicates:  c.Duplicates,
		Replicas:    c.Replicas,
		Discard:     jetstream.DiscardOld,
	}, {
		Name:        wire.EventsStream,
		Description: "Vigil events: anomalies, forecasts, rule transitions, actions",
		Subjects:    []string{wire.EventsWildcard},
		Storage:     jetstream.FileStorage,
		MaxAge:      c.EventsMaxAge,
		MaxBytes:    c.EventsMaxBytes,
		Duplicates:  c.Duplicates,
		Replicas:    c.Replicas,
		Discard:     jetstream.DiscardOld,
	}}
	for _, sc := range streams {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	return nil
}
