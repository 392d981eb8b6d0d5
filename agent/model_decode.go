package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Observation lines (NDJSON, one JSON object per line), accepted by the HTTP endpoint and read
// from prediction logs:
//
//	{"model":"fraud","version":"v3","id":"r-17","features":{"amount":12.5,"country":"FR"},
//	 "prediction":"approve","confidence":0.93,"latency_ms":12.1,"ts":"2025-01-02T15:04:05Z"}
//	{"model":"fraud","id":"r-17","label":"approve"}
//
// model is required. An observation has features and/or a prediction; feature values and the
// prediction are numbers (numeric) or strings/booleans (categorical), null is a missing value.
// confidence is a number in [0,1], latency_ms a number ≥ 0, ts an RFC 3339 string or Unix
// seconds, id a string or an integer. A label line has model, id and label and nothing
// else but version; an observation may carry its own label too. Unknown keys are errors.
// ts is validated but windows and label ages use the arrival time at the agent, so a log read
// from its start does not stretch a window into the past.
const (
	maxNameBytes  = 128 // model, version, feature names
	maxIDBytes    = 256
	predictionKey = "__prediction__" // feature name of the prediction's distribution
)

// valueKind is the type of a feature value, prediction or label.
type valueKind uint8

const (
	kindMissing valueKind = iota // null
	kindNumber
	kindString // strings and booleans ("true", "false")
)

// value is one feature value, prediction or label.
type value struct {
	kind valueKind
	num  float64
	str  string
}

func (v value) equal(o value, tol float64) bool {
	switch {
	case v.kind == kindNumber && o.kind == kindNumber:
		return math.Abs(v.num-o.num) <= tol
	case v.kind == kindString && o.kind == kindString:
		return v.str == o.str
	}
	return false
}

type namedValue struct {
	name string
	value
}

// observation is one decoded line.
type observation struct {
	model, version, id string
	isLabel            bool // a label line: only model, version, id and label
	features           []namedValue
	pred               value
	hasPred            bool
	conf, latency      float64 // NaN when absent
	ts                 time.Time
	label              value
	hasLabel           bool
}

// obsError is a problem with one field of a line.
type obsError struct {
	field, msg string
}

func (e *obsError) Error() string {
	if e.field == "" {
		return e.msg
	}
	return fmt.Sprintf("field %q: %s", e.field, e.msg)
}

func fieldErr(field, format string, args ...any) error {
	return &obsError{field: field, msg: fmt.Sprintf(format, args...)}
}

var obsKeys = []string{"model", "version", "id", "features", "prediction", "confidence", "latency_ms", "ts", "label"}

// decodeObservation decodes one NDJSON line. Errors name the field.
func decodeObservation(line []byte) (observation, error) {
	o := observation{conf: math.NaN(), latency: math.NaN()}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return o, &obsError{msg: "not a JSON object: " + strings.TrimPrefix(err.Error(), "json: ")}
	}
	if raw == nil {
		return o, &obsError{msg: "not a JSON object: null"}
	}
	for k := range raw {
		if !contains(obsKeys, k) {
			return o, fieldErr(k, "unknown key (known: %s)", strings.Join(obsKeys, ", "))
		}
	}
	var err error
	if o.model, err = nameField(raw, "model", true); err != nil {
		return o, err
	}
	if o.version, err = nameField(raw, "version", false); err != nil {
		return o, err
	}
	if o.id, err = idField(raw["id"]); err != nil {
		return o, err
	}
	if r, ok := raw["label"]; ok {
		if o.label, err = decodeValue("label", r); err != nil {
			return o, err
		}
		o.hasLabel = o.label.kind != kindMissing
	}
	_, hasF := raw["features"]
	_, hasP := raw["prediction"]
	if !hasF && !hasP {
		return o, decodeLabelLine(&o, raw)
	}
	if err := decodeBody(&o, raw); err != nil {
		return o, err
	}
	return o, nil
}

// decodeLabelLine checks a line without features or prediction: a label by id.
func decodeLabelLine(o *observation, raw map[string]json.RawMessage) error {
	if !o.hasLabel {
		return fieldErr("features", "missing: an observation needs features or a prediction, a label line needs id and label")
	}
	if o.id == "" {
		return fieldErr("id", "missing: a label line needs the id of its observation")
	}
	for _, k := range []string{"confidence", "latency_ms", "ts"} {
		if _, ok := raw[k]; ok {
			return fieldErr(k, "not allowed in a label line (one without features or prediction)")
		}
	}
	o.isLabel = true
	return nil
}

