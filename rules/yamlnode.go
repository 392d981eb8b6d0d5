package rules

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/vigil-sre/vigil/internal/config"
)

// decoder walks yaml.Node trees strictly and collects every problem as a
// config.Error positioned at file:line:col.
type decoder struct {
	file string
	data []byte
	errs config.Errors
}

func (d *decoder) errorAt(line, col int, format string, args ...any) {
	d.errs = append(d.errs, &config.Error{File: d.file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errorAt(n.Line, n.Column, format, args...)
}

// field is one known key of a mapping.
type field struct {
	key      string
	required bool
	fn       func(v *yaml.Node)
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// mapping calls the field function for every key of n that fields knows;
// unknown, duplicate and missing required keys are errors. It reports
// whether n was a mapping.
func (d *decoder) mapping(n *yaml.Node, what string, fields []field) bool {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: expected a mapping, got %s", what, kindName(n))
		return false
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "%s: keys must be strings, got %s", what, kindName(k))
			continue
		}
		f := lookupField(fields, k.Value)
		switch {
		case f == nil:
			d.errorf(k, "unknown key %q in %s (known: %s)", k.Value, what, knownKeys(fields))
		case seen[k.Value]:
			d.errorf(k, "duplicate key %q in %s", k.Value, what)
		default:
			seen[k.Value] = true
			f.fn(v)
		}
	}
	for _, f := range fields {
		if f.required && !seen[f.key] {
			d.errorf(n, "%s: missing required key %q", what, f.key)
		}
	}
	return true
}

func lookupField(fields []field, key string) *field {
	for i := range fields {
		if fields[i].key == key {
			return &fields[i]
		}
	}
	return nil
}

func knownKeys(fields []field) string {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	return strings.Join(keys, ", ")
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	default:
		return "nothing"
	}
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// str decodes a scalar; null is the empty string.
func (d *decoder) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "%s: expected a string, got %s", what, kindName(n))
		return "", false
	}
	if isNull(n) {
		return "", true
	}
	return n.Value, true
}

var nameRe = regexp.MustCompile(`^[a-z0-9_]+$`)

// name decodes a required identifier made of [a-z0-9_].
func (d *decoder) name(n *yaml.Node, what string) (string, bool) {
	s, ok := d.str(n, what)
	if !ok {
		return "", false
	}
	if !nameRe.MatchString(s) {
		d.errorf(n, "%s: %q is not a valid name (use a-z, 0-9 and _)", what, s)
		return "", false
	}
	return s, true
}

// oneOf decodes a string that must be one of allowed; null keeps *out.
func (d *decoder) oneOf(n *yaml.Node, what string, out *string, allowed ...string) {
	s, ok := d.str(n, what)
	if !ok || isNull(n) {
		return
	}
	for _, a := range allowed {
		if s == a {
			*out = s
			return
		}
	}
	d.errorf(n, "%s: %q is not one of %s", what, s, strings.Join(allowed, ", "))
}

// duration decodes a non-negative Go duration ("30s", "5m", "1h30m");
// null keeps *out.
func (d *decoder) duration(n *yaml.Node, what string, out *time.Duration) bool {
	s, ok := d.str(n, what)
	if !ok || isNull(n) {
		return ok
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.errorf(n, "%s: invalid duration %q (want e.g. 30s, 5m, 1h)", what, s)
		return false
	}
	if v < 0 {
		d.errorf(n, "%s: must not be negative, got %s", what, s)
		return false
	}
	*out = v
	return true
}

// float decodes a number; null keeps *out.
func (d *decoder) float(n *yaml.Node, what string, out *float64) bool {
	s, ok := d.str(n, what)
	if !ok || isNull(n) {
		return ok
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		d.errorf(n, "%s: invalid number %q", what, s)
		return false
	}
	*out = v
	return true
}

