package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// The shipped library passes `vigil rules test` and `vigil rules check`.
func TestRulesTestLibrary(t *testing.T) {
	lib := filepath.Join("..", "..", "rules", "library")
	var out, errb bytes.Buffer
	if code := run([]string{"rules", "test", lib}, &out, &errb); code != 0 || !strings.HasSuffix(out.String(), " passed, 0 failed\n") {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run([]string{"rules", "check", lib}, &out, &errb); code != 0 {
		t.Fatalf("check: exit %d\n%s", code, errb.String())
	}
}

// A failing test exits 1 and shows expected and got; a broken test file
// exits 1 with its problems positioned; no file is a usage error.
func TestRulesTestFailures(t *testing.T) {
	td := filepath.Join("..", "..", "rules", "ruletest", "testdata")
	var out, errb bytes.Buffer
	code := run([]string{"rules", "test", filepath.Join(td, "wrong_test.yaml")}, &out, &errb)
	if code != 1 || strings.Count(errb.String(), "FAIL ") != 3 || !strings.Contains(errb.String(), "expected:") ||
		!strings.Contains(errb.String(), "got:") || !strings.Contains(errb.String(), "wrong_test.yaml:11:9:") ||
		!strings.HasSuffix(errb.String(), "\nFAIL: 0 passed, 1 failed\n") {
		t.Errorf("exit %d\n%s", code, errb.String())
	}
	errb.Reset()
	code = run([]string{"rules", "test", filepath.Join(td, "bad_test.yaml")}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "bad_test.yaml:5:15: invalid duration") {
		t.Errorf("exit %d\n%s", code, errb.String())
	}
	if code := run([]string{"rules", "test"}, &out, &errb); code != 2 {
		t.Errorf("no files: exit %d", code)
	}
}
