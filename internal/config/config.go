// Package config decodes Vigil's YAML configuration files strictly:
// unknown keys and values of the wrong type are errors that name the file,
// line and column; `${VAR}` is expanded only in fields of type Expand
// (secrets and endpoints).
package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a configuration file.
type Error struct {
	File      string
	Line, Col int
	Msg       string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// Errors is every problem found in one file; it is returned as one error.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Doc remembers where each key of a decoded file is, so that semantic
// validation can name line and column too.
type Doc struct {
	File string
	pos  map[string][2]int
}

// Errorf makes an Error positioned at the value of path ("a.b[2].c"); an
// unknown path gives the file alone.
func (d *Doc) Errorf(path, format string, args ...any) *Error {
	p := d.pos[path]
	return &Error{File: d.File, Line: p[0], Col: p[1], Msg: fmt.Sprintf(format, args...)}
}

// Pos is the line and column of the value at path, or zeros.
func (d *Doc) Pos(path string) (line, col int) {
	p := d.pos[path]
	return p[0], p[1]
}

// Load reads path and decodes it into out (a pointer to a struct).
func Load(path string, out any) (*Doc, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Decode(path, data, out)
}

// Decode decodes YAML data named file into out, strictly.
func Decode(file string, data []byte, out any) (*Doc, error) {
	doc := &Doc{File: file, pos: map[string][2]int{}}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return doc, Errors{syntaxError(file, err)}
	}
	if root.Kind == 0 { // empty file: defaults only
		return doc, nil
	}
	var errs Errors
	w := walker{doc: doc, errs: &errs}
	w.walk(&root, reflect.TypeOf(out).Elem(), "")
	if len(errs) > 0 {
		return doc, errs
	}
	if err := root.Decode(out); err != nil {
		return doc, Errors{syntaxError(file, err)}
	}
	return doc, nil
}

var lineRe = regexp.MustCompile(`line (\d+)(?::(\d+))?: `)

// syntaxError turns a yaml.v3 error ("yaml: line 3: ...") into an Error.
func syntaxError(file string, err error) *Error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	e := &Error{File: file, Msg: msg}
	if m := lineRe.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		if m[2] != "" {
			e.Col, _ = strconv.Atoi(m[2])
		}
		e.Msg = strings.Replace(msg, m[0], "", 1)
	}
	return e
}

type walker struct {
	doc  *Doc
	errs *Errors
}

func (w *walker) errorf(n *yaml.Node, format string, args ...any) {
	*w.errs = append(*w.errs, &Error{File: w.doc.File, Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)})
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// walk checks node against type t: unknown keys, and scalars that do not
// decode into their field's type. It records the position of every path.
func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) > 0 {
			w.walk(n.Content[0], t, path)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	w.doc.pos[path] = [2]int{n.Line, n.Column}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || n.Tag == "!!null" {
		w.checkScalar(n, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		w.walkStruct(n, t, path)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.errorf(n, "%s: expected a mapping, got %s", name(path), kindName(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			w.walk(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.errorf(n, "%s: expected a list, got %s", name(path), kindName(n))
			return
		}
		for i, c := range n.Content {
			w.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	default:
		w.checkScalar(n, t, path)
	}
}

func (w *walker) walkStruct(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		w.errorf(n, "%s: expected a mapping, got %s", name(path), kindName(n))
		return
	}
	fields := map[string]reflect.Type{}
	collectFields(t, fields)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ft, ok := fields[k.Value]
		if !ok {
			w.errorf(k, "unknown key %q in %s (known: %s)", k.Value, name(path), known(fields))
			continue
		}
		if seen[k.Value] {
			w.errorf(k, "duplicate key %q in %s", k.Value, name(path))
			continue
		}
		seen[k.Value] = true
		w.walk(v, ft, join(path, k.Value))
	}
}

func (w *walker) checkScalar(n *yaml.Node, t reflect.Type, path string) {
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		e := syntaxError(w.doc.File, err)
		w.errorf(n, "%s: %s", name(path), e.Msg)
	}
}

// collectFields maps YAML keys to field types, following `yaml:",inline"`.
func collectFields(t reflect.Type, out map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		key, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			collectFields(ft, out)
			continue
		}
		if key == "" {
			key = strings.ToLower(f.Name)
		}
		out[key] = f.Type
	}
}

func known(fields map[string]reflect.Type) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sortStrings(keys)
	return strings.Join(keys, ", ")
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func name(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}
