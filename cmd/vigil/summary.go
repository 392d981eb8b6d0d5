package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// eventCollector prints events as they arrive and builds the summary.
type eventCollector struct {
	mu     sync.Mutex
	out    io.Writer
	events []*wire.Event
	bad    int
}

func newCollector(out io.Writer) *eventCollector { return &eventCollector{out: out} }

func (c *eventCollector) add(data []byte) {
	ev, err := wire.UnmarshalEvent(data)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.bad++
		return
	}
	c.events = append(c.events, ev)
	if line := formatEvent(ev); line != "" {
		fmt.Fprintln(c.out, line)
	}
}

// formatEvent renders one event for a person reading a terminal.
func formatEvent(e *wire.Event) string {
	ts := e.Time.Local().Format("15:04:05.000")
	series := e.Series
	if e.SeriesTags != "" {
		series += "{" + e.SeriesTags + "}"
	}
	switch e.Kind {
	case wire.KindAnomaly:
		return fmt.Sprintf("%s  ANOMALY   %-12s %s = %.4g (likelihood %.4f, z %.1f)", ts, e.Host, series, e.Value, e.Score, e.Raw)
	case wire.KindForecast:
		switch e.State {
		case "crossed":
			return fmt.Sprintf("%s  REACHED   %-12s %s reached %.4g (level %.4g)", ts, e.Host, series, e.Value, e.Level)
		case "cleared":
			return fmt.Sprintf("%s  FORECAST  %-12s %s no longer predicted to reach %.4g", ts, e.Host, series, e.Level)
		default:
			return fmt.Sprintf("%s  FORECAST  %-12s %s %s: reaches %.4g in %s (at %s, confidence %.2f, now %.4g)",
				ts, e.Host, series, e.State, e.Level, secs(e.ETASeconds), e.PredictedAt.Local().Format("15:04:05"), e.Confidence, e.Value)
		}
	case wire.KindRule:
		return fmt.Sprintf("%s  RULE      %-12s %s/%s -> %s %s", ts, e.Host, e.Group, e.Rule, strings.ToUpper(e.State), valuesText(e.Values))
	case wire.KindAction:
		switch e.State {
		case "started":
			return fmt.Sprintf("%s  ACTION    %-12s %s (%s) started by %s, key %s", ts, e.Host, e.Action, e.ActionKind, e.Rule, e.Key)
		case "finished":
			s := fmt.Sprintf("%s  ACTION    %-12s %s finished: %s in %s", ts, e.Host, e.Action, e.Outcome, secs(e.DurationSeconds))
			if e.LeadSeconds != 0 {
				s += fmt.Sprintf(", %s before the predicted failure", secs(e.LeadSeconds))
			}
			if out := strings.TrimSpace(e.Output); out != "" {
				s += " — " + firstLine(out)
			}
			if e.Error != "" {
				s += " — error: " + e.Error
			}
			return s
		default:
			return fmt.Sprintf("%s  ACTION    %-12s %s not run: %s %s", ts, e.Host, e.Action, e.Outcome, e.Error)
		}
	}
	return ""
}

