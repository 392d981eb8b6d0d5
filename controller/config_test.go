package controller_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/controller"
)

func setExampleEnv(t *testing.T) {
	t.Setenv("NATS_URL", "nats://nats.example:4222")
	t.Setenv("INFLUX_URL", "http://influx.example:8086")
	t.Setenv("INFLUX_TOKEN", "user:secret")
}

func TestExampleConfigDecodesAndShowsTheDefaults(t *testing.T) {
	setExampleEnv(t)
	ex, err := controller.ParseConfig("example.yaml", controller.ExampleConfig)
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	// The same through a file.
	path := filepath.Join(t.TempDir(), "controller.yaml")
	if err := os.WriteFile(path, controller.ExampleConfig, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := controller.LoadConfig(path); err != nil {
		t.Fatalf("LoadConfig(example): %v", err)
	}

	if ex.NATS.URL.String() != "nats://nats.example:4222" {
		t.Errorf("nats.url = %q: ${NATS_URL} not expanded", ex.NATS.URL)
	}
	if ex.History.URL.String() != "http://influx.example:8086" || ex.History.Token.String() != "user:secret" {
		t.Errorf("history url %q token %q", ex.History.URL, ex.History.Token)
	}
	if !reflect.DeepEqual(ex.Rules, []string{"rules/examples"}) {
		t.Errorf("rules = %q", ex.Rules)
	}

	// The example claims its values are the defaults unless marked
	// "example": compare with an empty config.
	def, err := controller.ParseConfig("empty.yaml", nil)
	if err != nil {
		t.Fatalf("empty config: %v", err)
	}
	if ex.Lease != def.Lease || def.Lease.TTL != 10*time.Second || def.Lease.Renew != def.Lease.TTL/3 || def.Lease.Bucket != "VIGIL_LEASE" {
		t.Errorf("lease: example %+v, defaults %+v", ex.Lease, def.Lease)
	}
	if ex.Streams != (controller.StreamsConfig{}).WithDefaults() {
		t.Errorf("streams %+v, defaults %+v", ex.Streams, controller.StreamsConfig{}.WithDefaults())
	}
	// pass_env: the example spells out the default list (tests extend
	// DefaultPassEnv for their helper program, so compare with the list).
	if want := []string{"PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR"}; !reflect.DeepEqual(ex.Actions.PassEnv, want) || def.Actions.PassEnv != nil {
		t.Errorf("pass_env: example %q, default %q", ex.Actions.PassEnv, def.Actions.PassEnv)
	}
	ex.Actions.PassEnv = nil
	if ex.Consumer != def.Consumer || ex.API != def.API || !reflect.DeepEqual(ex.Actions, def.Actions) || ex.Detectors != def.Detectors {
		t.Errorf("example differs from the defaults:\nexample  %q %+v %+v %+v\ndefaults %q %+v %+v %+v",
			ex.Consumer, ex.API, ex.Actions, ex.Detectors, def.Consumer, def.API, def.Actions, def.Detectors)
	}
	if len(ex.Forecasts) != len(def.Forecasts) {
		t.Fatalf("forecasts: example %d, defaults %d", len(ex.Forecasts), len(def.Forecasts))
	}
	for i := range ex.Forecasts {
		e, d := ex.Forecasts[i], def.Forecasts[i]
		if e.Series != d.Series || e.Level != d.Level || e.Horizon != d.Horizon || e.MinConfidence != d.MinConfidence || e.Interval != d.Interval {
			t.Errorf("forecast %d: example %+v, default %+v", i, e, d)
		}
	}
	exH, defH := ex.History.WithDefaults(), def.History.WithDefaults()
	exH.URL, exH.Token = "", ""
	if !reflect.DeepEqual(exH, defH) {
		t.Errorf("history: example %+v, defaults %+v", exH, defH)
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := controller.ParseConfig("c.yaml", []byte("nats: {url: nats://127.0.0.1:4333}\nforecasts:\n  - {series: mem.used_percent, level: 90}\n"))
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if c.Name != host {
		t.Errorf("name %q, want the host name %q", c.Name, host)
	}
	if c.NATS.URL != "nats://127.0.0.1:4333" || c.Consumer != "vigil-controller-"+strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, host) || c.API.Listen != "127.0.0.1:9464" {
		t.Errorf("nats %q consumer %q api %q", c.NATS.URL, c.Consumer, c.API.Listen)
	}
	d := c.Detectors
	if d.Anomaly != "vigil" || d.Forecaster != "robust_trend" || d.AnomalyThreshold != 0.9999 || d.AnomalyMinGap != time.Minute {
		t.Errorf("detectors %+v", d)
	}
	if a := c.Actions; a.Concurrency != 4 || a.MaxOutput != 64<<10 || a.DryRun {
		t.Errorf("actions %+v", a)
	}
	if len(c.Forecasts) != 1 {
		t.Fatalf("forecasts %+v: a configured list replaces the defaults", c.Forecasts)
	}
	if f := c.Forecasts[0]; f.Horizon != 2*time.Hour || f.MinConfidence != 0.9 || f.Interval != time.Minute || f.Level != 90 {
		t.Errorf("forecast defaults %+v", f)
	}

	empty, err := controller.ParseConfig("empty.yaml", []byte("# nothing\n"))
	if err != nil {
		t.Fatal(err)
	}
	if empty.NATS.URL != "nats://127.0.0.1:4222" {
		t.Errorf("default nats url %q", empty.NATS.URL)
	}
	var series []string
	for _, f := range empty.Forecasts {
		series = append(series, f.Series)
	}
	if strings.Join(series, ",") != "disk.used_percent,disk.inodes_used_percent,mem.used_percent" {
		t.Errorf("default forecasts %q", series)
	}
}

// robust_trend's peak envelope and ramp test can be switched off, and a
// window longer than the envelope's slow baseline (3 h) is accepted (the
// baseline follows it).
func TestConfigTrendOptions(t *testing.T) {
	for _, y := range []string{
		"detectors: {trend: {peaks: false, ramp: false}}\n",
		"detectors: {trend: {peaks: true}}\n",
		"detectors: {trend: {window: 4h}}\n",
	} {
		if _, err := controller.ParseConfig("c.yaml", []byte(y)); err != nil {
			t.Errorf("%q: %v", y, err)
		}
	}
}

func TestConfigErrorsNamePosition(t *testing.T) {
	cases := []struct {
		name, yaml, pos, msg string
	}{
		{"unknown key", "nats:\n  url: nats://x:4222\ndetectors:\n  anomaly: ewma\n  anomaly_treshold: 0.5\n",
			"c.yaml:5:3: ", `unknown key "anomaly_treshold"`},
		{"unknown top-level key", "api: {listen: off}\nhistroy: {}\n", "c.yaml:2:1: ", `unknown key "histroy"`},
		{"bad duration", "detectors:\n  anomaly_min_gap: 5 parsecs\n", "c.yaml:2:20: ", "5 parsecs"},
		{"bad forecast horizon", "forecasts:\n  - series: mem.used_percent\n    level: 95\n    horizon: one day\n",
			"c.yaml:4:14: ", "one day"},
		{"bad selector", "forecasts:\n  - series: disk.used_percent\n    level: 100\n  - series: \"disk{path=/}\"\n    level: 90\n",
			"c.yaml:4:13: ", "bad selector"},
		{"threshold above 1", "detectors:\n  anomaly: ewma\n  anomaly_threshold: 1.5\n", "c.yaml:3:22: ", "outside (0, 1]"},
		{"threshold negative", "detectors: {anomaly_threshold: -0.1}\n", "c.yaml:1:32: ", "outside (0, 1]"},
		{"negative concurrency", "actions:\n  concurrency: -2\n", "c.yaml:2:16: ", "concurrency must be positive"},
		{"unknown detector", "detectors:\n  anomaly: crystal_ball\n", "c.yaml:2:12: ", "crystal_ball"},
		{"unset variable", "nats:\n  url: ${VIGIL_TEST_UNSET_VAR}\n", "c.yaml:2:8: ", "VIGIL_TEST_UNSET_VAR"},
		{"peaks on trend", "detectors:\n  forecaster: trend\n  trend: {peaks: false}\n", "c.yaml:2:3: ", "robust_trend only"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := controller.ParseConfig("c.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			found := false
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.HasPrefix(line, tc.pos) && strings.Contains(line, tc.msg) {
					found = true
				}
			}
			if !found {
				t.Errorf("error %q\nwant a line starting %q containing %q", err, tc.pos, tc.msg)
			}
		})
	}
}
