package ruletest

import (
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The shipped library passes its own unit tests, and covers every failure
// kind it is meant to.
func TestLibrary(t *testing.T) {
	files, err := Expand(filepath.Join("..", "library"))
	if err != nil || len(files) < 9 {
		t.Fatalf("library test files %v, %v", files, err)
	}
	tests := 0
	for _, f := range files {
		res, err := RunFile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		tests += res.Tests
		for _, msg := range res.Failures {
			t.Error(msg)
		}
	}
	if tests < 13 {
		t.Errorf("%d tests", tests)
	}
}

func TestParseValues(t *testing.T) {
	for in, want := range map[string][]float64{
		"50+1x3":       {50, 51, 52, 53},
		"1x2":          {1, 1, 1},
		"10-2.5x2 _ 7": {10, 7.5, 5, math.NaN(), 7},
		"_x2 -1e3":     {math.NaN(), math.NaN(), -1000},
		"":             nil,
	} {
		got, err := parseValues(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if !reflect.DeepEqual(fmtNaN(got), fmtNaN(want)) {
			t.Errorf("%q = %v, want %v", in, got, want)
		}
	}
	for _, bad := range []string{"abc", "1+x3", "1x", "NaN", "1x99999999"} {
		if _, err := parseValues(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func fmtNaN(xs []float64) []string {
	var out []string
	for _, x := range xs {
		if math.IsNaN(x) {
			out = append(out, "_")
		} else {
			out = append(out, strconv.FormatFloat(x, 'g', -1, 64))
		}
	}
	return out
}

var update = flag.Bool("update", false, "rewrite testdata/*.out")

// A test file whose expectations are wrong reports each failed check with
// expected and got, at the check's line.
func TestFailuresShowExpectedAndGot(t *testing.T) {
	res, err := RunFile(filepath.Join("testdata", "wrong_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(res.Failures, "\n")
	if *update {
		os.WriteFile(filepath.Join("testdata", "wrong_test.out"), []byte(got+"\n"), 0o644)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "wrong_test.out"))
	if err != nil {
		t.Fatal(err)
	}
	if got != strings.TrimSpace(string(want)) {
		t.Errorf("failures:\n%s\nwant:\n%s", got, want)
	}
}

// A test file with problems is refused with every problem positioned.
func TestBadTestFile(t *testing.T) {
	_, err := RunFile(filepath.Join("testdata", "bad_test.yaml"))
	if err == nil {
		t.Fatal("no error")
	}
	want, _ := os.ReadFile(filepath.Join("testdata", "bad_test.out"))
	if *update {
		os.WriteFile(filepath.Join("testdata", "bad_test.out"), []byte(err.Error()+"\n"), 0o644)
	}
	if err.Error() != strings.TrimSpace(string(want)) {
		t.Errorf("error:\n%s\nwant:\n%s", err, want)
	}
}

// eta_within reads the whole forecaster: a leak under periodic jobs is
// predicted hours before the mean line (eta) predicts it
// (testdata/within_test.yaml).
func TestETAWithinSeesThePeaks(t *testing.T) {
	res, err := RunFile(filepath.Join("testdata", "within_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Tests != 1 {
		t.Errorf("%d tests, want 1", res.Tests)
	}
	for _, msg := range res.Failures {
		t.Error(msg)
	}
}
