package nab

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReaderErrors(t *testing.T) {
	for _, c := range []struct{ in, err string }{
		{"timestamp,value\n2014-04-01 00:00:00,1\nbad line\n", "f.csv:3:"},
		{"timestamp,value\n2014-04-01 00:00:00,x\n", "f.csv:2: value"},
		{"timestamp,value\n2014-13-01 00:00:00,1\n", "f.csv:2: timestamp"},
	} {
		r := NewReader(strings.NewReader(c.in), "f.csv")
		var err error
		for err == nil {
			_, err = r.Next()
		}
		if errors.Is(err, io.EOF) || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: error %v, want one containing %q", c.in, err, c.err)
		}
	}
}

// Run writes every file in NAB's results layout, with the value and stamp as read, and
// LoadResults reads them back.
func TestRunRoundTrip(t *testing.T) {
	data, out := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(data, "cat1", "a.csv"), "timestamp,value\n2014-04-01 00:00:00,1.5\n2014-04-01 00:05:00,-2\n")
	writeFile(t, filepath.Join(data, "cat2", "b.csv"), "timestamp,value\n2014-04-01 00:00:00,3\n")
	writeFile(t, filepath.Join(data, "README.md"), "not data")
	files, err := ListData(data)
	if err != nil || len(files) != 2 || files[0].Key != "cat1/a.csv" || files[1].Key != "cat2/b.csv" {
		t.Fatalf("ListData = %v, %v", files, err)
	}
	stats, err := Run(context.Background(), files, out, "det", 2, func() (ScoreFunc, error) {
		n := 0.0
		return func(_ int64, x float64) float64 { n++; return x * n }, nil // clipped to [0,1]
	})
	if err != nil || stats.Files != 2 || stats.Rows != 3 {
		t.Fatalf("Run = %+v, %v", stats, err)
	}
	got, err := os.ReadFile(filepath.Join(out, "det", "cat1", "det_a.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "timestamp,value,anomaly_score\n2014-04-01 00:00:00,1.5,1\n2014-04-01 00:05:00,-2,0\n"; string(got) != want {
		t.Errorf("results file:\n%s\nwant:\n%s", got, want)
	}
	res, err := LoadResults(filepath.Join(out, "det"))
	if err != nil || len(res) != 2 || res[1].Key != "cat2/b.csv" || res[1].Scores[0] != 1 {
		t.Fatalf("LoadResults = %+v, %v", res, err)
	}
}

func TestRunStopsOnError(t *testing.T) {
	data := t.TempDir()
	writeFile(t, filepath.Join(data, "c", "bad.csv"), "timestamp,value\nnope\n")
	files, _ := ListData(data)
	_, err := Run(context.Background(), files, t.TempDir(), "d", 1, func() (ScoreFunc, error) {
		return func(int64, float64) float64 { return 0 }, nil
	})
	if err == nil || !strings.Contains(err.Error(), "bad.csv:2") {
		t.Errorf("Run error %v, want one naming bad.csv:2", err)
	}
}

func TestLoadLabels(t *testing.T) {
	p := filepath.Join(t.TempDir(), "l.json")
	writeFile(t, p, `{"c/a.csv": [["2014-04-01 00:10:00.000000", "2014-04-01 00:20:00.000000"]], "c/b.csv": []}`)
	ls, err := LoadLabels(p)
	if err != nil || len(ls["c/a.csv"]) != 1 || ls["c/b.csv"] == nil || ls["c/a.csv"][0].End.Sub(ls["c/a.csv"][0].Start).Minutes() != 10 {
		t.Fatalf("LoadLabels = %v, %v", ls, err)
	}
	writeFile(t, p, `{"c/a.csv": [["2014-04-01 00:20:00", "2014-04-01 00:10:00"]]}`)
	if _, err := LoadLabels(p); err == nil {
		t.Error("a window ending before it starts was accepted")
	}
}