func secs(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(100 * time.Millisecond).String()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func valuesText(v map[string]float64) string {
	if len(v) == 0 {
		return ""
	}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%.4g", k, v[k])
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// demoSummary is what the demo prints at the end (and as JSON).
type demoSummary struct {
	Started         time.Time          `json:"started"`
	Ended           time.Time          `json:"ended"`
	DurationSeconds float64            `json:"duration_seconds"`
	Hosts           []string           `json:"hosts"`
	Events          map[string]int     `json:"events"`
	Anomalies       int                `json:"anomalies"`
	Predictions     []predictionReport `json:"predictions"`
	Actions         []actionReport     `json:"actions"`
	// DiskFullAt is when the simulated disk's writer found it full.
	DiskFullAt *time.Time `json:"disk_full_at,omitempty"`
	BadEvents  int        `json:"bad_events,omitempty"`
}

type predictionReport struct {
	Host             string    `json:"host"`
	Series           string    `json:"series"`
	Level            float64   `json:"level"`
	PredictedFirstAt time.Time `json:"first_predicted_at"`
	// PredictedCrossing is the crossing time forecast by the first
	// prediction, and by the last one before the crossing.
	PredictedCrossingFirst time.Time  `json:"predicted_crossing_first"`
	PredictedCrossingLast  time.Time  `json:"predicted_crossing_last"`
	ActualCrossing         *time.Time `json:"actual_crossing,omitempty"`
	// LeadSeconds: from the first prediction to the actual crossing.
	LeadSeconds *float64 `json:"lead_seconds,omitempty"`
	// ErrorSeconds: the first prediction's crossing time minus the actual
	// one (positive = the failure came earlier than first predicted).
	ErrorSeconds *float64 `json:"error_seconds,omitempty"`
}

type actionReport struct {
	Host            string    `json:"host"`
	Rule            string    `json:"rule"`
	Action          string    `json:"action"`
	Kind            string    `json:"kind"`
	Key             string    `json:"key"`
	Outcome         string    `json:"outcome"`
	Started         time.Time `json:"started,omitzero"`
	Finished        time.Time `json:"finished,omitzero"`
	DurationSeconds float64   `json:"duration_seconds"`
	Error           string    `json:"error,omitempty"`
	// PredictedFailure is the failure time the rule predicted.
	PredictedFailure time.Time `json:"predicted_failure,omitzero"`
	// LeadSeconds: from the action's end to the actual crossing of the
	// series it protected (positive = done before the failure); absent if
	// the failure did not happen during the run.
	LeadSeconds *float64 `json:"lead_seconds,omitempty"`
	// FinishedBeforeFailure is true when the action ended before the
	// actual crossing.
	FinishedBeforeFailure *bool `json:"finished_before_failure,omitempty"`
}

func (c *eventCollector) summary(start, end time.Time, fullAt time.Time) *demoSummary {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &demoSummary{Started: start, Ended: end, DurationSeconds: end.Sub(start).Seconds(), Events: map[string]int{}, BadEvents: c.bad}
	if !fullAt.IsZero() {
		s.DiskFullAt = &fullAt
	}
	hosts := map[string]bool{}
	preds := map[string]*predictionReport{}
	var order []string
	crossings := map[string]time.Time{} // host -> first crossing
	actions := map[string]*actionReport{}
	var actionOrder []string
	for _, e := range c.events {
		s.Events[e.Kind]++
		hosts[e.Host] = true
		switch e.Kind {
		case wire.KindAnomaly:
			s.Anomalies++
		case wire.KindForecast:
			k := e.Host + " " + e.Series + "{" + e.SeriesTags + "}"
			p := preds[k]
			switch e.State {
			case "predicted", "updated":
				if p == nil || p.ActualCrossing != nil {
					if p == nil {
						order = append(order, k)
					}
					p = &predictionReport{Host: e.Host, Series: e.Series + "{" + e.SeriesTags + "}", Level: e.Level,
						PredictedFirstAt: e.Time, PredictedCrossingFirst: e.PredictedAt}
					preds[k] = p
				}
				p.PredictedCrossingLast = e.PredictedAt
			case "crossed":
				if _, ok := crossings[e.Host]; !ok {
					crossings[e.Host] = e.Time
				}
				if p != nil && p.ActualCrossing == nil {
					t := e.Time
					p.ActualCrossing = &t
					lead := t.Sub(p.PredictedFirstAt).Seconds()
					errS := p.PredictedCrossingFirst.Sub(t).Seconds()
					p.LeadSeconds, p.ErrorSeconds = &lead, &errS
				}
			}
		case wire.KindAction:
			a := actions[e.Key]
			if a == nil {
				a = &actionReport{Host: e.Host, Rule: e.Rule, Action: e.Action, Kind: e.ActionKind, Key: e.Key, PredictedFailure: e.PredictedAt}
				actions[e.Key] = a
				actionOrder = append(actionOrder, e.Key)
			}
			switch e.State {
			case "started":
				a.Started, a.Outcome = e.Time, "running"
			case "finished":
				a.Finished, a.Outcome, a.DurationSeconds, a.Error = e.Time, e.Outcome, e.DurationSeconds, e.Error
			default:
				a.Outcome, a.Error = e.Outcome, e.Error
			}
		}
	}
	for h := range hosts {
		if h != "" {
			s.Hosts = append(s.Hosts, h)
		}
	}
	sort.Strings(s.Hosts)
	for _, k := range order {
		s.Predictions = append(s.Predictions, *preds[k])
	}
	for _, k := range actionOrder {
		a := actions[k]
		if t, ok := crossings[a.Host]; ok && !a.Finished.IsZero() {
			lead := t.Sub(a.Finished).Seconds()
			before := lead > 0
			a.LeadSeconds, a.FinishedBeforeFailure = &lead, &before
		}
		s.Actions = append(s.Actions, *a)
	}
	return s
}

func (s *demoSummary) print(w io.Writer) {
	fmt.Fprintf(w, "\n=== vigil demo summary (%s) ===\n", secs(s.DurationSeconds))
	fmt.Fprintf(w, "hosts: %s\n", strings.Join(s.Hosts, ", "))
	fmt.Fprintf(w, "events: %d anomaly, %d forecast, %d rule, %d action\n", s.Events[wire.KindAnomaly], s.Events[wire.KindForecast], s.Events[wire.KindRule], s.Events[wire.KindAction])
	fmt.Fprintf(w, "predictions: %d\n", len(s.Predictions))
	for _, p := range s.Predictions {
		fmt.Fprintf(w, "  %s %s -> %.4g: first predicted %s for %s", p.Host, p.Series, p.Level,
			p.PredictedFirstAt.Local().Format("15:04:05"), p.PredictedCrossingFirst.Local().Format("15:04:05"))
		if p.ActualCrossing != nil {
			fmt.Fprintf(w, "; reached %s (first forecast off by %s); lead time %s\n", p.ActualCrossing.Local().Format("15:04:05"),
				secs(*p.ErrorSeconds), secs(*p.LeadSeconds))
		} else {
			fmt.Fprintf(w, "; not reached during the run\n")
		}
	}
	fmt.Fprintf(w, "actions: %d\n", len(s.Actions))
	for _, a := range s.Actions {
		fmt.Fprintf(w, "  %s %s by %s: %s in %s", a.Host, a.Action, a.Rule, a.Outcome, secs(a.DurationSeconds))
		if a.LeadSeconds != nil {
			fmt.Fprintf(w, ", finished %s before the disk was full", secs(*a.LeadSeconds))
		}
		fmt.Fprintln(w)
	}
}
