package wire

import (
	"bytes"
	"fmt"
)

const (
	defaultMaxLineBytes = 64 << 10
	maxLineErrors       = 16
)

// Decoder reads batches of line protocol. It is reusable and not safe for
// concurrent use; the zero value is ready. Once its scratch buffers have
// grown to the largest line seen, decoding does not allocate (errors
// excepted).
type Decoder struct {
	// MaxLineBytes bounds one line (a point whose string values hold
	// newlines counts as one line); 0 means 64 KiB. Longer lines are errors.
	MaxLineBytes int

	pv      PointView
	scratch []byte // unescaped tokens of the current line
	p       lineParser
}

// Decode parses batch and calls visit (which may be nil) for every valid
// line. Malformed lines are skipped and reported; all good lines of the
// batch are kept. The PointView and every slice in it are valid only during
// the visit call: they point into batch or into the decoder's scratch
// space, where escaped tokens are unescaped. ok counts visited lines, bad
// malformed lines; errs holds at most the first 16 errors. Decode never
// panics on malformed input.
func (d *Decoder) Decode(batch []byte, visit func(p *PointView)) (ok, bad int, errs []*LineError) {
	maxLen := d.MaxLineBytes
	if maxLen <= 0 {
		maxLen = defaultMaxLineBytes
	}
	lineNo := 1
	for pos := 0; pos < len(batch); {
		physEnd := len(batch)
		if n := bytes.IndexByte(batch[pos:], '\n'); n >= 0 {
			physEnd = pos + n
		}
		next, lines := physEnd+1, 1
		switch d.parseLine(batch, pos, physEnd, maxLen) {
		case lineOK:
			ok++
			if visit != nil {
				visit(&d.pv)
			}
			if end := d.p.lineEnd; end > physEnd { // strings held newlines
				lines += bytes.Count(batch[physEnd:end], newline)
				next = end + 1
			}
		case lineBad:
			bad++
			if len(errs) < maxLineErrors {
				errs = append(errs, d.p.lineError(lineNo, physEnd))
			}
		}
		pos, lineNo = next, lineNo+lines
	}
	d.release()
	return ok, bad, errs
}

// release drops the references into the batch so that the decoder does not
// keep it alive between calls.
func (d *Decoder) release() {
	d.p = lineParser{}
	d.pv.Measurement = nil
	clear(d.pv.Tags[:cap(d.pv.Tags)])
	clear(d.pv.Fields[:cap(d.pv.Fields)])
}

var newline = []byte{'\n'}

type lineStatus uint8

const (
	lineEmpty lineStatus = iota // blank or comment
	lineOK
	lineBad
)

// lineParser holds the state of the line being parsed. All offsets index
// the whole batch b.
type lineParser struct {
	d       *Decoder
	b       []byte
	start   int // first byte of the line
	i       int // cursor
	end     int // end of the content: trailing blanks and '\r' cut off
	lineEnd int // the '\n' ending the point, or len(b)
	maxEnd  int // start + MaxLineBytes

	multi    bool   // a string value spans lines
	quote    int    // its opening quote
	quoteKey []byte // its field

	errOff int
	errMsg string
}

// parseLine parses the physical line [start, physEnd) of b, and the lines
// after it if a string value runs on, into d.pv.
func (d *Decoder) parseLine(b []byte, start, physEnd, maxLen int) lineStatus {
	p := &d.p
	*p = lineParser{d: d, b: b, start: start, lineEnd: physEnd, maxEnd: start + maxLen}
	if physEnd-start > maxLen {
		p.fail(start+maxLen, fmt.Sprintf("line too long (%d bytes, limit %d)", physEnd-start, maxLen))
		return lineBad
	}
	p.end = trimEnd(b, start, physEnd)
	i := start
	for i < p.end && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	if i == p.end || b[i] == '#' {
		return lineEmpty
	}
	p.i = i
	if p.parse() {
		return lineOK
	}
	if p.multi { // the real fault is most likely a missing closing quote
		p.errOff = p.quote
		p.errMsg = fmt.Sprintf("unterminated string value for field %q", clip(p.quoteKey))
	}
	return lineBad
}

