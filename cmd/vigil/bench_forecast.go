package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vigil-sre/vigil/internal/forecastbench"
)

// benchForecasters are compared by `vigil bench forecast` when --forecaster is not given; the
// first is the controller's default.
var benchForecasters = []string{"robust_trend", "saturating_trend", "trend", "holt"}

// cmdBenchForecast runs the seeded failure scenarios through each forecaster and the
// controller's prediction hysteresis, in simulated time, and prints lead times and false alarms.
// It exits 1 when the default forecaster misses the goals.
func cmdBenchForecast(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil bench forecast", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := forecastbench.DefaultConfig()
	asJSON := fs.Bool("json", false, "print the reports as one JSON object")
	seed := fs.Uint64("seed", cfg.Seed, "seed of the first simulated host")
	hosts := fs.Int("hosts", cfg.Hosts, "simulated hosts per scenario")
	dur := fs.Duration("duration", cfg.Duration, "simulated time of a stable host")
	interval := fs.Duration("interval", cfg.Interval, "sampling interval")
	horizon := fs.Duration("horizon", cfg.Watch.Horizon, "forecast watch horizon")
	conf := fs.Float64("min-confidence", cfg.Watch.MinConfidence, "forecast watch min_confidence")
	names := fs.String("forecaster", "", "comma-separated forecasters (default: "+strings.Join(benchForecasters, ",")+")")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vigil bench forecast: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg.Seed, cfg.Hosts, cfg.Duration, cfg.Interval = *seed, *hosts, *dur, *interval
	cfg.Watch = forecastbench.Watch{Horizon: *horizon, MinConfidence: *conf}
	if err := checkBenchConfig(cfg); err != nil {
		fmt.Fprintf(stderr, "vigil bench forecast: %v\n", err)
		return 2
	}
	list := benchForecasters
	if *names != "" {
		list = strings.Split(*names, ",")
	}
	var reports []forecastbench.Report
	for _, name := range list {
		rep, err := forecastbench.RunNamed(cfg, strings.TrimSpace(name))
		if err != nil {
			fmt.Fprintf(stderr, "vigil bench forecast: %v\n", err)
			return 2
		}
		reports = append(reports, rep)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"reports": reports}); err != nil {
			fmt.Fprintf(stderr, "vigil bench forecast: %v\n", err)
			return 1
		}
	} else {
		for i, rep := range reports {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			if err := rep.WriteText(stdout); err != nil {
				fmt.Fprintf(stderr, "vigil bench forecast: %v\n", err)
				return 1
			}
		}
	}
	if !reports[0].Pass {
		return 1
	}
	return 0
}

func checkBenchConfig(c forecastbench.Config) error {
	switch {
	case c.Hosts < 1:
		return fmt.Errorf("--hosts %d: must be at least 1", c.Hosts)
	case c.Interval < time.Second/10:
		return fmt.Errorf("--interval %v: must be at least 100ms", c.Interval)
	case c.Duration < 100*c.Interval || c.Duration > 366*24*time.Hour:
		return fmt.Errorf("--duration %v: must be between 100 intervals and a year", c.Duration)
	case c.Watch.Horizon <= 0:
		return fmt.Errorf("--horizon %v: must be positive", c.Watch.Horizon)
	case !(c.Watch.MinConfidence > 0 && c.Watch.MinConfidence <= 1):
		return fmt.Errorf("--min-confidence %v: must be in (0, 1]", c.Watch.MinConfidence)
	}
	return nil
}
