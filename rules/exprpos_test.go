package rules

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/config"
)

// lineCol is an oracle independent of the mapping under test: the line and
// column (1-based, in runes) of byte offset i of text.
func lineCol(text string, i int) (line, col int) {
	line, col = 1, 1
	for _, r := range text[:i] {
		if r == '\n' {
			line, col = line+1, 1
		} else if r != '\r' {
			col++
		}
	}
	return line, col
}

// Errors inside expressions are reported where the bad token is in the
// file, whatever the scalar style. Each case names a text (anchor) whose
// first occurrence, plus delta runes, is where the error must be.
func TestExprErrorPositions(t *testing.T) {
	head := "groups:\n  - name: g\n    rules:\n      - name: r\n"
	cases := []struct {
		name, rule, anchor string
		delta              int
		crlf               bool
	}{
		{name: "plain", rule: `        expr: value("a.b") > 1 && nosuch`, anchor: "nosuch"},
		{name: "plain unicode", rule: `        expr: host != "ééé" && nosuch`, anchor: "nosuch"},
		{name: "plain continued", rule: "        expr: value(\"a.b\") > 1\n          && nosuch", anchor: "nosuch"},
		{name: "single quoted", rule: `        expr: 'value("a.b{k=''x''}") > 1 && nosuch'`, anchor: "nosuch"},
		{name: "double quoted escapes", rule: `        expr: "value(\"a.b\") > 1 &&\t nosuch"`, anchor: "nosuch"},
		{name: "double quoted unicode escape", rule: `        expr: "host != \"\u00e9\" && nosuch"`, anchor: "nosuch"},
		{name: "double quoted folded", rule: "        expr: \"value(\\\"a.b\\\") > 1\n          && nosuch\"", anchor: "nosuch"},
		{name: "double quoted escaped break", rule: "        expr: \"value(\\\"a.b\\\") > 1 && \\\n          nosuch\"", anchor: "nosuch"},
		{name: "literal", rule: "        expr: |\n          value(\"a.b\") > 1\n            && value(\"c.d\") > 2\n            && nosuch", anchor: "nosuch"},
		{name: "literal strip comment", rule: "        expr: |- # the condition\n          value(\"a.b\") > 1 &&\n\n          nosuch", anchor: "nosuch"},
		{name: "literal keep", rule: "        expr: |+\n          value(\"a.b\") >\n            nosuch\n", anchor: "nosuch"},
		{name: "literal indent indicator", rule: "        expr: |2\n            value(\"a.b\") > 1 && nosuch", anchor: "nosuch"},
		{name: "literal crlf", rule: "        expr: |\n          value(\"a.b\") > 1\n          && nosuch", anchor: "nosuch", crlf: true},
		{name: "folded", rule: "        expr: >\n          value(\"a.b\") > 1\n          && nosuch > 2", anchor: "nosuch"},
		{name: "flow", rule: "        expr: value(\"a.b\") > 0\n      - {name: s, expr: value(\"a.b\") > nosuch}", anchor: "nosuch"},
		{name: "syntax error", rule: "        expr: |\n          value(\"a.b\") > 1\n          && (2 ] 3)", anchor: "]"},
		{name: "type error", rule: "        expr: >-\n          value(\"a.b\") > 1 &&\n          host * 2 > 1", anchor: "*"},
		{name: "selector in block", rule: "        expr: |\n          value(\"a.b\") > 1 &&\n          value(\"disk.used_percent{path=/a,path=/b}\") > 1", anchor: ",path", delta: 1},
		{name: "selector quoted", rule: `        expr: 'anomaly("cpu.usage_user{cpu}") > 1'`, anchor: "{cpu}", delta: 4},
		{name: "selector not literal", rule: "        expr: |\n          value(\"a.b\") > 1 &&\n          value(trim(\"a.b\")) > 1", anchor: "trim"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := head + c.rule + "\n"
			if c.crlf {
				src = strings.ReplaceAll(src, "\n", "\r\n")
			}
			_, err := Parse("p.yaml", []byte(src))
			var errs config.Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("want one error, got %v", err)
			}
			i := strings.Index(src, c.anchor)
			line, col := lineCol(src, i)
			col += c.delta
			if errs[0].Line != line || errs[0].Col != col {
				t.Errorf("error at %d:%d, want %d:%d: %v\n%s", errs[0].Line, errs[0].Col, line, col, errs[0], src)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	for in, want := range map[string]string{"1h": "1h", "30m": "30m", "1h30m": "1h30m", "90s": "1m30s",
		"10s": "10s", "0s": "0s", "100ms": "100ms", "2h0m5s": "2h0m5s", "10m": "10m"} {
		d, _ := parseDur(in)
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%s) = %s, want %s", in, got, want)
		}
	}
}

func parseDur(s string) (d time.Duration, err error) { return time.ParseDuration(s) }