func trimEnd(b []byte, lo, hi int) int {
	for hi > lo && (b[hi-1] == ' ' || b[hi-1] == '\t' || b[hi-1] == '\r') {
		hi--
	}
	return hi
}

// fail records the error at byte offset off and returns false.
func (p *lineParser) fail(off int, msg string) bool {
	p.errOff, p.errMsg = off, msg
	return false
}

// lineError reports the failure of the line starting at p.start.
func (p *lineParser) lineError(lineNo, physEnd int) *LineError {
	from := p.start
	if p.errOff-from > 48 {
		from = p.errOff - 32
	}
	to := min(trimEnd(p.b, from, physEnd), from+64)
	return &LineError{Line: lineNo, Col: p.errOff - p.start + 1, Msg: p.errMsg, Excerpt: string(p.b[from:to])}
}

// parse parses the line from p.i into p.d.pv.
func (p *lineParser) parse() bool {
	pv := &p.d.pv
	pv.Tags, pv.Fields = pv.Tags[:0], pv.Fields[:0]
	pv.Time, pv.HasTime = 0, false
	p.d.scratch = p.d.scratch[:0]

	pv.Measurement = p.name(false)
	if len(pv.Measurement) == 0 {
		return p.fail(p.i, "missing measurement")
	}
	for p.i < p.end && p.b[p.i] == ',' {
		p.i++
		if !p.tag() {
			return false
		}
	}
	if !p.skipSpaces() {
		return p.fail(p.i, "missing fields")
	}
	for {
		if !p.field() {
			return false
		}
		if p.i >= p.end {
			return true
		}
		if p.b[p.i] == ' ' {
			return p.timestamp()
		}
		p.i++ // ','
	}
}

// skipSpaces skips one or more spaces and reports whether content follows.
func (p *lineParser) skipSpaces() bool {
	for p.i < p.end && p.b[p.i] == ' ' {
		p.i++
	}
	return p.i < p.end
}

// name scans a measurement (keyTok false: up to ',' or ' ') or a key (up to
// ',', ' ' or '='), unescaping it into scratch if needed.
func (p *lineParser) name(keyTok bool) []byte {
	b, s, i := p.b, p.i, p.i
	esc := false
	for ; i < p.end; i++ {
		switch nameClass[b[i]] {
		case 0:
			continue
		case classEq:
			if !keyTok {
				continue
			}
		case classEsc:
			esc = true
			if i+1 < p.end {
				i++
			}
			continue
		}
		break
	}
	p.i = i
	if !esc {
		return b[s:i:i]
	}
	return p.d.unescapeName(b[s:i])
}

// Byte classes of names: separators, '=' (ends keys only), backslash.
const (
	classSep = 1 + iota
	classEq
	classEsc
)

var nameClass = [256]uint8{',': classSep, ' ': classSep, '=': classEq, '\\': classEsc}

func (d *Decoder) unescapeName(tok []byte) []byte {
	s := len(d.scratch)
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c == '\\' && i+1 < len(tok) && nameEscapable[tok[i+1]] {
			i++
			c = tok[i]
		}
		d.scratch = append(d.scratch, c)
	}
	return d.scratch[s:len(d.scratch):len(d.scratch)]
}

// tag parses "key=value" after a ','.
func (p *lineParser) tag() bool {
	at := p.i
	key := p.name(true)
	if len(key) == 0 {
		return p.fail(at, "empty tag key")
	}
	if p.i >= p.end || p.b[p.i] != '=' {
		return p.fail(p.i, fmt.Sprintf("missing '=' after tag key %q", clip(key)))
	}
	p.i++
	at = p.i
	val := p.name(false)
	if len(val) == 0 {
		return p.fail(at, fmt.Sprintf("empty value for tag %q", clip(key)))
	}
	pv := &p.d.pv
	pv.Tags = append(pv.Tags, TagView{Key: key, Value: val})
	return true
}

