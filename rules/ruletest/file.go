// Package ruletest runs rule unit tests: YAML files that feed input series
// to the real rule engine and check the alerts and actions it produces.
//
//	rule_files: [disk.yaml]          # relative to this file
//	evaluation_interval: 10s         # how often the engine is called; default 10s
//	tests:
//	  - name: data disk fills up
//	    interval: 30s                # between two input samples; default evaluation_interval
//	    input_series:
//	      - series: 'disk.used_percent{host=h1,path=/data}'
//	        values: '50+0.5x60'      # 50, 50.5, ..., 80: 61 samples, one per interval
//	      - series: 'procstat.restarts{host=h1,process=api}'
//	        values: '0 0 1 _ 3x5'    # _ is a missing sample
//	    sequence_gaps:               # telemetry batches lost (for gaps() and complete())
//	      - {host: h1, at: 2m, missing: 3}
//	    alerts:                      # the rule's alerts right after the evaluation at `at`
//	      - at: 20m
//	        rule: data_disk_full_predicted     # or group/rule
//	        alerts:                            # every subject in pending, firing, nodata or error
//	          - subject: h1
//	            state: firing
//	            labels: {severity: critical}   # these labels must be there (others may be too)
//	            annotations: {summary: 'h1: /data full in 1h'}   # these must be equal
//	    actions:                     # optional; if present, exactly the intents of the whole test
//	      - {at: 20m, rule: data_disk_full_predicted, subject: h1, action: backup_data, mode: auto}
//
// Values: space-separated tokens, each one sample per interval from time
// zero: a number; `_` (no sample); `a+bxN` or `a-bxN` (N+1 samples a, a±b,
// …, a±N·b); `axN` (a, N+1 times); `_xN` (N missing samples). The series
// is a selector with a host tag; service=, model= and role= tags make the
// service, model and fleet subjects, as with real telemetry.
//
// The Source is a real one over those samples: the latest sample, the
// anomaly detector and the forecaster of the detectors package (the
// controller's defaults, vigil and robust_trend, unless the file's
// `detector:` / `forecaster:` say otherwise) fed with every sample up to
// the evaluation time, every sample kept for
// the window functions. The engine is evaluated at 0, interval, 2·interval
// … up to the last `at`; the clock starts at 2025-01-01T00:00:00Z.
package ruletest

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-sre/vigil/internal/config"
)

type fileSpec struct {
	RuleFiles          []string `yaml:"rule_files"`
	EvaluationInterval string   `yaml:"evaluation_interval"`
	// Forecaster and Detector name the detectors package's forecaster
	// and anomaly detector fed with the samples; defaults are the
	// controller's: robust_trend and vigil.
	Forecaster string `yaml:"forecaster"`
	Detector   string `yaml:"detector"`
	// AnomalyHold is the controller's detectors.anomaly_hold: anomaly()
	// is a series' highest likelihood over this much of its recent
	// samples. Default 2m, as in the controller; 0s reads the latest.
	AnomalyHold string     `yaml:"anomaly_hold"`
	Tests       []testSpec `yaml:"tests"`
}

type testSpec struct {
	Name         string         `yaml:"name"`
	Interval     string         `yaml:"interval"`
	InputSeries  []seriesSpec   `yaml:"input_series"`
	SequenceGaps []gapSpec      `yaml:"sequence_gaps"`
	Alerts       []alertCheck   `yaml:"alerts"`
	Actions      *[]actionCheck `yaml:"actions"`
}

type seriesSpec struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

type gapSpec struct {
	Host    string `yaml:"host"`
	At      string `yaml:"at"`
	Missing int    `yaml:"missing"`
}

type alertCheck struct {
	At     string     `yaml:"at"`
	Rule   string     `yaml:"rule"`
	Alerts []expAlert `yaml:"alerts"`
}

type expAlert struct {
	Subject     string            `yaml:"subject"`
	State       string            `yaml:"state"`
	Flapping    bool              `yaml:"flapping"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type actionCheck struct {
	At        string `yaml:"at"`
	Rule      string `yaml:"rule"`
	Subject   string `yaml:"subject"`
	Action    string `yaml:"action"`
	Mode      string `yaml:"mode"`
	GroupSize int    `yaml:"group_size"`
}

// duration parses a duration at path of doc, collecting the problem.
func duration(doc *config.Doc, errs *config.Errors, path, s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		*errs = append(*errs, doc.Errorf(path, "invalid duration %q (want e.g. 30s, 5m, 1h)", s))
		return def
	}
	return d
}

const num = `[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?`

var (
	expandRe = regexp.MustCompile(`^(` + num + `)(?:([-+])(` + num + `))?x(\d+)$`)
	blankRe  = regexp.MustCompile(`^_x(\d+)$`)
)

// maxSamples bounds what one series may expand to.
const maxSamples = 1_000_000

// parseValues expands the compact notation; NaN marks a missing sample.
func parseValues(s string) ([]float64, error) {
	var out []float64
	for _, tok := range strings.Fields(s) {
		switch m, b := expandRe.FindStringSubmatch(tok), blankRe.FindStringSubmatch(tok); {
		case tok == "_":
			out = append(out, math.NaN())
		case b != nil:
			n, err := strconv.Atoi(b[1])
			if err != nil || len(out)+n > maxSamples {
				return nil, fmt.Errorf("%q: too many samples", tok)
			}
			for range n {
				out = append(out, math.NaN())
			}
		case m != nil:
			a, _ := strconv.ParseFloat(m[1], 64)
			step := 0.0
			if m[2] != "" {
				step, _ = strconv.ParseFloat(m[3], 64)
				if m[2] == "-" {
					step = -step
				}
			}
			n, err := strconv.Atoi(m[4])
			if err != nil || len(out)+n+1 > maxSamples {
				return nil, fmt.Errorf("%q: too many samples", tok)
			}
			for i := 0; i <= n; i++ {
				out = append(out, a+float64(i)*step)
			}
		default:
			v, err := strconv.ParseFloat(tok, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("%q is not a number, _, a+bxN, a-bxN, axN or _xN", tok)
			}
			out = append(out, v)
		}
	}
	return out, nil
}