func decodeBody(o *observation, raw map[string]json.RawMessage) error {
	var err error
	if r, ok := raw["prediction"]; ok {
		if o.pred, err = decodeValue("prediction", r); err != nil {
			return err
		}
		o.hasPred = o.pred.kind != kindMissing
	}
	if r, ok := raw["features"]; ok && !isNull(r) {
		var fs map[string]json.RawMessage
		if json.Unmarshal(r, &fs) != nil {
			return fieldErr("features", "want an object of name: number|string|boolean|null")
		}
		o.features = make([]namedValue, 0, len(fs))
		for name, fr := range fs {
			if err := checkName("features."+name, name); err != nil {
				return err
			}
			if name == predictionKey {
				return fieldErr("features."+name, "reserved for the prediction")
			}
			v, err := decodeValue("features."+name, fr)
			if err != nil {
				return err
			}
			o.features = append(o.features, namedValue{name: name, value: v})
		}
		// By name, so that which features a full model drops does not depend on map order.
		slices.SortFunc(o.features, func(a, b namedValue) int { return strings.Compare(a.name, b.name) })
	}
	if o.conf, err = numberField(raw, "confidence", 0, 1); err != nil {
		return err
	}
	if o.latency, err = numberField(raw, "latency_ms", 0, math.MaxFloat64); err != nil {
		return err
	}
	if r, ok := raw["ts"]; ok && !isNull(r) {
		if o.ts, err = decodeTS(r); err != nil {
			return err
		}
	}
	return nil
}

func isNull(r json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(r), []byte("null")) }

func checkName(field, s string) error {
	switch {
	case s == "":
		return fieldErr(field, "must not be empty")
	case len(s) > maxNameBytes:
		return fieldErr(field, "longer than %d bytes", maxNameBytes)
	case !utf8.ValidString(s):
		return fieldErr(field, "not valid UTF-8")
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fieldErr(field, "contains a control character")
	}
	return nil
}

func nameField(raw map[string]json.RawMessage, key string, required bool) (string, error) {
	r, ok := raw[key]
	if !ok || isNull(r) {
		if required {
			return "", fieldErr(key, "missing")
		}
		return "", nil
	}
	var s string
	if json.Unmarshal(r, &s) != nil {
		return "", fieldErr(key, "want a string, got %s", clip(r))
	}
	return s, checkName(key, s)
}

func idField(r json.RawMessage) (string, error) {
	if r == nil || isNull(r) {
		return "", nil
	}
	var s string
	if json.Unmarshal(r, &s) != nil {
		t := string(bytes.TrimSpace(r))
		if _, err := strconv.ParseInt(t, 10, 64); err != nil {
			return "", fieldErr("id", "want a string or an integer, got %s", clip(r))
		}
		s = t
	}
	if s == "" || len(s) > maxIDBytes {
		return "", fieldErr("id", "want 1 to %d bytes", maxIDBytes)
	}
	return s, nil
}

// decodeValue decodes a number, string, boolean or null.
func decodeValue(field string, r json.RawMessage) (value, error) {
	t := bytes.TrimSpace(r)
	if len(t) == 0 {
		return value{}, fieldErr(field, "empty")
	}
	switch c := t[0]; {
	case c == 'n' && string(t) == "null":
		return value{}, nil
	case c == 't' || c == 'f':
		return value{kind: kindString, str: string(t)}, nil
	case c == '"':
		var s string
		if json.Unmarshal(t, &s) != nil {
			return value{}, fieldErr(field, "bad string %s", clip(t))
		}
		if len(s) > maxNameBytes {
			return value{}, fieldErr(field, "category longer than %d bytes", maxNameBytes)
		}
		return value{kind: kindString, str: s}, nil
	case c == '-' || c >= '0' && c <= '9':
		x, err := strconv.ParseFloat(string(t), 64)
		if err != nil || math.IsInf(x, 0) {
			return value{}, fieldErr(field, "number %s out of range", clip(t))
		}
		return value{kind: kindNumber, num: x}, nil
	}
	return value{}, fieldErr(field, "want a number, string, boolean or null, got %s", clip(t))
}

func numberField(raw map[string]json.RawMessage, key string, lo, hi float64) (float64, error) {
	r, ok := raw[key]
	if !ok || isNull(r) {
		return math.NaN(), nil
	}
	v, err := decodeValue(key, r)
	if err != nil {
		return math.NaN(), err
	}
	if v.kind != kindNumber || !(v.num >= lo && v.num <= hi) {
		if hi == math.MaxFloat64 {
			return math.NaN(), fieldErr(key, "want a number ≥ %g, got %s", lo, clip(r))
		}
		return math.NaN(), fieldErr(key, "want a number in [%g, %g], got %s", lo, hi, clip(r))
	}
	return v.num, nil
}

func decodeTS(r json.RawMessage) (time.Time, error) {
	var s string
	if json.Unmarshal(r, &s) == nil {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fieldErr("ts", "want RFC 3339 time or Unix seconds, got %s", clip(r))
		}
		return t, nil
	}
	v, err := decodeValue("ts", r)
	if err != nil || v.kind != kindNumber || v.num < 0 || v.num > 1e11 {
		return time.Time{}, fieldErr("ts", "want RFC 3339 time or Unix seconds, got %s", clip(r))
	}
	sec, frac := math.Modf(v.num)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// clip quotes at most 40 bytes of a raw value for an error message.
func clip(r []byte) string {
	r = bytes.TrimSpace(r)
	if len(r) > 40 {
		return strconv.Quote(string(r[:40])) + "…"
	}
	return strconv.Quote(string(r))
}
