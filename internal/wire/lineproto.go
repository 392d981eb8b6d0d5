package wire

import (
	"fmt"
	"math"
	"strconv"
	"unsafe"
)

// InfluxDB line protocol, the telemetry encoding of the wire contract.
//
// One telemetry message carries a batch of lines separated by '\n'
// ("\r\n" is accepted), each
//
//	measurement[,tag_key=tag_value...] field_key=field_value[,...] [timestamp]
//
// with the timestamp in nanoseconds since the Unix epoch. The agent writes
// batches with Batch; the controller reads them with Decoder, which also
// reads what a stock Telegraf (data_format = "influx") writes.
//
// Escaping, shared by encoder and decoder:
//
//   - Measurement, tag keys, tag values and field keys: a backslash before
//     ',', ' ', '=' or '\' stands for that byte; a backslash before any
//     other byte is a literal backslash (so Windows paths need no escaping).
//     The encoder escapes ',' and ' ' everywhere, '=' in keys and tag values,
//     and doubles a backslash only where it would otherwise be read as an
//     escape (before one of those bytes, or at the end of the token).
//   - String field values are double-quoted; inside, \" is a quote and \\ a
//     backslash; a backslash before any other byte is literal. A string may
//     contain raw newlines (as in InfluxDB); such a point spans several
//     physical lines.
//   - Lines whose first non-blank byte is '#' are comments; blank lines are
//     skipped; leading blanks and trailing blanks or '\r' are ignored.
//
// Field values: floats (1.5, -2, 1e3, .5), integers (12i), unsigned
// integers (12u), booleans (t, T, true, True, TRUE, f, F, false, False,
// FALSE) and strings ("..."). Floats must be finite: NaN and ±Inf cannot be
// written and are rejected when read.

// FieldKind is the type of a field value.
type FieldKind uint8

// Field kinds.
const (
	FieldFloat FieldKind = iota + 1
	FieldInt
	FieldUint
	FieldBool
	FieldString
)

// String names the kind as line protocol documentation does.
func (k FieldKind) String() string {
	switch k {
	case FieldFloat:
		return "float"
	case FieldInt:
		return "integer"
	case FieldUint:
		return "unsigned"
	case FieldBool:
		return "boolean"
	case FieldString:
		return "string"
	}
	return fmt.Sprintf("FieldKind(%d)", uint8(k))
}

// Tag is one tag of a point to encode.
type Tag struct{ Key, Value string }

// Field is one field of a point to encode; Kind selects the value used.
type Field struct {
	Key   string
	Kind  FieldKind
	Float float64
	Int   int64
	Uint  uint64
	Bool  bool
	Str   string
}

// F is a float field.
func F(key string, v float64) Field { return Field{Key: key, Kind: FieldFloat, Float: v} }

// I is an integer field.
func I(key string, v int64) Field { return Field{Key: key, Kind: FieldInt, Int: v} }

// U is an unsigned integer field.
func U(key string, v uint64) Field { return Field{Key: key, Kind: FieldUint, Uint: v} }

// B is a boolean field.
func B(key string, v bool) Field { return Field{Key: key, Kind: FieldBool, Bool: v} }

// S is a string field.
func S(key, v string) Field { return Field{Key: key, Kind: FieldString, Str: v} }

// TagView is one decoded tag; both slices are unescaped.
type TagView struct{ Key, Value []byte }

// FieldView is one decoded field; Kind selects the value set. Key and Str
// are unescaped.
type FieldView struct {
	Key   []byte
	Kind  FieldKind
	Float float64
	Int   int64
	Uint  uint64
	Bool  bool
	Str   []byte
}

