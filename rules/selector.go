package rules

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Tag is one exact tag match of a Selector.
type Tag struct{ Key, Value string }

// Selector names the series a rule function reads:
//
//	measurement.field
//	measurement.field{key=value,key2="quoted, value"}
//
// The measurement ends at the first '.'; measurement, field and tag keys
// use letters, digits and _ - : (the field and tag keys also '.'). A tag
// value is either bare (anything but space , = { } ") or double-quoted with
// \" and \\ escapes. Spaces around ',' '=' and inside the braces are
// ignored. A tag with an empty value ("") selects series that do not carry
// that tag.
type Selector struct {
	Text        string // as written
	Measurement string
	Field       string
	Tags        []Tag // sorted by key
}

// SelectorError is a problem in a selector, at Offset runes into its text.
type SelectorError struct {
	Offset int
	Msg    string
}

func (e *SelectorError) Error() string {
	return fmt.Sprintf("bad selector: %s (at offset %d)", e.Msg, e.Offset)
}

// ParseSelector parses a selector; errors are *SelectorError.
func ParseSelector(s string) (*Selector, error) {
	p := selParser{s: s}
	sel := &Selector{Text: s}
	var err error
	if sel.Measurement, err = p.name("measurement", false); err != nil {
		return nil, err
	}
	if !p.eat('.') {
		return nil, p.errorf("want '.' between measurement and field, like mem.used_percent")
	}
	if sel.Field, err = p.name("field", true); err != nil {
		return nil, err
	}
	if p.eat('{') {
		if sel.Tags, err = p.tags(); err != nil {
			return nil, err
		}
	}
	if p.i < len(p.s) {
		return nil, p.errorf("unexpected %q after the selector", p.rest())
	}
	return sel, nil
}

// Match reports whether a series with this measurement, field and tags
// (looked up by key) is selected.
func (s *Selector) Match(measurement, field string, tag func(key string) (string, bool)) bool {
	if measurement != s.Measurement || field != s.Field {
		return false
	}
	for _, t := range s.Tags {
		v, ok := tag(t.Key)
		if t.Value == "" {
			if ok && v != "" {
				return false
			}
			continue
		}
		if !ok || v != t.Value {
			return false
		}
	}
	return true
}

// String is the canonical form: tags sorted, values quoted only when needed.
func (s *Selector) String() string {
	var b strings.Builder
	b.WriteString(s.Measurement)
	b.WriteByte('.')
	b.WriteString(s.Field)
	if len(s.Tags) == 0 {
		return b.String()
	}
	b.WriteByte('{')
	for i, t := range s.Tags {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(t.Key)
		b.WriteByte('=')
		b.WriteString(quoteTagValue(t.Value))
	}
	b.WriteByte('}')
	return b.String()
}

func quoteTagValue(v string) string {
	if v != "" && strings.IndexFunc(v, func(r rune) bool { return !isBareValueRune(r) }) < 0 {
		return v
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

func isNameRune(r rune, dot bool) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	case r == '_' || r == '-' || r == ':':
		return true
	case r == '.':
		return dot
	}
	return false
}

func isBareValueRune(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', ',', '=', '{', '}', '"', '\\':
		return false
	}
	return r != utf8.RuneError
}

type selParser struct {
	s string
	i int // byte offset
}

func (p *selParser) errorf(format string, args ...any) *SelectorError {
	return &SelectorError{Offset: utf8.RuneCountInString(p.s[:p.i]), Msg: fmt.Sprintf(format, args...)}
}

func (p *selParser) rest() string {
	r := p.s[p.i:]
	if len(r) > 20 {
		r = r[:20] + "…"
	}
	return r
}

func (p *selParser) peek() rune {
	if p.i >= len(p.s) {
		return -1
	}
	r, _ := utf8.DecodeRuneInString(p.s[p.i:])
	return r
}

func (p *selParser) eat(r rune) bool {
	if p.peek() == r {
		p.i += utf8.RuneLen(r)
		return true
	}
	return false
}

func (p *selParser) spaces() {
	for p.peek() == ' ' || p.peek() == '\t' {
		p.i++
	}
}

func (p *selParser) name(what string, dot bool) (string, error) {
	start := p.i
	for p.i < len(p.s) && isNameRune(rune(p.s[p.i]), dot) {
		p.i++
	}
	if p.i == start {
		if p.i >= len(p.s) {
			return "", p.errorf("missing %s", what)
		}
		return "", p.errorf("want a %s name, got %q", what, p.peek())
	}
	return p.s[start:p.i], nil
}

// tags parses "k=v, k2=v2}" after the opening brace.
func (p *selParser) tags() ([]Tag, error) {
	var tags []Tag
	seen := map[string]bool{}
	for {
		p.spaces()
		if p.peek() == '}' && len(tags) == 0 {
			p.i++
			return nil, nil
		}
		keyAt := p.i
		key, err := p.name("tag key", true)
		if err != nil {
			return nil, err
		}
		if seen[key] {
			p.i = keyAt
			return nil, p.errorf("duplicate tag %q", key)
		}
		seen[key] = true
		p.spaces()
		if !p.eat('=') {
			return nil, p.errorf("want '=' after tag key %q", key)
		}
		p.spaces()
		val, err := p.value()
		if err != nil {
			return nil, err
		}
		tags = append(tags, Tag{Key: key, Value: val})
		p.spaces()
		if p.eat('}') {
			break
		}
		if !p.eat(',') {
			if p.i >= len(p.s) {
				return nil, p.errorf("missing '}'")
			}
			return nil, p.errorf("want ',' or '}' after tag %q, got %q", key, p.peek())
		}
	}
	sort.Slice(tags, func(i, j int) bool { return tags[i].Key < tags[j].Key })
	return tags, nil
}

func (p *selParser) value() (string, error) {
	if !p.eat('"') {
		start := p.i
		for p.i < len(p.s) {
			r, n := utf8.DecodeRuneInString(p.s[p.i:])
			if !isBareValueRune(r) {
				break
			}
			p.i += n
		}
		if p.i == start {
			return "", p.errorf("missing tag value (quote it: \"\" for an absent tag)")
		}
		return p.s[start:p.i], nil
	}
	var b strings.Builder
	for {
		if p.i >= len(p.s) {
			return "", p.errorf("unterminated quoted tag value")
		}
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String(), nil
		case c == '\\':
			if p.i+1 >= len(p.s) || (p.s[p.i+1] != '"' && p.s[p.i+1] != '\\') {
				return "", p.errorf(`bad escape in quoted tag value (only \" and \\)`)
			}
			b.WriteByte(p.s[p.i+1])
			p.i += 2
		default:
			b.WriteByte(c)
			p.i++
		}
	}
}
