package rules

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/config"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.err from the current output (check the diff by hand)")

// Every testdata/bad/X.yaml has its expected errors, one
// "file:line:col: message" per line, in testdata/bad/X.err.
func TestBadFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "bad", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			errFile := strings.TrimSuffix(f, ".yaml") + ".err"
			set, err := LoadFiles(f)
			if *update && err != nil {
				if werr := os.WriteFile(errFile, []byte(err.Error()+"\n"), 0o644); werr != nil {
					t.Fatal(werr)
				}
			}
			want, rerr := os.ReadFile(errFile)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if set != nil || err == nil {
				t.Fatalf("LoadFiles(%s) = %v, %v; want an error", f, set, err)
			}
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want config.Errors", err)
			}
			if got := err.Error(); got != strings.TrimSpace(string(want)) {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// A directory reports every problem of every file, not just the first.
func TestLoadDirectoryReportsEveryFile(t *testing.T) {
	_, err := LoadFiles(filepath.Join("testdata", "bad"))
	if err == nil {
		t.Fatal("no error")
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "bad", "*.err"))
	var want []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		want = append(want, strings.TrimSpace(string(b)))
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestParseEveryField(t *testing.T) {
	set, err := LoadFiles(filepath.Join("testdata", "good"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range set.Groups() {
		names = append(names, g.Name)
	}
	if want := []string{"capacity", "liveness", "empty"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("groups %v, want %v (full.yaml then second.yml, ignored.txt skipped)", names, want)
	}
	g := set.Groups()[0]
	if g.Scope != "host" || g.Interval != 30*time.Second || g.MinConfidence != 0.9 || g.Line != 3 || g.Column != 5 {
		t.Errorf("group = %+v", g)
	}
	r := g.Rules[0]
	want := &Rule{
		Name: "disk_full_predicted", Group: "capacity", Severity: "critical", Mode: "dry_run",
		Expr: `eta("disk.used_percent{path=/data}", 100) < duration("30m")`,
		For:  2 * time.Minute, KeepFiringFor: time.Minute, Cooldown: 30 * time.Minute,
		NoData: NoDataState, Flap: FlapPolicy{Firings: DefaultFlapFirings, Window: DefaultFlapWindow},
		Labels: map[string]string{"team": "storage", "tier": "1"},
		Annotations: map[string]string{"summary": "data disk will be full soon",
			"runbook": "https://runbooks.example/disk"},
		Action: &Action{Name: "backup_data", Kind: "exec", Program: "tar",
			Args: []string{"-czf", "/backups/data.tgz", "/data"}, Timeout: 5 * time.Minute},
		File: filepath.Join("testdata", "good", "full.yaml"), Line: 8, Column: 9,
		Selectors: []*Selector{{Text: "disk.used_percent{path=/data}", Measurement: "disk",
			Field: "used_percent", Tags: []Tag{{"path", "/data"}}}},
	}
	r.group, r.fingerprint, r.templates = nil, "", nil
	if !reflect.DeepEqual(r, want) {
		t.Errorf("rule:\n%+v\nwant:\n%+v", r, want)
	}

	d := g.Rules[1]
	if d.Severity != SeverityWarning || d.Mode != ModeAuto || d.For != 0 || d.KeepFiringFor != 0 ||
		d.Cooldown != DefaultCooldown || d.Labels != nil || d.Annotations != nil {
		t.Errorf("defaults: %+v", d)
	}
	if d.Action == nil || d.Action.Name != "defaults" || d.Action.Timeout != DefaultActionTimeout || d.Action.Args != nil {
		t.Errorf("action defaults: %+v", d.Action)
	}
	l := set.Groups()[1]
	if l.Interval != DefaultInterval || l.MinConfidence != DefaultMinConfidence || l.Scope != ScopeHost {
		t.Errorf("group defaults: %+v", l)
	}
	if got := len(l.Rules[1].Selectors); got != 1 {
		t.Errorf("cpu_anomaly reads one distinct selector, got %d", got)
	}
	if got := len(set.Rules()); got != 4 {
		t.Errorf("Rules() has %d rules, want 4", got)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, src := range []string{"", "# nothing\n", "groups:\n", "groups: []\n", "---\n"} {
		set, err := Parse("e.yaml", []byte(src))
		if err != nil || len(set.Rules()) != 0 {
			t.Errorf("Parse(%q) = %v, %v; want an empty set", src, set, err)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	b := filepath.Join(dir, "b.yaml")
	rule := "groups:\n  - name: same\n    rules:\n      - name: r\n        expr: value(\"a.b\") > 1\n"
	for _, f := range []string{a, b} {
		if err := os.WriteFile(f, []byte(rule), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "missing.yaml")
	_, err := LoadFiles(dir, missing)
	if err == nil {
		t.Fatal("no error")
	}
	got := err.Error()
	for _, want := range []string{
		b + `:2:11: duplicate group name "same" (first defined at ` + a + ":2:5)",
		missing + ": stat " + missing,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("error %q lacks %q", got, want)
		}
	}
}

// The fingerprint changes with the definition, not with the position.
func TestFingerprint(t *testing.T) {
	base := "groups:\n  - name: g\n    rules:\n      - name: r\n        expr: value(\"a.b\") > 1\n"
	fp := func(src string) string {
		t.Helper()
		set, err := Parse("f.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return set.Rules()[0].fingerprint
	}
	same := "# moved down\n\n" + base
	if fp(base) != fp(same) {
		t.Error("moving a rule changed its fingerprint")
	}
	for _, changed := range []string{
		strings.Replace(base, "> 1", "> 2", 1),
		base + "        for: 1m\n",
		base + "        labels: {a: b}\n",
		strings.Replace(base, "  - name: g\n", "  - name: g\n    min_confidence: 0.5\n", 1),
	} {
		if fp(base) == fp(changed) {
			t.Errorf("fingerprint unchanged by:\n%s", changed)
		}
	}
}
