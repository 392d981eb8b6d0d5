package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// logCounts returns count per pattern and lines per file of one tick.
func logCounts(t *testing.T, c Collector) (counts map[string]float64, lines map[string]float64) {
	t.Helper()
	counts, lines = map[string]float64{}, map[string]float64{}
	for _, p := range collect(t, c) {
		if p.m != "logmatch" {
			t.Fatalf("measurement %q", p.m)
		}
		counts[p.tags["file"]+"/"+p.tags["pattern"]] = p.num(t, "count")
		lines[p.tags["file"]] = p.num(t, "lines")
	}
	return counts, lines
}

func TestLogsCollector(t *testing.T) {
	dir := t.TempDir()
	api := filepath.Join(dir, "api.log")
	w := newTailFile(t, api)
	w.write("ERROR before the agent started\n") // not counted: tail starts at the end
	c := newCollector(t, "logs", Options{Files: []LogFile{
		{Name: "api", Path: api, Patterns: []LogPattern{
			{Name: "error", Regex: `\bERROR\b`},
			{Name: "oom", Regex: `out of memory`},
		}},
		{Name: "worker", Path: filepath.Join(dir, "worker.log"), FromStart: true,
			Patterns: []LogPattern{{Name: "panic", Regex: `^panic:`}}},
	}})
	defer c.(interface{ Close() error }).Close()

	counts, lines := logCounts(t, c)
	if counts["api/error"] != 0 || counts["api/oom"] != 0 || counts["worker/panic"] != 0 || lines["worker"] != 0 {
		t.Fatalf("first tick: %v %v", counts, lines)
	}
	w.write("INFO ok\nERROR db down\nERROR CUDA out of memory\n")
	counts, lines = logCounts(t, c)
	if counts["api/error"] != 2 || counts["api/oom"] != 1 || lines["api"] != 3 {
		t.Fatalf("after writes: %v %v", counts, lines)
	}

	// Rotation by rename + create: the old file's last lines and the new
	// file's lines are all counted.
	if err := os.Rename(api, api+".1"); err != nil {
		t.Fatal(err)
	}
	w.write("ERROR late write to the old file\n")
	w.create()
	w.write("ERROR in the new file\nINFO fine\n")
	counts, lines = logCounts(t, c)
	if counts["api/error"] != 4 || lines["api"] != 6 {
		t.Fatalf("after rotation: %v %v", counts, lines)
	}

	// copytruncate.
	if err := os.Truncate(api, 0); err != nil {
		t.Fatal(err)
	}
	w.write("ERROR after truncation\n")
	counts, _ = logCounts(t, c)
	if counts["api/error"] != 5 {
		t.Fatalf("after truncation: %v", counts)
	}

	// The worker log appears later and is read from its start.
	if err := os.WriteFile(filepath.Join(dir, "worker.log"), []byte("panic: boom\ngoroutine 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	counts, lines = logCounts(t, c)
	if counts["worker/panic"] != 1 || lines["worker"] != 2 || counts["api/error"] != 5 {
		t.Fatalf("worker: %v %v", counts, lines)
	}
}

func TestLogsOptionErrors(t *testing.T) {
	cases := []struct {
		name string
		f    []LogFile
		want []string
	}{
		{"bad regex", []LogFile{{Name: "a", Path: "/x", Patterns: []LogPattern{{Name: "e", Regex: "(unclosed"}}}},
			[]string{"files[0].patterns[0].regex: bad regex"}},
		{"missing", []LogFile{{}},
			[]string{"files[0]: name is required", "files[0]: path is required", "files[0]: at least one"}},
		{"duplicates", []LogFile{
			{Name: "a", Path: "/x", Patterns: []LogPattern{{Name: "e", Regex: "e"}, {Name: "e", Regex: "f"}}},
			{Name: "a", Path: "/y", Patterns: []LogPattern{{Name: "e", Regex: "e"}}}},
			[]string{"files[0].patterns[1].name", "files[1].name: name \"a\" used twice"}},
	}
	for _, tc := range cases {
		_, err := NewCollector("logs", Options{Files: tc.f})
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v, want %q", tc.name, err, w)
			}
		}
	}
}

func TestLogsConfigPositions(t *testing.T) {
	y := "collectors:\n  logs:\n    files:\n      - name: api\n        path: /var/log/api.log\n        patterns:\n          - {name: e, regex: '(x'}\n"
	_, err := ParseConfig("agent.yaml", []byte(y))
	if err == nil || !strings.Contains(err.Error(), "agent.yaml:7:") || !strings.Contains(err.Error(), "collectors.logs.files[0].patterns[0].regex: bad regex") {
		t.Fatalf("error %v", err)
	}
}