var labelKeyRe = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// strMap decodes a mapping of strings with keys like label names.
func (d *decoder) strMap(n *yaml.Node, what string) map[string]string {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: expected a mapping, got %s", what, kindName(n))
		return nil
	}
	out := make(map[string]string, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		key, ok := d.str(k, what)
		if !ok {
			continue
		}
		if !labelKeyRe.MatchString(key) {
			d.errorf(k, "%s: %q is not a valid key (use letters, digits and _, not starting with a digit)", what, key)
			continue
		}
		if _, dup := out[key]; dup {
			d.errorf(k, "duplicate key %q in %s", key, what)
			continue
		}
		if val, ok := d.str(v, what+"."+key); ok {
			out[key] = val
		}
	}
	return out
}

// strList decodes a list of strings.
func (d *decoder) strList(n *yaml.Node, what string) []string {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s: expected a list, got %s", what, kindName(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		if s, ok := d.str(resolve(c), fmt.Sprintf("%s[%d]", what, i)); ok {
			out = append(out, s)
		}
	}
	return out
}

var yamlLineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// syntaxError positions a yaml.v3 parse error ("yaml: line 3: ..."). The
// line yaml.v3 names is often that of the enclosing block (and 0-based for
// parser errors), so problemLine finds the line that makes the file
// unparsable; yaml.v3's line is the fallback.
func (d *decoder) syntaxError(err error) {
	msg := err.Error()
	line := 0
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	if l, c, ok := problemLine(d.data, msg); ok {
		d.errorAt(l, c, "%s", msg)
		return
	}
	col := 0
	if line > 0 {
		col = 1
	}
	d.errorAt(line, col, "%s", msg)
}

// Bounds of problemLine's search.
const (
	syntaxScanBytes = 2 << 20 // bytes of prefixes parsed (yaml.v3 parses ~10 MB/s)
	syntaxLookahead = 64      // lines a flow collection or quoted scalar may span
)

// problemLine finds the first line whose addition makes data unparsable
// with the message msg: the first k lines parse, the first k+1 do not.
// Prefixes fail from the bad line on, so a binary search finds it; the
// exception is a prefix that ends inside a multi-line flow collection or
// quoted scalar, which fails with another message: then it looks a few
// lines further for a prefix that parses, and searches on from there if
// one does. The column is the line's first non-space character.
func problemLine(data []byte, msg string) (line, col int, ok bool) {
	ends := lineEnds(data)
	budget := syntaxScanBytes
	var lastErr error
	parses := func(k int) bool { // the first k lines parse
		if k == 0 {
			return true
		}
		budget -= ends[k-1]
		var n yaml.Node
		lastErr = safeUnmarshal(data[:ends[k-1]], &n)
		return lastErr == nil
	}
	sameError := func(k int) bool {
		if parses(k) {
			return false
		}
		m := lastErr.Error()
		if loc := yamlLineRe.FindString(m); loc != "" {
			m = m[len(loc):]
		}
		return strings.TrimPrefix(m, "yaml: ") == msg
	}
	lo, hi := 0, len(ends) // the first lo lines parse, the first hi do not
	for budget > 0 {
		for hi-lo > 1 && budget > 0 {
			if mid := (lo + hi) / 2; parses(mid) {
				lo = mid
			} else {
				hi = mid
			}
		}
		further := 0
		for j := min(len(ends)-1, hi+syntaxLookahead); j > hi && budget > 0 && !sameError(hi); j-- {
			if parses(j) {
				further = j
				break
			}
		}
		if budget <= 0 {
			break
		}
		if further == 0 {
			start := 0
			if hi > 1 {
				start = ends[hi-2]
			}
			return hi, firstCol(data[start:ends[hi-1]]), true
		}
		lo, hi = further, len(ends)
	}
	return 0, 0, false
}

// lineEnds are the byte offsets just after each line, breaks counted as
// yaml.v3 counts them.
func lineEnds(data []byte) []int {
	var ends []int
	for i, r := range string(data) {
		if isBreak(r) && !(r == '\r' && i+1 < len(data) && data[i+1] == '\n') {
			ends = append(ends, i+utf8.RuneLen(r))
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	return ends
}

// firstCol is the column of the first non-space rune of a line (a tab
// there is an error to point at), 1 if none.
func firstCol(line []byte) int {
	col := 1
	for _, r := range string(line) {
		switch r {
		case ' ':
			col++
		case '\n', '\r', 0x85, 0x2028, 0x2029:
			return 1
		default:
			return col
		}
	}
	return 1
}
