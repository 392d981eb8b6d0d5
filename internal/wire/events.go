package wire

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Event kinds. Each kind is one InfluxDB measurement, "vigil_<kind>".
const (
	KindAnomaly  = "anomaly"
	KindForecast = "forecast"
	KindRule     = "rule"
	KindAction   = "action"
	// KindLeader: a controller acquired, lost or released the leader lease.
	KindLeader = "leader"
)

// Event is everything the controller records about what it saw, predicted
// and did. Events are JSON on vigil.events.<kind>.<host>, captured by
// EventsStream, and written to InfluxDB from there as line protocol
// (AppendLine). Fields that do not apply to a kind stay zero and are not
// written.
type Event struct {
	// ID is unique per event; it is the JetStream de-duplication id.
	ID   string    `json:"id"`
	Kind string    `json:"kind"`
	Time time.Time `json:"time"`
	Host string    `json:"host,omitempty"`

	// Series is "<measurement>.<field>"; SeriesTags the series' own tags
	// other than host, canonical "k=v,k=v" (sorted by key).
	Series     string `json:"series,omitempty"`
	SeriesTags string `json:"series_tags,omitempty"`

	// Rule and its group, severity; State is the rule state (pending,
	// firing, resolved, inactive, nodata, error), the forecast state
	// (predicted, updated, cleared), the anomaly state (anomalous, normal)
	// or the action phase (awaiting_approval, deferred, started, finished,
	// skipped, abandoned).
	Rule     string `json:"rule,omitempty"`
	Group    string `json:"group,omitempty"`
	Severity string `json:"severity,omitempty"`
	State    string `json:"state,omitempty"`

	// Action fields: name, kind (exec, ...), idempotency key, outcome
	// (success, failure, timeout, dry_run, cooldown, duplicate).
	Action     string `json:"action,omitempty"`
	ActionKind string `json:"action_kind,omitempty"`
	Key        string `json:"key,omitempty"`
	Outcome    string `json:"outcome,omitempty"`
	ExitCode   int    `json:"exit_code,omitempty"`
	Output     string `json:"output,omitempty"`
	Error      string `json:"error,omitempty"`

	// Numbers. Value is the latest sample; Score the anomaly likelihood in
	// [0,1]; Raw the detector's raw statistic (a z-score for EWMA).
	Value      float64 `json:"value,omitempty"`
	Score      float64 `json:"score,omitempty"`
	Raw        float64 `json:"raw,omitempty"`
	Level      float64 `json:"level,omitempty"`
	ETASeconds float64 `json:"eta_seconds,omitempty"`
	// PredictedAt is the predicted crossing time of a forecast.
	PredictedAt time.Time `json:"predicted_at,omitzero"`
	Confidence  float64   `json:"confidence,omitempty"`
	Slope       float64   `json:"slope_per_second,omitempty"`
	// DurationSeconds of an action, or how long a rule was pending.
	DurationSeconds float64 `json:"duration_seconds,omitempty"`
	// LeadSeconds: for an action, the time from its end to the predicted
	// failure it acted on (positive = before the failure).
	LeadSeconds float64 `json:"lead_seconds,omitempty"`

	// Values that made a rule fire (name -> value), and its labels.
	Values map[string]float64 `json:"values,omitempty"`
	Labels map[string]string  `json:"labels,omitempty"`
}

// Subject is the NATS subject the event is published on.
func (e *Event) Subject() string {
	return EventsPrefix + e.Kind + "." + Token(e.Host)
}

// Marshal encodes the event as JSON. NaN and ±Inf numbers, which JSON
// cannot carry, are written as 0 (and skipped by AppendLine).
func (e *Event) Marshal() ([]byte, error) {
	c := *e
	for _, p := range []*float64{&c.Value, &c.Score, &c.Raw, &c.Level, &c.ETASeconds, &c.Confidence, &c.Slope, &c.DurationSeconds, &c.LeadSeconds} {
		if math.IsNaN(*p) || math.IsInf(*p, 0) {
			*p = 0
		}
	}
	if len(c.Values) > 0 {
		vals := make(map[string]float64, len(c.Values))
		for k, v := range c.Values {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				vals[k] = v
			}
		}
		c.Values = vals
	}
	return json.Marshal(&c)
}

