package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestBenchForecastText(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"bench", "forecast", "--hosts", "1", "--duration", "24h", "--forecaster", "robust_trend,holt"}, &out, &errb)
	if code != 0 && code != 1 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	s := out.String()
	for _, want := range []string{"forecaster robust_trend", "forecaster holt", "disk_fill_linear", "stable_memory_leak", "inode_exhaustion#1", "per host-week"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

func TestBenchForecastJSON(t *testing.T) {
	var out, errb bytes.Buffer
	run([]string{"bench", "forecast", "--json", "--hosts", "1", "--duration", "24h", "--seed", "3", "--forecaster", "trend"}, &out, &errb)
	var v struct {
		Reports []struct {
			Forecaster string `json:"forecaster"`
			Seed       uint64 `json:"seed"`
			Scenarios  []struct {
				Scenario string `json:"scenario"`
				Failure  bool   `json:"failure"`
			} `json:"scenarios"`
		} `json:"reports"`
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("%v: %s %s", err, out.String(), errb.String())
	}
	if len(v.Reports) != 1 || v.Reports[0].Forecaster != "trend" || v.Reports[0].Seed != 3 || len(v.Reports[0].Scenarios) != 14 {
		t.Errorf("report %+v", v)
	}
}

func TestBenchForecastBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--hosts", "0"}, {"--forecaster", "nope"}, {"--min-confidence", "2"}, {"extra"}} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"bench", "forecast"}, args...), &out, &errb); code != 2 || errb.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
}
