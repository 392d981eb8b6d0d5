package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/nab"
)

// TestBenchNABRunAndScore runs `vigil bench nab` on a small hand-made corpus (a flat noisy
// series with one spike, and one without anomaly) and scores it with `vigil bench nab score`.
func TestBenchNABRunAndScore(t *testing.T) {
	data, out := t.TempDir(), t.TempDir()
	t0 := time.Date(2014, 4, 1, 0, 0, 0, 0, time.UTC)
	write := func(key string, spike int) {
		var b strings.Builder
		b.WriteString("timestamp,value\n")
		for i := range 1000 {
			v := 10 + float64((i*7919)%13)/13
			if i == spike {
				v = 100
			}
			fmt.Fprintf(&b, "%s,%g\n", t0.Add(time.Duration(i)*5*time.Minute).Format("2006-01-02 15:04:05"), v)
		}
		p := filepath.Join(data, key)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("catA/spiky.csv", 600)
	write("catB/quiet.csv", -1)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"bench", "nab", "--data", data, "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("bench nab: exit %d: %s", code, stderr.String())
	}
	res := filepath.Join(out, "vigil", "catA", "vigil_spiky.csv")
	body, err := os.ReadFile(res)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(body)), "\n"); len(lines) != 1001 || lines[0] != "timestamp,value,anomaly_score" {
		t.Fatalf("%s: %d lines, header %q", res, len(lines), lines[0])
	}
	// Window [590, 620] around the spike.
	labels := filepath.Join(t.TempDir(), "labels.json")
	ws := fmt.Sprintf(`{"catA/spiky.csv": [["%s.000000", "%s.000000"]], "catB/quiet.csv": []}`,
		t0.Add(590*5*time.Minute).Format("2006-01-02 15:04:05"), t0.Add(620*5*time.Minute).Format("2006-01-02 15:04:05"))
	if err := os.WriteFile(labels, []byte(ws), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	if code := run([]string{"bench", "nab", "score", "--results", filepath.Join(out, "vigil"), "--labels", labels, "--json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("bench nab score: exit %d: %s", code, stderr.String())
	}
	var got struct {
		Profiles []struct {
			Profile string  `json:"profile"`
			Score   float64 `json:"score"`
			TP, FP  int
		} `json:"profiles"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if len(got.Profiles) != 3 || got.Profiles[0].Profile != "standard" {
		t.Fatalf("profiles: %+v", got.Profiles)
	}
	for _, p := range got.Profiles {
		// The spike is found (at row 600 of window [590,620]); positive but below 100 because the
		// window starts 10 rows earlier.
		if p.TP != 1 || p.Score <= 50 || p.Score >= 100 {
			t.Errorf("%s: %+v, want the spike found, score in (50,100)", p.Profile, p)
		}
	}
	stdout.Reset()
	if code := run([]string{"bench", "nab", "score", "--results", filepath.Join(out, "vigil"), "--labels", labels}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "reward_low_FN_rate") {
		t.Errorf("text output (exit %d): %s", code, stdout.String())
	}
	// --detail: the spike file's one window is detected in its second half (the spike is at row
	// 600 of [590,620]), and the text output names each file.
	stdout.Reset()
	if code := run([]string{"bench", "nab", "score", "--results", filepath.Join(out, "vigil"), "--labels", labels, "--json", "--detail", "standard"}, &stdout, &stderr); code != 0 {
		t.Fatalf("--detail: exit %d: %s", code, stderr.String())
	}
	var det struct {
		Detail struct {
			Profile string           `json:"profile"`
			Files   []nab.FileDetail `json:"files"`
		} `json:"detail"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &det); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	found := false
	for _, f := range det.Detail.Files {
		if len(f.Windows) == 1 {
			w := f.Windows[0]
			found = w.Row >= 600 && w.Row <= 605 && w.Position > 0.3 && w.Position < 0.6
		}
	}
	if det.Detail.Profile != "standard" || len(det.Detail.Files) != 2 || !found {
		t.Errorf("detail: %+v, want 2 files and the window detected at row 600-605", det.Detail)
	}
	stdout.Reset()
	if code := run([]string{"bench", "nab", "score", "--results", filepath.Join(out, "vigil"), "--labels", labels, "--detail", "standard"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "by file") {
		t.Errorf("--detail text output (exit %d): %s", code, stdout.String())
	}
}

func TestBenchNABErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "nab"},
		{"bench", "nab", "--data", t.TempDir(), "--out", t.TempDir(), "--detector", "nope"},
		{"bench", "nab", "score", "--results", t.TempDir()},
		{"bench", "nab", "score", "--results", t.TempDir(), "--labels", "x.json", "--detail", "nope"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code == 0 || stderr.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q; want an error", args, code, stderr.String())
		}
	}
}