// Number returns float, integer, unsigned and boolean (0 or 1) values as
// float64; ok is false for strings.
func (f *FieldView) Number() (float64, bool) {
	switch f.Kind {
	case FieldFloat:
		return f.Float, true
	case FieldInt:
		return float64(f.Int), true
	case FieldUint:
		return float64(f.Uint), true
	case FieldBool:
		if f.Bool {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// PointView is one decoded line. It and every slice in it are valid only
// during the visit call that received it.
type PointView struct {
	Measurement []byte
	Tags        []TagView   // in line order
	Fields      []FieldView // in line order
	Time        int64       // ns since the Unix epoch; 0 when !HasTime
	HasTime     bool
}

// Tag returns the value of the first tag named key.
func (p *PointView) Tag(key string) ([]byte, bool) {
	for i := range p.Tags {
		if string(p.Tags[i].Key) == key {
			return p.Tags[i].Value, true
		}
	}
	return nil, false
}

// LineError names a malformed line: 1-based line number and byte column
// within that line, what is wrong, and an excerpt of the line around the
// column (at most 64 bytes).
type LineError struct {
	Line, Col int
	Msg       string
	Excerpt   string
}

// Error formats the error as
// `line 3, column 17: invalid float value "1.2.3" for field "used" (near "cpu,host=a used=1.2.3")`.
func (e *LineError) Error() string {
	if e.Excerpt == "" {
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Col, e.Msg)
	}
	return fmt.Sprintf("line %d, column %d: %s (near %q)", e.Line, e.Col, e.Msg, e.Excerpt)
}

// nameEscapable holds the bytes a backslash escapes in measurements, tag
// keys, tag values and field keys.
var nameEscapable = [256]bool{',': true, ' ': true, '=': true, '\\': true}

// ---- field values (decoder side) ----

type numErr uint8

const (
	numOK numErr = iota
	numSyntax
	numRange
)

// parseValue parses a field value other than a string into f. It returns
// "" or a format for the value and the key.
func parseValue(tok []byte, f *FieldView) string {
	switch tok[0] {
	case 't', 'T', 'f', 'F':
		f.Kind = FieldBool
		switch string(tok) {
		case "t", "T", "true", "True", "TRUE":
			f.Bool = true
		case "f", "F", "false", "False", "FALSE":
		default:
			return "invalid boolean value %q for field %q"
		}
		return ""
	}
	var e numErr
	switch tok[len(tok)-1] {
	case 'i':
		f.Kind = FieldInt
		if f.Int, e = parseInt(tok[:len(tok)-1]); e != numOK {
			return numMsg(e, "integer")
		}
	case 'u':
		f.Kind = FieldUint
		if f.Uint, e = parseUint(tok[:len(tok)-1]); e != numOK {
			return numMsg(e, "unsigned")
		}
	default:
		f.Kind = FieldFloat
		v, ok := parseFloat(tok)
		if !ok {
			return "invalid float value %q for field %q"
		}
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return "float value %q for field %q is not finite"
		}
		f.Float = v
	}
	return ""
}

func numMsg(e numErr, kind string) string {
	if e == numRange {
		return kind + " value %q out of range for field %q"
	}
	return "invalid " + kind + " value %q for field %q"
}

// pow10 holds the powers of ten float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseFloat parses -?(digits[.digits]|.digits)([eE][+-]?digits)? and
// reports false on any other syntax. Short mantissas with small exponents
// (most metric values) are converted exactly here, as m·10^e with both
// factors exact and one rounding; the rest goes to strconv. An overflow
// gives ±Inf, an underflow 0.
func parseFloat(s []byte) (float64, bool) {
	i, neg := 0, len(s) > 0 && s[0] == '-'
	if neg {
		i++
	}
	var mant uint64 // the first 18 or 19 digits: enough to tell exact cases
	digits, exp := 0, 0
	for dot := false; i < len(s); i++ {
		c := s[i]
		if c == '.' && !dot {
			dot = true
			continue
		}
		if !isDigit(c) {
			break
		}
		digits++
		if mant < 1e18 {
			mant = mant*10 + uint64(c-'0')
			if dot {
				exp--
			}
		}
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := i < len(s) && s[i] == '-'
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j, e := i, 0
		for ; i < len(s) && isDigit(s[i]); i++ {
			if e < 100000 {
				e = e*10 + int(s[i]-'0')
			}
		}
		if i == j {
			return 0, false
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	if i != len(s) {
		return 0, false
	}
	if mant < 1<<53 && exp >= -22 && exp <= 22 { // nothing dropped from mant
		v := float64(mant)
		if exp < 0 {
			v /= pow10[-exp]
		} else {
			v *= pow10[exp]
		}
		if neg {
			v = -v
		}
		return v, true
	}
	// The syntax is checked, so an error is a range error: ±Inf or 0 as
	// wanted. The string view does not outlive the call (strconv copies
	// it into its errors).
	v, _ := strconv.ParseFloat(unsafe.String(unsafe.SliceData(s), len(s)), 64)
	return v, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parseUint parses decimal digits.
func parseUint(s []byte) (uint64, numErr) {
	if len(s) == 0 {
		return 0, numSyntax
	}
	var n uint64
	e := numOK
	for _, c := range s {
		if !isDigit(c) {
			return 0, numSyntax
		}
		if n > math.MaxUint64/10 || n*10 > math.MaxUint64-uint64(c-'0') {
			e = numRange
		}
		n = n*10 + uint64(c-'0')
	}
	if e != numOK {
		return 0, e
	}
	return n, numOK
}

// parseInt parses -?digits into an int64.
func parseInt(s []byte) (int64, numErr) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	u, e := parseUint(s)
	switch {
	case e != numOK:
		return 0, e
	case neg && u > 1<<63:
		return 0, numRange
	case neg:
		return -int64(u), numOK
	case u > math.MaxInt64:
		return 0, numRange
	}
	return int64(u), numOK
}
