package rules

import (
	"strconv"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Mapping a position inside a YAML scalar's value (as expr reports it, in
// runes) back to the line and column of the file that holds the scalar.
//
// The value is a subsequence of the raw text after the scalar's opening
// (the quote, or the `|`/`>` header line), once escapes ("\n", "''") are
// decoded and line folding turns breaks into spaces or newlines. Matching
// the value's runes greedily against the raw tokens, skipping only
// whitespace, breaks and escaped breaks, finds each rune's place. When the
// text does not line up (it always should), the rest maps to the scalar's
// start, which is still the right line for single-line scalars.

type filePos struct{ line, col int }

// posTable holds the file position of every rune of a scalar's value.
type posTable struct {
	start filePos   // the scalar node
	pos   []filePos // one per rune of the value; missing entries map to start
	end   filePos   // just after the last non-space rune
}

// at answers the file line and column of the rune at offset; offsets at or
// past the end answer the position just after the last non-space rune.
func (t posTable) at(offset int) (line, col int) {
	switch {
	case offset < 0:
		return t.start.line, t.start.col
	case offset < len(t.pos):
		return t.pos[offset].line, t.pos[offset].col
	case t.end.line > 0:
		return t.end.line, t.end.col
	}
	return t.start.line, t.start.col
}

func scalarPositions(data []byte, n *yaml.Node) posTable {
	t := posTable{start: filePos{n.Line, n.Column}}
	c, ok := cursorAt(data, n.Line, n.Column)
	if !ok || n.Kind != yaml.ScalarNode {
		return t
	}
	style := n.Style &^ (yaml.TaggedStyle | yaml.FlowStyle)
	switch style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		for !c.eof() && !c.atBreak() { // the header line: | or > with indicators and a comment
			c.advance()
		}
		c.advance()
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		c.advance()
	}
	for _, v := range n.Value {
		p, ok := c.match(v, style)
		if !ok {
			break
		}
		t.pos = append(t.pos, p)
		if v != ' ' && v != '\t' && v != '\n' {
			t.end = filePos{p.line, p.col + 1}
		}
	}
	return t
}

// rawCursor walks the raw file text by runes, keeping line and column as
// yaml.v3 counts them (1-based, in runes; CRLF is one break).
type rawCursor struct {
	data      []byte
	i         int
	line, col int
}

func cursorAt(data []byte, line, col int) (rawCursor, bool) {
	c := rawCursor{data: data, line: 1, col: 1}
	if len(data) >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF {
		c.i = 3
	}
	for !c.eof() && (c.line < line || (c.line == line && c.col < col)) {
		c.advance()
	}
	return c, !c.eof() && c.line == line && c.col == col
}

func (c *rawCursor) eof() bool { return c.i >= len(c.data) }

func (c *rawCursor) peek() rune {
	if c.eof() {
		return -1
	}
	r, _ := utf8.DecodeRune(c.data[c.i:])
	return r
}

func (c *rawCursor) atBreak() bool { return isBreak(c.peek()) }

// isBreak reports whether yaml.v3 counts r as a line break.
func isBreak(r rune) bool {
	return r == '\n' || r == '\r' || r == 0x85 || r == 0x2028 || r == 0x2029
}

func (c *rawCursor) advance() {
	if c.eof() {
		return
	}
	r, n := utf8.DecodeRune(c.data[c.i:])
	c.i += n
	if r == '\r' && c.peek() == '\n' {
		c.i++
	}
	if isBreak(r) {
		c.line++
		c.col = 1
		return
	}
	c.col++
}

// token is what one piece of raw text contributes to the value.
type token struct {
	r     rune // produced rune; -1 for none (an escaped line break)
	brk   bool // a line break, which folds into ' ' or '\n'
	space bool // whitespace that folding may drop
	at    filePos
}

// next consumes one token of a scalar written in style.
func (c *rawCursor) next(style yaml.Style) token {
	t := token{at: filePos{c.line, c.col}}
	r := c.peek()
	switch {
	case isBreak(r):
		c.advance()
		t.r, t.brk = '\n', true
	case r == ' ' || r == '\t':
		c.advance()
		t.r, t.space = r, true
	case r == '\\' && style == yaml.DoubleQuotedStyle:
		c.advance()
		if c.atBreak() {
			c.advance()
			t.r = -1
			return t
		}
		t.r = c.escape()
	case r == '\'' && style == yaml.SingleQuotedStyle:
		c.advance()
		if c.peek() == '\'' {
			c.advance()
		}
		t.r = '\''
	default:
		c.advance()
		t.r = r
	}
	return t
}

var simpleEscapes = map[rune]rune{
	'0': 0, 'a': '\a', 'b': '\b', 't': '\t', '\t': '\t', 'n': '\n', 'v': '\v', 'f': '\f', 'r': '\r',
	'e': 0x1b, ' ': ' ', '"': '"', '/': '/', '\\': '\\', 'N': 0x85, '_': 0xa0, 'L': 0x2028, 'P': 0x2029,
}

// escape decodes the escape after a backslash in a double-quoted scalar.
func (c *rawCursor) escape() rune {
	r := c.peek()
	c.advance()
	if v, ok := simpleEscapes[r]; ok {
		return v
	}
	digits := map[rune]int{'x': 2, 'u': 4, 'U': 8}[r]
	if digits == 0 || c.i+digits > len(c.data) {
		return r
	}
	v, err := strconv.ParseUint(string(c.data[c.i:c.i+digits]), 16, 32)
	if err != nil {
		return r
	}
	for range digits {
		c.advance()
	}
	return rune(v)
}

// match finds the raw token that produced the value rune v, skipping the
// whitespace and breaks that folding removed.
func (c *rawCursor) match(v rune, style yaml.Style) (filePos, bool) {
	for !c.eof() {
		save := *c
		t := c.next(style)
		if t.r == v || (t.brk && (v == ' ' || v == '\n')) {
			return t.at, true
		}
		if t.space || t.brk || t.r < 0 {
			continue
		}
		*c = save
		return filePos{}, false
	}
	return filePos{}, false
}
