package forecastbench

import (
	"fmt"
	"slices"
	"time"

	"github.com/vigil-sre/vigil/detectors"
)

// Goals of the benchmark (DESIGN.md budgets).
const (
	GoalLead          = 10 * time.Minute // every failure predicted at least this far ahead
	GoalFalseAlarmsHW = 1.0              // at most this many false alarms per host-week
)

// Config is one benchmark run.
type Config struct {
	Seed     uint64        // hosts use seeds Seed, Seed+1, …
	Hosts    int           // simulated hosts per scenario
	Duration time.Duration // simulated time of a stable host (a week)
	Interval time.Duration // sampling interval
	Watch    Watch
	// Scenarios to run; nil: all of Scenarios().
	Scenarios []Scenario
}

// DefaultConfig is the full suite: 4 hosts per scenario, a week each at 10 s, replayed with
// the controller's default forecast watch parameters chosen from this benchmark.
func DefaultConfig() Config {
	return Config{
		Seed: 1, Hosts: 4, Duration: 7 * 24 * time.Hour, Interval: 10 * time.Second,
		Watch: Watch{Horizon: DefaultHorizon, MinConfidence: DefaultMinConfidence},
	}
}

// The forecast watch parameters the benchmark recommends for the controller's defaults.
const (
	DefaultHorizon       = 2 * time.Hour
	DefaultMinConfidence = 0.9
)

// Row summarises one scenario.
type Row struct {
	Scenario  string  `json:"scenario"`
	Series    string  `json:"series"`
	Level     float64 `json:"level"`
	Failure   bool    `json:"failure"`
	Hosts     int     `json:"hosts"`
	Predicted int     `json:"predicted"` // failing hosts whose crossing was predicted
	// Lead times over the failing hosts (0 for a missed one), and the median of predicted −
	// actual crossing time at the moment the prediction first held steadily.
	MinLead     time.Duration `json:"min_lead_ns"`
	MedianLead  time.Duration `json:"median_lead_ns"`
	MedianError time.Duration `json:"median_error_ns"`
	Flaps       int           `json:"flaps"`
	FalseAlarms int           `json:"false_alarms"`
	HostWeeks   float64       `json:"host_weeks"` // time in which a false alarm could happen
	Results     []HostResult  `json:"results"`
}

// FalseAlarmRate is false alarms per host-week.
func (r Row) FalseAlarmRate() float64 {
	if r.HostWeeks == 0 {
		return 0
	}
	return float64(r.FalseAlarms) / r.HostWeeks
}

// Pass reports whether the row meets the goals.
func (r Row) Pass() bool {
	if r.Failure && (r.Predicted < r.Hosts || r.MinLead < GoalLead) {
		return false
	}
	return r.FalseAlarmRate() <= GoalFalseAlarmsHW
}

// Report is the result of one forecaster on the suite.
type Report struct {
	Forecaster string   `json:"forecaster"`
	Seed       uint64   `json:"seed"`
	Hosts      int      `json:"hosts_per_scenario"`
	Duration   Duration `json:"duration"`
	Interval   Duration `json:"interval"`
	Horizon    Duration `json:"horizon"`
	MinConf    float64  `json:"min_confidence"`
	Rows       []Row    `json:"scenarios"`
	// Totals over the suite.
	MinLead       Duration `json:"min_lead"`
	FalseAlarms   int      `json:"false_alarms"`
	FalseAlarmsHW float64  `json:"false_alarms_per_host_week"`
	Pass          bool     `json:"pass"`
}

// Duration marshals as a Go duration string.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Run replays every scenario of cfg through a new forecaster made by newFc for each host.
func Run(cfg Config, name string, newFc func() detectors.Forecaster) Report {
	scen := cfg.Scenarios
	if scen == nil {
		scen = Scenarios()
	}
	rep := Report{Forecaster: name, Seed: cfg.Seed, Hosts: cfg.Hosts, Duration: Duration(cfg.Duration),
		Interval: Duration(cfg.Interval), Horizon: Duration(cfg.Watch.Horizon), MinConf: cfg.Watch.MinConfidence,
		Pass: true}
	var weeks float64
	minLead := time.Duration(-1)
	for _, s := range scen {
		row := runScenario(cfg, s, newFc)
		rep.Rows = append(rep.Rows, row)
		rep.FalseAlarms += row.FalseAlarms
		weeks += row.HostWeeks
		rep.Pass = rep.Pass && row.Pass()
		if row.Failure && (minLead < 0 || row.MinLead < minLead) {
			minLead = row.MinLead
		}
	}
	rep.MinLead = Duration(max(minLead, 0))
	if weeks > 0 {
		rep.FalseAlarmsHW = float64(rep.FalseAlarms) / weeks
	}
	return rep
}

// RunNamed is Run with a registered forecaster's default configuration.
func RunNamed(cfg Config, name string) (Report, error) {
	if _, err := detectors.NewForecaster(name); err != nil {
		return Report{}, err
	}
	return Run(cfg, name, func() detectors.Forecaster { f, _ := detectors.NewForecaster(name); return f }), nil
}

func runScenario(cfg Config, s Scenario, newFc func() detectors.Forecaster) Row {
	row := Row{Scenario: s.Name, Series: s.Series, Level: s.Level, Failure: s.Failure, Hosts: cfg.Hosts}
	var leads, errs []time.Duration
	for h := 0; h < cfg.Hosts; h++ {
		seed := cfg.Seed + uint64(h)
		tr := s.Generate(seed, cfg.Duration, cfg.Interval)
		res := Replay(tr, newFc(), s.Level, cfg.Watch)
		res.Seed = seed
		row.Results = append(row.Results, res)
		row.FalseAlarms += res.FalseAlarms
		row.Flaps += res.Flaps
		row.HostWeeks += res.AlarmTime.Hours() / (7 * 24)
		if s.Failure {
			leads = append(leads, res.Lead())
			if res.Predicted {
				row.Predicted++
				errs = append(errs, time.Duration(res.PredictedAt-res.Crossing))
			}
		}
	}
	if len(leads) > 0 {
		slices.Sort(leads)
		row.MinLead, row.MedianLead = leads[0], median(leads)
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		row.MedianError = median(errs)
	}
	return row
}

func median(sorted []time.Duration) time.Duration {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// String names the run's parameters.
func (r Report) String() string {
	return fmt.Sprintf("forecaster %s — horizon %v, min confidence %.2f; %d hosts per scenario, %v each at %v, seed %d",
		r.Forecaster, time.Duration(r.Horizon), r.MinConf, r.Hosts, time.Duration(r.Duration), time.Duration(r.Interval), r.Seed)
}
