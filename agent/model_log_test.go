package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func appendLines(t *testing.T, path string, from, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := from; i < from+n; i++ {
		fmt.Fprintf(f, `{"model":"ranker","version":"v2","id":"q%d","features":{"len":%d},"prediction":%d,"latency_ms":3}`+"\n", i, i%17, i%3)
	}
}

// A real prediction log being appended, rotated (rename + create) and truncated is followed:
// every good line is counted once, a bad line is counted and skipped.
func TestModelLogFollowedAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "predictions.ndjson")
	appendLines(t, path, 0, 5) // before the start: skipped (from_start false)
	m := startModelsT(t, modelsConfig(func(c *ModelsConfig) {
		c.Listen = "off"
		c.PollInterval = 20 * time.Millisecond
		c.Logs = []ModelLogConfig{{Path: path}}
		c.Reference.First = 10
	}))
	observations := func() float64 {
		return find(t, collectAt(t, m, time.Now()), "model", "model", "ranker").num(t, "observations")
	}
	waitLines := func(n uint64) {
		t.Helper()
		waitFor(t, fmt.Sprintf("%d log lines", n), func() bool { return m.Stats().LogLines >= n })
	}
	appendLines(t, path, 5, 20)
	waitLines(20)
	// A bad line between good ones.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintln(f, `{"model":"ranker","prediction":1,"confidence":2}`)
	f.Close()
	appendLines(t, path, 25, 5)
	waitLines(26)
	// Rotation: the old file gets a last line after the rename, then a new file appears.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendLines(t, path+".1", 30, 3)
	appendLines(t, path, 33, 10)
	waitLines(39)
	// Truncation (copytruncate) of the new file, then more lines.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "truncation noticed", func() bool { return m.tailers[0].t.Stats().Truncations >= 1 })
	appendLines(t, path, 43, 7)
	waitLines(46)
	st := m.Stats()
	if st.LogLines != 46 || st.LogRejected != 1 || st.Accepted != 45 {
		t.Errorf("stats %+v: want 46 lines, 1 rejected, 45 accepted", st)
	}
	if got := observations(); got != 45 {
		t.Errorf("observations = %v, want 45", got)
	}
	in := find(t, collectAt(t, m, time.Now()), "model_ingest", "", "")
	if in.num(t, "log_rotations") != 1 || in.num(t, "log_truncations") != 1 || in.num(t, "log_rejected") != 1 {
		t.Errorf("model_ingest %v", in.fields)
	}
}
