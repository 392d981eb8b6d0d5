package controller

import (
	_ "embed"
	"fmt"
	"os"
	"time"

	"github.com/vigil-sre/vigil/detectors"
	"github.com/vigil-sre/vigil/internal/config"
	"github.com/vigil-sre/vigil/rules"
)

// ExampleConfig is the documented example configuration (example.yaml).
//
//go:embed example.yaml
var ExampleConfig []byte

// Config of vigil-controller. Zero values take the defaults stated here.
type Config struct {
	// Name of this controller instance; default the host name.
	Name string `yaml:"name"`
	// NATS connection.
	NATS NATSConfig `yaml:"nats"`
	// Streams: retention of the telemetry and events streams.
	Streams StreamsConfig `yaml:"streams"`
	// Consumer is the durable JetStream consumer name on the telemetry
	// stream; a restarted controller with the same name resumes where it
	// stopped. Every controller of a shard needs its own (a shared durable
	// consumer would split the telemetry between them). Default
	// "vigil-controller-<name>" (characters other than letters, digits,
	// '_' and '-' replaced by '_').
	Consumer string `yaml:"consumer"`
	// Lease: the leader lease among the controllers of a shard (lease.go).
	Lease LeaseConfig `yaml:"lease"`
	// Rules: rule files or directories of *.yaml rule files.
	Rules []string `yaml:"rules"`
	// Detectors run on every numeric series.
	Detectors DetectorsConfig `yaml:"detectors"`
	// Forecasts: series whose time to a level is predicted and recorded.
	// Default: disk and inode usage to 100 %, memory to 95 %, 24h horizon.
	Forecasts []ForecastConfig `yaml:"forecasts"`
	// Actions: limits of the action dispatcher.
	Actions ActionsConfig `yaml:"actions"`
	// History: InfluxDB writer. Without a URL the events stream is the
	// history.
	History HistoryConfig `yaml:"history"`
	// API: HTTP listen address for /api/v1 and /metrics; default
	// "127.0.0.1:9464", "" keeps the default, "off" disables it.
	API APIConfig `yaml:"api"`
	// Services the controller fails over (failover_config.go); default none.
	Services []ServiceConfig `yaml:"services"`
}

// NATSConfig is how to reach NATS.
type NATSConfig struct {
	// URL, comma-separated for a cluster. Default nats://127.0.0.1:4222.
	URL config.Expand `yaml:"url"`
	// User and Password, or Token, or Creds (a credentials file), or
	// NKeySeed (a file holding an nkey seed). All optional.
	User     config.Expand `yaml:"user"`
	Password config.Expand `yaml:"password"`
	Token    config.Expand `yaml:"token"`
	Creds    config.Expand `yaml:"creds"`
}

// DetectorsConfig chooses the detectors run on every numeric series.
type DetectorsConfig struct {
	// Anomaly detector name. Default "vigil" (the ensemble scored by
	// `vigil bench nab`).
	Anomaly string `yaml:"anomaly"`
	// Forecaster name: robust_trend, trend or holt. Default "robust_trend"
	// (chosen by `vigil bench forecast`).
	Forecaster string `yaml:"forecaster"`
	// AnomalyThreshold: a likelihood at or above it is recorded as an
	// anomaly event. Default 0.9999.
	AnomalyThreshold float64 `yaml:"anomaly_threshold"`
	// AnomalyMinGap: at most one anomaly event per series in this time.
	// Default 1m.
	AnomalyMinGap time.Duration `yaml:"anomaly_min_gap"`
	// AnomalyHold: anomaly() in rules returns a series' highest likelihood
	// of the last AnomalyHold of its samples, so that an anomaly reported
	// on one sample (the ensemble marks an onset once) is seen by a rule
	// group evaluated less often. 0 keeps the default; a negative value
	// reads the latest sample only. Default 2m.
	AnomalyHold time.Duration `yaml:"anomaly_hold"`
	// Trend: parameters of the forecaster, for robust_trend and trend
	// (holt takes its defaults). Unset fields keep the forecaster's own
	// defaults: robust_trend window 1h, min_samples 5, min_span 10m; trend
	// window 10m, min_samples 5, min_span 30s.
	Trend TrendConfig `yaml:"trend"`
}

// TrendConfig tunes the regression of the trend forecasters.
type TrendConfig struct {
	// Window: time constant of the exponential forgetting.
	Window time.Duration `yaml:"window"`
	// MinSamples before a forecast is made.
	MinSamples int `yaml:"min_samples"`
	// MinSpan of data before a forecast is made.
	MinSpan time.Duration `yaml:"min_span"`
	// Peaks and Ramp switch robust_trend's peak envelope and ramp test
	// (detectors/robusttrend.go) on or off; unset: on. Off saves their
	// cost (about 45 ns per sample and 1 KiB per series together).
	Peaks *bool `yaml:"peaks"`
	Ramp  *bool `yaml:"ramp"`
}

