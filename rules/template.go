package rules

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Label and annotation values are Go text/templates, rendered when a rule
// changes state and for every intent, with TemplateData as the dot:
//
//	annotations:
//	  summary: '{{ .Labels.host }}: {{ .Labels.path }} full in {{ humanizeDuration .Values.eta }}'
//	  detail: 'used {{ humanizePercent (div .Values.value 100) }}, {{ index .Values "value:disk.used_percent" }}'
//
// .Values holds every value the evaluation recorded under its capture key
// (funcs.go), and under the function's name alone for the first call of
// each function (.Values.eta, .Values.avg_over, ...). Durations are in
// seconds and an eta of never is -1. A missing key is 0. Functions:
//
//	humanize x          1234567 → 1.235M, 0.00123 → 1.23m
//	humanizeBytes x     1536 → 1.5KiB
//	humanizeDuration s  seconds (or a time.Duration) → 1h2m, 45s, 1.5s; negative → never
//	humanizePercent x   0.953 → 95.3%
//	printf, upper, lower, trimSpace, div x y, mul x y, time t (RFC 3339, UTC)
//
// Templates are parsed and executed once against empty data at load time:
// a syntax error, an unknown function or an unknown field (.Lables) is
// reported at its line and column in the rule file.

// TemplateData is the dot of label and annotation templates.
type TemplateData struct {
	Subject, Scope, Host   string
	Rule, Group, Severity  string
	State                  string // the state entered (pending, firing, ...) or the intent's "firing"
	Labels                 map[string]string
	Values                 map[string]float64
	Time, PredictedFailure time.Time
}

type ruleTemplate struct {
	t *template.Template
}

var templateFuncs = template.FuncMap{
	"humanize":         humanize,
	"humanizeBytes":    humanizeBytes,
	"humanizeDuration": humanizeDuration,
	"humanizePercent":  func(x any) string { return strconv.FormatFloat(toF(x)*100, 'g', 3, 64) + "%" },
	"upper":            strings.ToUpper,
	"lower":            strings.ToLower,
	"trimSpace":        strings.TrimSpace,
	"div": func(a, b any) float64 {
		return toF(a) / toF(b)
	},
	"mul":  func(a, b any) float64 { return toF(a) * toF(b) },
	"time": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
}

func toF(x any) float64 {
	f, err := toFloat(x)
	if err != nil {
		return math.NaN()
	}
	if d, ok := x.(time.Duration); ok {
		return d.Seconds()
	}
	return f
}

func humanize(x any) string {
	v := toF(x)
	a := math.Abs(v)
	switch {
	case v == 0 || math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'g', -1, 64)
	case a >= 1:
		for _, u := range []struct {
			s string
			f float64
		}{{"T", 1e12}, {"G", 1e9}, {"M", 1e6}, {"k", 1e3}} {
			if a >= u.f {
				return strconv.FormatFloat(v/u.f, 'g', 4, 64) + u.s
			}
		}
		return strconv.FormatFloat(v, 'g', 4, 64)
	case a >= 1e-3:
		return strconv.FormatFloat(v*1e3, 'g', 3, 64) + "m"
	}
	return strconv.FormatFloat(v*1e6, 'g', 3, 64) + "µ"
}

func humanizeBytes(x any) string {
	v := toF(x)
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for math.Abs(v) >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(v, 'g', 4, 64) + units[i]
}

func humanizeDuration(x any) string {
	s := toF(x)
	switch {
	case math.IsNaN(s):
		return "?"
	case s < 0 || s >= Never.Seconds():
		return "never"
	case s == 0:
		return "0s"
	case s < 1:
		return strconv.FormatFloat(s*1000, 'g', 3, 64) + "ms"
	case s < 60:
		return strconv.FormatFloat(s, 'g', 3, 64) + "s"
	}
	d := time.Duration(math.Round(s)) * time.Second
	if d >= time.Hour {
		d = d.Round(time.Minute)
	}
	return formatDuration(d)
}

var templateErrRe = regexp.MustCompile(`^template: [^:]*:(\d+)(?::(\d+))?: `)
var quotedRe = regexp.MustCompile(`"([^"]+)"|<\.?([^>]+)>`)

// compileTemplate parses and test-runs the template of a label or
// annotation value held by the YAML scalar n; problems are reported at
// their place in the file. Plain text (no "{{") answers nil.
func (d *decoder) compileTemplate(name, text string, n *yaml.Node) *ruleTemplate {
	if !strings.Contains(text, "{{") {
		return nil
	}
	t, err := template.New(name).Option("missingkey=zero").Funcs(templateFuncs).Parse(text)
	if err == nil {
		err = t.Execute(discard{}, TemplateData{Labels: map[string]string{}, Values: map[string]float64{}})
	}
	if err != nil {
		d.templateError(name, text, n, err)
		return nil
	}
	return &ruleTemplate{t: t}
}

// templateError positions a text/template error: its line within the
// template, and the column of the name it quotes (or of the line start).
func (d *decoder) templateError(name, text string, n *yaml.Node, err error) {
	msg := err.Error()
	line, col := 1, 0
	if m := templateErrRe.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		if m[2] != "" {
			col, _ = strconv.Atoi(m[2])
		}
		msg = msg[len(m[0]):]
	}
	lines := strings.SplitAfter(text, "\n")
	off := 0
	for i := 0; i < line-1 && i < len(lines); i++ {
		off += utf8.RuneCountInString(lines[i])
	}
	cur := ""
	if line-1 < len(lines) {
		cur = lines[line-1]
	}
	msg = strings.TrimPrefix(msg, `executing "`+name+`" at `)
	q := ""
	if m := quotedRe.FindStringSubmatch(msg); m != nil {
		q = m[1] + m[2]
	}
	switch i := strings.Index(cur, q); {
	case q != "" && i >= 0:
		off += utf8.RuneCountInString(cur[:i])
	case col > 0:
		off += utf8.RuneCountInString(cur[:min(col, len(cur))])
	default:
		if i := strings.Index(cur, "{{"); i >= 0 {
			off += utf8.RuneCountInString(cur[:i])
		}
	}
	msg = strings.TrimPrefix(msg, `executing "`+name+`" at `)
	l, c := scalarPositions(d.data, n).at(off)
	d.errorAt(l, c, "%s: template: %s", name, msg)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// render executes the template; on failure it answers the raw text and
// the error.
func (rt *ruleTemplate) render(raw string, data *TemplateData) (string, error) {
	var b strings.Builder
	if err := rt.t.Execute(&b, data); err != nil {
		return raw, fmt.Errorf("template %s: %w", rt.t.Name(), err)
	}
	return b.String(), nil
}
