package wire

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Batch accumulates the lines of one telemetry message. The zero value is
// ready; Reset keeps the buffer, so a reused Batch does not allocate once it
// has grown to the size of a typical message. Not safe for concurrent use.
type Batch struct {
	buf     []byte
	n       int
	skipped int
	tags    []Tag // sort scratch, reused
}

// Reset empties the batch and the skipped count, keeping the buffer.
func (b *Batch) Reset() {
	b.buf = b.buf[:0]
	b.n = 0
	b.skipped = 0
}

// Bytes returns the encoded lines, each ending in '\n'. The slice is valid
// until the next call that modifies the batch.
func (b *Batch) Bytes() []byte { return b.buf }

// Len returns the number of lines (points) in the batch.
func (b *Batch) Len() int { return b.n }

// Skipped returns the number of NaN or ±Inf float fields skipped since the
// last Reset.
func (b *Batch) Skipped() int { return b.skipped }

// Point appends one line and reports whether it wrote one.
//
// Tags are written sorted by key (byte order), whatever their input order;
// sorting uses a scratch slice kept in the batch, so it does not allocate in
// steady state. Tags with an empty key or value are skipped; of several
// tags with the same key the last one given wins. Fields are written in the
// given order; float fields that are NaN or ±Inf are skipped (line protocol
// cannot carry them) and counted in Skipped; fields with an empty key or an
// unknown kind are skipped silently. A point left with no field writes no
// line. Newlines in measurement, keys and tag values are written as
// (escaped) spaces; string values keep them.
//
// A zero t writes no timestamp (the receiver stamps the point). Point writes
// nothing and returns false when the measurement is empty, starts with '#'
// (which would make a comment) or '\t', or when t is not representable as
// int64 nanoseconds (before 1678 or after 2262).
func (b *Batch) Point(measurement string, tags []Tag, fields []Field, t time.Time) bool {
	if measurement == "" || measurement[0] == '#' || measurement[0] == '\t' {
		return false
	}
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
		if !time.Unix(0, ns).Equal(t) {
			return false
		}
	}
	mark := len(b.buf)
	b.buf = appendName(b.buf, measurement, false)
	b.appendTags(tags)
	sep := byte(' ')
	for i := range fields {
		f := &fields[i]
		if f.Key == "" || f.Kind < FieldFloat || f.Kind > FieldString {
			continue
		}
		if f.Kind == FieldFloat && (math.IsNaN(f.Float) || math.IsInf(f.Float, 0)) {
			b.skipped++
			continue
		}
		b.buf = append(b.buf, sep)
		sep = ','
		b.buf = appendName(b.buf, f.Key, true)
		b.buf = append(b.buf, '=')
		b.buf = appendValue(b.buf, f)
	}
	if sep == ' ' {
		b.buf = b.buf[:mark]
		return false
	}
	if !t.IsZero() {
		b.buf = append(b.buf, ' ')
		b.buf = strconv.AppendInt(b.buf, ns, 10)
	}
	b.buf = append(b.buf, '\n')
	b.n++
	return true
}

// appendTags writes ",k=v" for every tag, sorted by key.
func (b *Batch) appendTags(tags []Tag) {
	sorted := tags
	if !slices.IsSortedFunc(tags, compareTags) {
		b.tags = append(b.tags[:0], tags...)
		slices.SortStableFunc(b.tags, compareTags)
		sorted = b.tags
	}
	for i := range sorted {
		t := &sorted[i]
		if t.Key == "" || t.Value == "" || laterTag(sorted[i+1:], t.Key) {
			continue
		}
		b.buf = append(b.buf, ',')
		b.buf = appendName(b.buf, t.Key, true)
		b.buf = append(b.buf, '=')
		b.buf = appendName(b.buf, t.Value, true)
	}
	clear(b.tags) // do not keep the caller's strings alive
}

func compareTags(a, b Tag) int { return strings.Compare(a.Key, b.Key) }

// laterTag reports whether rest (sorted, following a tag named key) holds
// another writable tag with the same key.
func laterTag(rest []Tag, key string) bool {
	for i := range rest {
		if rest[i].Key != key {
			return false
		}
		if rest[i].Value != "" {
			return true
		}
	}
	return false
}

// nameSpecial marks the bytes appendName must look at.
var nameSpecial = [256]bool{',': true, ' ': true, '=': true, '\\': true, '\n': true}

// appendName appends a measurement (eq false) or a key or tag value (eq
// true), escaped.
func appendName(dst []byte, s string, eq bool) []byte {
	i := 0
	for i < len(s) && !nameSpecial[s[i]] {
		i++
	}
	dst = append(dst, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		switch c {
		case ',', ' ':
			dst = append(dst, '\\')
		case '=':
			if eq {
				dst = append(dst, '\\')
			}
		case '\\':
			if i+1 == len(s) || nameEscapable[s[i+1]] || s[i+1] == '\n' {
				dst = append(dst, '\\')
			}
		case '\n':
			dst = append(dst, '\\')
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}

// appendValue appends the value of a field of a known kind.
func appendValue(dst []byte, f *Field) []byte {
	switch f.Kind {
	case FieldFloat:
		return appendFloat(dst, f.Float)
	case FieldInt:
		return append(strconv.AppendInt(dst, f.Int, 10), 'i')
	case FieldUint:
		return append(strconv.AppendUint(dst, f.Uint, 10), 'u')
	case FieldBool:
		if f.Bool {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	}
	dst = append(dst, '"')
	s := f.Str
	for {
		i := strings.IndexAny(s, `"\`)
		if i < 0 {
			break
		}
		dst = append(dst, s[:i]...)
		dst = append(dst, '\\', s[i])
		s = s[i+1:]
	}
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendFloat writes a finite float in the shortest form that reads back
// exactly: plain decimals for ordinary magnitudes, an exponent otherwise.
func appendFloat(dst []byte, v float64) []byte {
	if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.AppendFloat(dst, v, 'e', -1, 64)
	}
	return strconv.AppendFloat(dst, v, 'f', -1, 64)
}
