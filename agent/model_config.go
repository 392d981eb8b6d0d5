package agent

import (
	"fmt"
	"net"
	"os"
	"time"

	"github.com/vigil-sre/vigil/detectors"
)

// ModelsConfig is the models: section: model-drift monitoring of model-serving processes on
// this host. It is off unless the section is present; `models: {}` turns it on with the
// defaults (the HTTP endpoint on 127.0.0.1:9466, a 5m window, a reference frozen from each
// model's first 1000 observations).
type ModelsConfig struct {
	// Listen is the loopback address of the observation endpoint (POST NDJSON to
	// /v1/observations). Default 127.0.0.1:9466; "off" disables it. Only loopback addresses
	// are accepted: the endpoint has no authentication.
	Listen string `yaml:"listen"`
	// Logs are NDJSON prediction logs to follow (same schema), across rotation and truncation.
	Logs []ModelLogConfig `yaml:"logs"`
	// PollInterval: how often the logs are read. Default 1s.
	PollInterval time.Duration `yaml:"poll_interval"`
	// Window over which drift and the window statistics are computed: a duration (default
	// 5m), or WindowCount observations (then Window must be unset). The window slides by
	// 1/Panes of its length.
	Window      time.Duration `yaml:"window"`
	WindowCount int           `yaml:"window_count"`
	// Panes the window is cut into (it slides by one pane). Default 10; 1 to 100.
	Panes int `yaml:"panes"`
	// MinCount: a feature's drift statistics are written only when the window holds at least
	// this many of its values (window_count is always written). Default 100.
	MinCount int `yaml:"min_count"`
	// Bins: quantile bins per numeric feature, from the reference (plus one below and one
	// above the reference's range). Default 10; 2 to 254.
	Bins int `yaml:"bins"`
	// Reference every model is compared with.
	Reference ModelReferenceConfig `yaml:"reference"`
	// MaxModels: observations of further models are rejected and counted. Default 16.
	MaxModels int `yaml:"max_models"`
	// MaxFeatures per model: further features are dropped and counted. Default 64.
	MaxFeatures int `yaml:"max_features"`
	// MaxCategories per categorical feature; further values share an "other" bucket
	// (counted). Default 32.
	MaxCategories int `yaml:"max_categories"`
	// PendingLabels: observations with an id kept per model, waiting for their label; the
	// oldest is evicted (counted) beyond. Default 4096.
	PendingLabels int `yaml:"pending_labels"`
	// LabelTTL: how long an observation waits for its label. Default 1h.
	LabelTTL time.Duration `yaml:"label_ttl"`
	// LabelTolerance: a numeric prediction is correct when |prediction − label| ≤ this.
	// Default 0 (equal).
	LabelTolerance float64 `yaml:"label_tolerance"`
	// MaxBodyBytes: larger requests get 413. Default 4 MiB.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// MaxLineBytes: longer lines are rejected. Default 64 KiB.
	MaxLineBytes int `yaml:"max_line_bytes"`
}

// ModelLogConfig is one prediction log to follow.
type ModelLogConfig struct {
	// Path of the file (it may not exist yet).
	Path string `yaml:"path"`
	// FromStart reads what the file holds already; default false (start at its end).
	FromStart bool `yaml:"from_start"`
}

// ModelReferenceConfig says what a model's window is compared with.
type ModelReferenceConfig struct {
	// File: an NDJSON file of observations (the schema of the endpoint, label lines ignored);
	// the lines of each model in it are that model's reference. Optional.
	File string `yaml:"file"`
	// First: models not in File take their first N observations as the reference (frozen
	// from then on). Default 1000; 10 to 100000.
	First int `yaml:"first"`
}

// Defaults of the models section.
const (
	DefaultModelsListen = "127.0.0.1:9466"
	defaultModelWindow  = 5 * time.Minute
)