// UnmarshalEvent decodes an event and checks its kind.
func UnmarshalEvent(data []byte) (*Event, error) {
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	switch e.Kind {
	case KindAnomaly, KindForecast, KindRule, KindAction, KindLeader:
	default:
		return nil, fmt.Errorf("event: unknown kind %q", e.Kind)
	}
	if e.Time.IsZero() {
		return nil, fmt.Errorf("event %q: missing time", e.ID)
	}
	return &e, nil
}

// Measurement is the InfluxDB measurement of the event: vigil_<kind>.
func (e *Event) Measurement() string { return "vigil_" + e.Kind }

// AppendLine appends the event as one line of InfluxDB line protocol.
//
// Tags (bounded identifiers): host, series, series_tags, rule, group,
// severity, state, action, action_kind, outcome. Fields: every non-zero
// number (value, score, raw, level, eta_seconds, predicted_at as Unix
// seconds, confidence, slope_per_second, duration_seconds, lead_seconds,
// exit_code), the strings id, key, output, error, and one field
// "v_<name>" per triggering value. A rule event always carries the
// integer field "firing" (1 when firing) so every rule point has a field.
func (e *Event) AppendLine(dst []byte) []byte {
	dst = appendName(dst, e.Measurement(), false)
	tags := [...][2]string{
		{"action", e.Action}, {"action_kind", e.ActionKind}, {"group", e.Group},
		{"host", e.Host}, {"outcome", e.Outcome}, {"rule", e.Rule},
		{"series", e.Series}, {"series_tags", e.SeriesTags},
		{"severity", e.Severity}, {"state", e.State},
	}
	for _, t := range tags { // already sorted by key, as InfluxDB prefers
		if t[1] == "" {
			continue
		}
		dst = append(dst, ',')
		dst = appendName(dst, t[0], true)
		dst = append(dst, '=')
		dst = appendName(dst, t[1], true)
	}
	sep := byte(' ')
	field := func(f Field) {
		if f.Kind == FieldFloat && (f.Float == 0 || math.IsNaN(f.Float) || math.IsInf(f.Float, 0)) {
			return
		}
		if f.Kind == FieldString && f.Str == "" {
			return
		}
		if f.Kind == FieldString && strings.ContainsAny(f.Str, "\r\n") {
			// one event, one physical line: easier on every reader
			f.Str = strings.NewReplacer("\r", " ", "\n", " ").Replace(f.Str)
		}
		dst = append(dst, sep)
		sep = ','
		dst = appendName(dst, f.Key, true)
		dst = append(dst, '=')
		dst = appendValue(dst, &f)
	}
	field(S("id", e.ID))
	if e.Kind == KindRule {
		firing := int64(0)
		if e.State == "firing" {
			firing = 1
		}
		field(I("firing", firing))
	}
	field(F("value", e.Value))
	field(F("score", e.Score))
	field(F("raw", e.Raw))
	field(F("level", e.Level))
	field(F("eta_seconds", e.ETASeconds))
	if !e.PredictedAt.IsZero() {
		field(F("predicted_at", float64(e.PredictedAt.UnixNano())/1e9))
	}
	field(F("confidence", e.Confidence))
	field(F("slope_per_second", e.Slope))
	field(F("duration_seconds", e.DurationSeconds))
	field(F("lead_seconds", e.LeadSeconds))
	if e.ExitCode != 0 {
		field(I("exit_code", int64(e.ExitCode)))
	}
	field(S("key", e.Key))
	field(S("output", e.Output))
	field(S("error", e.Error))
	if len(e.Values) > 0 {
		keys := make([]string, 0, len(e.Values))
		for k := range e.Values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			field(F("v_"+k, e.Values[k]))
		}
	}
	if sep == ' ' { // no field at all: InfluxDB needs one
		dst = append(dst, " event=1i"...)
	}
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, e.Time.UnixNano(), 10)
	return dst
}
