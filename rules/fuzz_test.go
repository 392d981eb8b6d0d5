package rules

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-sre/vigil/internal/config"
)

// FuzzParse: nothing panics; a file either loads into rules an engine can
// evaluate, or every problem is positioned inside the file.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/bad/*.yaml", "testdata/good/*.y*ml", "examples/*.yaml", "library/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := Parse("f.yaml", data)
		if err != nil {
			var errs config.Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %T %v", err, err)
			}
			lines := 1
			for i, r := range string(data) {
				if isBreak(r) && !(r == '\r' && i+1 < len(data) && data[i+1] == '\n') {
					lines++
				}
			}
			for _, e := range errs {
				if e.File != "f.yaml" || e.Line < 1 || e.Line > lines || e.Col < 1 {
					t.Fatalf("badly positioned error %q (file has %d lines)", e, lines)
				}
			}
			return
		}
		for _, r := range set.Rules() {
			if r.Name == "" || r.Expr == "" || r.group == nil {
				t.Fatalf("incomplete rule %+v", r)
			}
		}
		e := NewEngine(set)
		src := newFake("h1")
		e.Eval(t0, src, nil, nil)
		for _, s := range e.States() {
			if s.State != NoData && s.State != Error && s.State != Inactive && s.State != Firing && s.State != Pending {
				t.Fatalf("state %v", s.State)
			}
		}
	})
}