// withDefaults fills unset fields.
func (c *ModelsConfig) withDefaults() {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	if c.Listen == "" {
		c.Listen = DefaultModelsListen
	}
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
	if c.Window == 0 && c.WindowCount == 0 {
		c.Window = defaultModelWindow
	}
	def(&c.Panes, 10)
	def(&c.MinCount, 100)
	def(&c.Bins, detectors.DefaultDriftBins)
	def(&c.Reference.First, 1000)
	def(&c.MaxModels, 16)
	def(&c.MaxFeatures, 64)
	def(&c.MaxCategories, detectors.DefaultMaxCategories)
	def(&c.PendingLabels, 4096)
	if c.LabelTTL == 0 {
		c.LabelTTL = time.Hour
	}
	def(&c.MaxBodyBytes, 4<<20)
	def(&c.MaxLineBytes, 64<<10)
}

// validate checks a defaulted section; bad positions errors at models.<key>.
func (c *ModelsConfig) validate(bad badFunc) {
	if c.Listen != "off" {
		if err := loopbackAddr(c.Listen); err != nil {
			bad("models.listen", "models.listen %q: %v", c.Listen, err)
		}
	}
	rangeInt := func(key string, v, lo, hi int) {
		if v < lo || v > hi {
			bad("models."+key, "models.%s %d: want %d to %d", key, v, lo, hi)
		}
	}
	switch {
	case c.Window < 0:
		bad("models.window", "models.window must not be negative")
	case c.Window > 0 && c.WindowCount != 0:
		bad("models.window_count", "models: set window or window_count, not both")
	case c.WindowCount != 0:
		rangeInt("window_count", c.WindowCount, 10, 10_000_000)
	}
	rangeInt("panes", c.Panes, 1, 100)
	if c.Window > 0 && c.Window/time.Duration(c.Panes) < time.Second {
		bad("models.window", "models.window %s is too short for %d panes (at least 1s each)", c.Window, c.Panes)
	}
	if c.PollInterval < 10*time.Millisecond {
		bad("models.poll_interval", "models.poll_interval %s is too short (at least 10ms)", c.PollInterval)
	}
	rangeInt("min_count", c.MinCount, 1, 10_000_000)
	rangeInt("bins", c.Bins, 2, detectors.MaxDriftBins-2)
	rangeInt("reference.first", c.Reference.First, 10, maxRefSample)
	rangeInt("max_models", c.MaxModels, 1, 1000)
	rangeInt("max_features", c.MaxFeatures, 1, 1000)
	rangeInt("max_categories", c.MaxCategories, 1, 10000)
	rangeInt("pending_labels", c.PendingLabels, 1, 1_000_000)
	rangeInt("max_body_bytes", c.MaxBodyBytes, 1024, 1<<30)
	rangeInt("max_line_bytes", c.MaxLineBytes, 256, 16<<20)
	if c.LabelTTL < 0 {
		bad("models.label_ttl", "models.label_ttl must not be negative")
	}
	if !(c.LabelTolerance >= 0) {
		bad("models.label_tolerance", "models.label_tolerance must not be negative")
	}
	if f := c.Reference.File; f != "" {
		if _, err := os.Stat(f); err != nil {
			bad("models.reference.file", "models.reference.file: %v", err)
		}
	}
	if c.Listen == "off" && len(c.Logs) == 0 {
		bad("models", "models: listen is off and no logs are set: nothing to read observations from")
	}
	for i, l := range c.Logs {
		if l.Path == "" {
			bad(fmt.Sprintf("models.logs[%d]", i), "models.logs[%d].path must be set", i)
		}
	}
}

// loopbackAddr checks host:port with a loopback host.
func loopbackAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if port == "" {
		return fmt.Errorf("no port")
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("want a loopback address (127.0.0.1, ::1 or localhost): the endpoint has no authentication")
	}
	return nil
}

func (c *ModelsConfig) limits() *modelLimits {
	return &modelLimits{
		window: c.Window, windowCount: c.WindowCount, panes: c.Panes, minCount: c.MinCount,
		bins: c.Bins, first: c.Reference.First, maxFeatures: c.MaxFeatures,
		maxCategories: c.MaxCategories, tolerance: c.LabelTolerance,
		pendingLabels: c.PendingLabels, labelTTL: c.LabelTTL,
	}
}