// apply overrides the set fields of a forecaster's window parameters.
func (t TrendConfig) apply(window *time.Duration, minSamples *int, minSpan *time.Duration) {
	if t.Window > 0 {
		*window = t.Window
	}
	if t.MinSamples > 0 {
		*minSamples = t.MinSamples
	}
	if t.MinSpan > 0 {
		*minSpan = t.MinSpan
	}
}

// newForecaster returns a constructor for the configured forecaster.
func (d DetectorsConfig) newForecaster() (func() detectors.Forecaster, error) {
	switch d.Forecaster {
	case "robust_trend":
		rc := detectors.DefaultRobustTrendConfig()
		d.Trend.apply(&rc.Window, &rc.MinSamples, &rc.MinSpan)
		if rc.BaseWindow > 0 && rc.BaseWindow < rc.Window {
			rc.BaseWindow = rc.Window // the slow baseline is never faster than the line
		}
		if d.Trend.Peaks != nil && !*d.Trend.Peaks {
			rc.BaseWindow = 0
		}
		if d.Trend.Ramp != nil && !*d.Trend.Ramp {
			rc.RampBlock = 0
		}
		if err := rc.Validate(); err != nil {
			return nil, err
		}
		return func() detectors.Forecaster { return detectors.NewRobustTrend(rc) }, nil
	}
	if d.Trend.Peaks != nil || d.Trend.Ramp != nil {
		return nil, fmt.Errorf("trend.peaks and trend.ramp apply to robust_trend only, not %s", d.Forecaster)
	}
	switch d.Forecaster {
	case "trend":
		tc := detectors.DefaultTrendConfig()
		d.Trend.apply(&tc.Window, &tc.MinSamples, &tc.MinSpan)
		if err := tc.Validate(); err != nil {
			return nil, err
		}
		return func() detectors.Forecaster { return detectors.NewTrend(tc) }, nil
	}
	if _, err := detectors.NewForecaster(d.Forecaster); err != nil {
		return nil, err
	}
	return func() detectors.Forecaster { f, _ := detectors.NewForecaster(d.Forecaster); return f }, nil
}

// ForecastConfig watches series for a predicted crossing of a level.
type ForecastConfig struct {
	// Series selector, e.g. "disk.used_percent" or
	// "disk.used_percent{path=/data}".
	Series string `yaml:"series"`
	// Level the series must not reach.
	Level float64 `yaml:"level"`
	// Horizon: a crossing predicted within it is a prediction. Default 2h.
	Horizon time.Duration `yaml:"horizon"`
	// MinConfidence to report a prediction. Default 0.9.
	MinConfidence float64 `yaml:"min_confidence"`
	// Interval between two updates of a standing prediction. Default 1m.
	Interval time.Duration `yaml:"interval"`

	sel *rules.Selector
}

// ActionsConfig limits the dispatcher.
type ActionsConfig struct {
	// Concurrency: actions running at once. Default 4.
	Concurrency int `yaml:"concurrency"`
	// MaxOutput: bytes of an action's output kept. Default 64 KiB.
	MaxOutput int `yaml:"max_output"`
	// DryRun forces every action to dry-run mode. Default false.
	DryRun bool `yaml:"dry_run"`
	// PassEnv names the controller's environment variables an exec action
	// inherits; nothing else of it reaches the program. Default PATH, HOME,
	// USER, LANG, LC_ALL, TZ, TMPDIR.
	PassEnv []string `yaml:"pass_env"`
	// ApprovalTimeout: an action of a rule in manual mode that nobody
	// approves or denies within it is dropped (outcome expired). Default 1h.
	ApprovalTimeout time.Duration `yaml:"approval_timeout"`
	// Safety is the action ledger, retries, rate limits and the host
	// command signing key (controller/ledger.go, action_host.go).
	Safety `yaml:",inline"`

	rt       *actionRuntime   // NATS connection and signing key, set by the dispatcher
	failover *failoverManager // for the failover action kind (failover_action.go)
}

func (a ActionsConfig) approvalTimeout() time.Duration {
	if a.ApprovalTimeout <= 0 {
		return time.Hour
	}
	return a.ApprovalTimeout
}

// DefaultPassEnv is the default of actions.pass_env.
var DefaultPassEnv = []string{"PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR"}

func (a ActionsConfig) passEnv() []string {
	if a.PassEnv == nil {
		return DefaultPassEnv
	}
	return a.PassEnv
}

