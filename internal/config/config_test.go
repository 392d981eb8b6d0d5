package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Interval time.Duration `yaml:"interval"`
	Paths    []string      `yaml:"paths"`
}

type sample struct {
	Name   string            `yaml:"name"`
	URL    Expand            `yaml:"url"`
	Count  int               `yaml:"count"`
	Inner  inner             `yaml:"inner"`
	List   []inner           `yaml:"list"`
	Labels map[string]string `yaml:"labels"`
}

func TestDecodeStrict(t *testing.T) {
	t.Setenv("VIGIL_TEST_URL", "nats://127.0.0.1:4222")
	cases := []struct {
		name, yaml, want string // want "" = no error; else a substring
	}{
		{"ok", "name: a\nurl: ${VIGIL_TEST_URL}\ninner:\n  interval: 5s\nlist:\n  - paths: [a, b]\n", ""},
		{"empty", "", ""},
		{"unknown top", "name: a\nnmae: b\n", `f.yaml:2:1: unknown key "nmae" in top level`},
		{"unknown nested", "inner:\n  intervall: 5s\n", `f.yaml:2:3: unknown key "intervall" in inner`},
		{"unknown in list", "list:\n  - paths: [a]\n  - pathz: [b]\n", `f.yaml:3:5: unknown key "pathz" in list[1]`},
		{"bad int", "count: many\n", `f.yaml:1:8: count: cannot unmarshal`},
		{"bad duration", "inner:\n  interval: soon\n", `f.yaml:2:13: inner.interval:`},
		{"missing env", "url: ${VIGIL_NOT_SET_X}\n", `VIGIL_NOT_SET_X is not set`},
		{"syntax", "name: [a\n", `f.yaml:`},
		{"duplicate", "name: a\nname: b\n", `f.yaml:2:1:`},
		{"list expected", "list: 3\n", `f.yaml:1:7: list: expected a list`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s sample
			_, err := Decode("f.yaml", []byte(c.yaml), &s)
			if c.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestDecodeValuesAndPositions(t *testing.T) {
	t.Setenv("VIGIL_TEST_URL", "http://x")
	var s sample
	doc, err := Decode("f.yaml", []byte("name: a\nurl: ${VIGIL_TEST_URL}/w\ninner:\n  interval: 1m30s\n"), &s)
	if err != nil {
		t.Fatal(err)
	}
	if s.URL != "http://x/w" || s.Inner.Interval != 90*time.Second || s.Name != "a" {
		t.Fatalf("decoded %+v", s)
	}
	if l, c := doc.Pos("inner.interval"); l != 4 || c != 13 {
		t.Fatalf("pos = %d:%d", l, c)
	}
	e := doc.Errorf("inner.interval", "too short")
	if e.Error() != "f.yaml:4:13: too short" {
		t.Fatalf("Errorf = %q", e.Error())
	}
}

func TestAllErrorsReported(t *testing.T) {
	var s sample
	_, err := Decode("f.yaml", []byte("a: 1\nb: 2\ncount: x\n"), &s)
	var es Errors
	if !errors.As(err, &es) || len(es) != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
}
