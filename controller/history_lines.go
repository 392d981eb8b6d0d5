package controller

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/internal/wire"
)

// historyLines turns one stream message into line protocol for InfluxDB.
type historyLines interface {
	// append appends the message's lines to dst, each ending in '\n'.
	// lines counts the lines appended, malformed those dropped; err means
	// the whole message is unusable and is terminated.
	append(dst []byte, m jetstream.Msg) (out []byte, lines, malformed int, err error)
}

// eventLines converts a JSON wire.Event into its one line.
type eventLines struct{}

func newEventLines() historyLines { return eventLines{} }

func (eventLines) append(dst []byte, m jetstream.Msg) ([]byte, int, int, error) {
	e, err := wire.UnmarshalEvent(m.Data())
	if err != nil {
		return dst, 0, 0, err
	}
	dst = e.AppendLine(dst)
	return append(dst, '\n'), 1, 0, nil
}

// telemetryLines validates a telemetry batch with wire.Decoder. A batch
// whose lines are all valid, all timestamped, free of unsigned fields and
// of '\r' is copied as is; otherwise its valid lines are encoded again,
// canonically, with the message's stored time for lines without one and
// unsigned integers written as integers (InfluxDB 1.8 has no unsigned
// type; above MaxInt64 they become floats). Malformed lines are dropped.
type telemetryLines struct {
	dec      wire.Decoder
	verbatim bool
	stored   int64  // ns; time of lines without a timestamp
	out      []byte // destination while re-encoding
	visitChk func(p *wire.PointView)
	visitEnc func(p *wire.PointView)
}

func newTelemetryLines() historyLines {
	t := &telemetryLines{}
	t.visitChk = t.check
	t.visitEnc = t.encode
	return t
}

func (t *telemetryLines) append(dst []byte, m jetstream.Msg) ([]byte, int, int, error) {
	data := m.Data()
	t.verbatim = bytes.IndexByte(data, '\r') < 0
	ok, bad, _ := t.dec.Decode(data, t.visitChk)
	switch {
	case ok == 0: // nothing to write; acknowledged as is
		return dst, 0, bad, nil
	case bad == 0 && t.verbatim:
		dst = append(dst, data...)
		if data[len(data)-1] != '\n' {
			dst = append(dst, '\n')
		}
		return dst, ok, 0, nil
	}
	t.stored = time.Now().UnixNano()
	if md, err := m.Metadata(); err == nil {
		t.stored = md.Timestamp.UnixNano()
	}
	t.out = dst
	t.dec.Decode(data, t.visitEnc)
	dst, t.out = t.out, nil
	return dst, ok, bad, nil
}

// check clears verbatim when a line needs rewriting.
func (t *telemetryLines) check(p *wire.PointView) {
	if !p.HasTime {
		t.verbatim = false
		return
	}
	for i := range p.Fields {
		if p.Fields[i].Kind == wire.FieldUint {
			t.verbatim = false
			return
		}
	}
}

// encode appends one point, escaped as InfluxDB reads it.
func (t *telemetryLines) encode(p *wire.PointView) {
	b := appendLPName(t.out, p.Measurement, false)
	for _, tag := range p.Tags {
		b = append(b, ',')
		b = appendLPName(b, tag.Key, true)
		b = append(b, '=')
		b = appendLPName(b, tag.Value, true)
	}
	for i := range p.Fields {
		f := &p.Fields[i]
		if i == 0 {
			b = append(b, ' ')
		} else {
			b = append(b, ',')
		}
		b = appendLPName(b, f.Key, true)
		b = append(b, '=')
		b = appendLPValue(b, f)
	}
	ts := t.stored
	if p.HasTime {
		ts = p.Time
	}
	b = append(b, ' ')
	b = strconv.AppendInt(b, ts, 10)
	t.out = append(b, '\n')
}

// appendLPName escapes a measurement (key false: ',' and ' ') or a key or
// tag value (',', ' ' and '='). A newline, which would end the line,
// becomes a space.
func appendLPName(dst, s []byte, key bool) []byte {
	for _, c := range s {
		switch c {
		case ',', ' ':
			dst = append(dst, '\\')
		case '=':
			if key {
				dst = append(dst, '\\')
			}
		case '\n', '\r':
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}

func appendLPValue(dst []byte, f *wire.FieldView) []byte {
	switch f.Kind {
	case wire.FieldFloat:
		return strconv.AppendFloat(dst, f.Float, 'g', -1, 64)
	case wire.FieldInt:
		return append(strconv.AppendInt(dst, f.Int, 10), 'i')
	case wire.FieldUint:
		if f.Uint <= math.MaxInt64 {
			return append(strconv.AppendUint(dst, f.Uint, 10), 'i')
		}
		return strconv.AppendFloat(dst, float64(f.Uint), 'g', -1, 64)
	case wire.FieldBool:
		return strconv.AppendBool(dst, f.Bool)
	}
	dst = append(dst, '"')
	for _, c := range f.Str {
		if c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

// writeRejected reports whether InfluxDB refused a write for its data, so
// that writing it again cannot succeed: 413 (too large), or 400/422 naming
// a parse error, a partial write, a field type conflict or points outside
// the retention policy. Other failures (network, timeouts, 5xx, 429, and
// 401/403/404 which a fixed configuration cures) are retried.
func writeRejected(status int, msg string) bool {
	switch status {
	case 413:
		return true
	case 400, 422:
		msg = strings.ToLower(msg)
		for _, s := range []string{"unable to parse", "partial write", "field type conflict", "beyond retention", "invalid field", "invalid tag"} {
			if strings.Contains(msg, s) {
				return true
			}
		}
	}
	return false
}