// APIConfig is the HTTP API.
type APIConfig struct {
	Listen string `yaml:"listen"`
}

// LoadConfig reads and validates a controller config file.
func LoadConfig(path string) (*Config, error) {
	var c Config
	doc, err := config.Load(path, &c)
	if err != nil {
		return nil, err
	}
	if err := c.validate(doc); err != nil {
		return nil, err
	}
	return &c, nil
}

// ParseConfig decodes and validates config data named file.
func ParseConfig(file string, data []byte) (*Config, error) {
	var c Config
	doc, err := config.Decode(file, data, &c)
	if err != nil {
		return nil, err
	}
	if err := c.validate(doc); err != nil {
		return nil, err
	}
	return &c, nil
}

// DefaultForecasts are watched when the config names none. The 2h
// horizon comes from `vigil bench forecast`: longer horizons turn daily
// load patterns into false alarms.
func DefaultForecasts() []ForecastConfig {
	return []ForecastConfig{
		{Series: "disk.used_percent", Level: 100, Horizon: 2 * time.Hour},
		{Series: "disk.inodes_used_percent", Level: 100, Horizon: 2 * time.Hour},
		{Series: "mem.used_percent", Level: 95, Horizon: 2 * time.Hour},
	}
}

func (c *Config) validate(doc *config.Doc) error {
	var errs config.Errors
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	if c.NATS.URL == "" {
		c.NATS.URL = "nats://127.0.0.1:4222"
	}
	if c.Consumer == "" {
		c.Consumer = "vigil-controller-" + consumerToken(c.Name)
	}
	errs = append(errs, c.Lease.validate(doc)...)
	if c.Detectors.Anomaly == "" {
		c.Detectors.Anomaly = "vigil"
	}
	if c.Detectors.Forecaster == "" {
		c.Detectors.Forecaster = "robust_trend"
	}
	if c.Detectors.AnomalyThreshold == 0 {
		c.Detectors.AnomalyThreshold = 0.9999
	}
	if t := c.Detectors.AnomalyThreshold; t <= 0 || t > 1 {
		errs = append(errs, doc.Errorf("detectors.anomaly_threshold", "anomaly_threshold %v is outside (0, 1]", t))
	}
	if c.Detectors.AnomalyHold == 0 {
		c.Detectors.AnomalyHold = 2 * time.Minute
	}
	if c.Detectors.AnomalyMinGap == 0 {
		c.Detectors.AnomalyMinGap = time.Minute
	}
	if c.Forecasts == nil {
		c.Forecasts = DefaultForecasts()
	}
	for i := range c.Forecasts {
		f := &c.Forecasts[i]
		path := fmt.Sprintf("forecasts[%d]", i)
		sel, err := rules.ParseSelector(f.Series)
		if err != nil {
			errs = append(errs, doc.Errorf(path+".series", "%v", err))
		}
		f.sel = sel
		if f.Horizon == 0 {
			f.Horizon = 2 * time.Hour
		}
		if f.MinConfidence == 0 {
			f.MinConfidence = 0.9
		}
		if f.Interval == 0 {
			f.Interval = time.Minute
		}
		switch {
		case f.Horizon < 0:
			errs = append(errs, doc.Errorf(path+".horizon", "horizon must be positive"))
		case f.Interval < 0:
			errs = append(errs, doc.Errorf(path+".interval", "interval must be positive"))
		case f.MinConfidence < 0 || f.MinConfidence > 1:
			errs = append(errs, doc.Errorf(path+".min_confidence", "min_confidence %v is outside [0, 1]", f.MinConfidence))
		}
	}
	if _, err := c.Detectors.newForecaster(); err != nil {
		errs = append(errs, doc.Errorf("detectors", "%v", err))
	}
	if _, err := detectors.NewDetector(c.Detectors.Anomaly); err != nil {
		errs = append(errs, doc.Errorf("detectors.anomaly", "%v", err))
	}
	if c.Actions.Concurrency == 0 {
		c.Actions.Concurrency = 4
	}
	if c.Actions.Concurrency < 0 {
		errs = append(errs, doc.Errorf("actions.concurrency", "concurrency must be positive"))
	}
	if c.Actions.ApprovalTimeout == 0 {
		c.Actions.ApprovalTimeout = time.Hour
	}
	if c.Actions.MaxOutput == 0 {
		c.Actions.MaxOutput = 64 << 10
	}
	errs = append(errs, c.Actions.Safety.validate(doc)...)
	if c.API.Listen == "" {
		c.API.Listen = "127.0.0.1:9464"
	}
	errs = append(errs, validateServices(doc, c.Services)...)
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// consumerToken makes name usable in a consumer name.
func consumerToken(name string) string {
	b := []byte(name)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}