// field parses "key=value" of the field set.
func (p *lineParser) field() bool {
	at := p.i
	key := p.name(true)
	if len(key) == 0 {
		return p.fail(at, "empty field key")
	}
	if p.i >= p.end || p.b[p.i] != '=' {
		return p.fail(p.i, fmt.Sprintf("missing '=' after field key %q", clip(key)))
	}
	p.i++
	pv := &p.d.pv
	n := len(pv.Fields)
	if n < cap(pv.Fields) {
		pv.Fields = pv.Fields[:n+1]
	} else {
		pv.Fields = append(pv.Fields, FieldView{})
	}
	f := &pv.Fields[n]
	*f = FieldView{Key: key}
	b, s, i := p.b, p.i, p.i
	if i < p.end && b[i] == '"' {
		return p.str(f)
	}
	for ; i < p.end; i++ {
		if c := b[i]; c == ',' || c == ' ' {
			break
		}
	}
	p.i = i
	tok := b[s:i]
	if len(tok) == 0 {
		return p.fail(s, fmt.Sprintf("missing value for field %q", clip(key)))
	}
	if msg := parseValue(tok, f); msg != "" {
		return p.fail(s, fmt.Sprintf(msg, clip(tok), clip(key)))
	}
	return true
}

// str parses a quoted string value starting at p.i, which may run on over
// newlines.
func (p *lineParser) str(f *FieldView) bool {
	b, q := p.b, p.i
	lim := min(len(b), p.maxEnd)
	i, esc := q+1, false
	for ; i < lim && b[i] != '"'; i++ {
		if b[i] == '\\' {
			esc = true
			i++
		}
	}
	if i >= lim {
		return p.fail(q, fmt.Sprintf("unterminated string value for field %q", clip(f.Key)))
	}
	if i > p.lineEnd { // the string holds newlines: the line goes on
		if !p.multi {
			p.multi, p.quote, p.quoteKey = true, q, f.Key
		}
		p.lineEnd = len(b)
		if n := bytes.IndexByte(b[i:], '\n'); n >= 0 {
			p.lineEnd = i + n
		}
		if p.lineEnd > p.maxEnd {
			return p.fail(q, "line too long")
		}
		p.end = trimEnd(b, i+1, p.lineEnd)
	}
	f.Kind = FieldString
	f.Str = b[q+1 : i : i]
	if esc {
		f.Str = p.d.unescapeString(f.Str)
	}
	p.i = i + 1
	if p.i < p.end && b[p.i] != ',' && b[p.i] != ' ' {
		return p.fail(p.i, fmt.Sprintf("expected ',' or ' ' after string value of field %q", clip(f.Key)))
	}
	return true
}

func (d *Decoder) unescapeString(tok []byte) []byte {
	s := len(d.scratch)
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c == '\\' && i+1 < len(tok) && (tok[i+1] == '"' || tok[i+1] == '\\') {
			i++
			c = tok[i]
		}
		d.scratch = append(d.scratch, c)
	}
	return d.scratch[s:len(d.scratch):len(d.scratch)]
}

// timestamp parses the optional timestamp after the field set.
func (p *lineParser) timestamp() bool {
	if !p.skipSpaces() {
		return true // trailing blanks only
	}
	s := p.i
	for p.i < p.end && p.b[p.i] != ' ' {
		p.i++
	}
	tok := p.b[s:p.i]
	v, e := parseInt(tok)
	switch e {
	case numSyntax:
		return p.fail(s, fmt.Sprintf("invalid timestamp %q", clip(tok)))
	case numRange:
		return p.fail(s, fmt.Sprintf("timestamp %q out of range", clip(tok)))
	}
	if p.skipSpaces() {
		return p.fail(p.i, "unexpected text after timestamp")
	}
	pv := &p.d.pv
	pv.Time, pv.HasTime = v, true
	return true
}

// clip bounds a token quoted in an error message.
func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
