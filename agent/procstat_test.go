package agent

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// A test binary started with VIGIL_TEST_SLEEPER set is a watched process:
// it sleeps (or, with "burn", spins on a CPU), and ends by itself after a
// while in case the test that started it died.
func init() {
	switch os.Getenv("VIGIL_TEST_SLEEPER") {
	case "":
		return
	case "burn":
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); {
		}
	default:
		time.Sleep(60 * time.Second)
	}
	os.Exit(0)
}

// sleeper is a child process of the test.
type sleeper struct{ cmd *exec.Cmd }

// startSleeper runs the test binary through exe (a symlink names its comm)
// with marker on its command line.
func startSleeper(t *testing.T, exe, mode, marker string) *sleeper {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^$", marker)
	cmd.Env = append(os.Environ(), "VIGIL_TEST_SLEEPER="+mode)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &sleeper{cmd: cmd}
	t.Cleanup(s.stop)
	return s
}

func (s *sleeper) pid() int { return s.cmd.Process.Pid }

func (s *sleeper) stop() {
	if s.cmd.ProcessState == nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}

// sleeperExe is a symlink to the test binary named name.
func sleeperExe(t *testing.T, name string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.Symlink(self, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// procPoints ticks c at now and returns the points by watch name.
func procPoints(t *testing.T, c Collector, now time.Time) map[string]point {
	t.Helper()
	out := map[string]point{}
	for _, p := range tickAt(t, c, now) {
		if p.m != "procstat" {
			t.Fatalf("measurement %q", p.m)
		}
		out[p.tags["name"]] = p
	}
	return out
}

func wantProc(t *testing.T, what string, p point, up, count, restarts float64) {
	t.Helper()
	if p.num(t, "up") != up || p.num(t, "count") != count || p.num(t, "restarts") != restarts {
		t.Fatalf("%s: up %v count %v restarts %v, want %v %v %v", what,
			p.num(t, "up"), p.num(t, "count"), p.num(t, "restarts"), up, count, restarts)
	}
}

func TestProcstatPatternAndName(t *testing.T) {
	nonce := strconv.FormatUint(rand.Uint64(), 36)
	marker := "vigil-sleeper-" + nonce
	short := "vs" + nonce[:6]                      // comm as it is
	long := "vigil-sleeper-long-name-" + nonce[:6] // longer than comm's 15 characters
	c := newCollector(t, "procstat", Options{Watches: []ProcWatch{
		{Name: "by_pattern", Pattern: `vigil-sleeper-` + nonce + `\b`},
		{Name: "by_name", Process: short},
		{Name: "by_long_name", Process: long},
		{Name: "nothing", Process: "no-such-process-" + nonce[:4]},
	}})
	a := startSleeper(t, sleeperExe(t, short), "sleep", marker)
	b := startSleeper(t, sleeperExe(t, long), "burn", marker)
	time.Sleep(100 * time.Millisecond) // let them exec

	t0 := time.Now()
	pts := procPoints(t, c, t0)
	wantProc(t, "pattern", pts["by_pattern"], 1, 2, 0)
	wantProc(t, "name", pts["by_name"], 1, 1, 0)
	wantProc(t, "long name", pts["by_long_name"], 1, 1, 0)
	wantProc(t, "nothing", pts["nothing"], 0, 0, 0)
	p := pts["by_pattern"]
	if _, has := p.fields["cpu_percent"]; has {
		t.Error("cpu_percent on the first tick")
	}
	inRange(t, "rss_bytes", p.num(t, "rss_bytes"), 1<<20, 1<<30)
	inRange(t, "threads", p.num(t, "threads"), 2, 1000)
	inRange(t, "open_files", p.num(t, "open_files"), 2, 1000)

	time.Sleep(500 * time.Millisecond)
	pts = procPoints(t, c, time.Now())
	// The burning child uses about one core, the sleeping one nothing.
	inRange(t, "burning cpu_percent", pts["by_long_name"].num(t, "cpu_percent"), 20, 130)
	inRange(t, "sleeping cpu_percent", pts["by_name"].num(t, "cpu_percent"), 0, 5)
	inRange(t, "pattern cpu_percent", pts["by_pattern"].num(t, "cpu_percent"), 20, 135)

	// A restart: one ends, another starts. Noticed at the next tick even
	// though the next scan is not due (the ended pid triggers one).
	a.stop()
	startSleeper(t, sleeperExe(t, short+"x"), "sleep", marker)
	time.Sleep(100 * time.Millisecond)
	pts = procPoints(t, c, time.Now())
	wantProc(t, "pattern after restart", pts["by_pattern"], 1, 2, 1)
	wantProc(t, "name after stop", pts["by_name"], 0, 0, 0)

	b.stop()
	pts = procPoints(t, c, time.Now())
	wantProc(t, "long name after stop", pts["by_long_name"], 0, 0, 0)
	wantProc(t, "pattern after stop", pts["by_pattern"], 1, 1, 1)
}

func TestProcstatPidFile(t *testing.T) {
	exe := sleeperExe(t, "vigil-pidfile")
	pidFile := filepath.Join(t.TempDir(), "app.pid")
	c := newCollector(t, "procstat", Options{Watches: []ProcWatch{{Name: "app", PidFile: pidFile}}})
	writePid := func(pid int) {
		if err := os.WriteFile(pidFile, []byte(fmt.Sprintf("%d\n", pid)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantProc(t, "no pid file", procPoints(t, c, time.Now())["app"], 0, 0, 0)
	s := startSleeper(t, exe, "sleep", "pidfile")
	writePid(s.pid())
	wantProc(t, "running", procPoints(t, c, time.Now())["app"], 1, 1, 0)
	s.stop()
	wantProc(t, "stale pid file", procPoints(t, c, time.Now())["app"], 0, 0, 0)
	s = startSleeper(t, exe, "sleep", "pidfile")
	writePid(s.pid())
	wantProc(t, "restarted", procPoints(t, c, time.Now())["app"], 1, 1, 1)

	writePid(0)
	if err := c.Collect(t.Context(), time.Now(), func(string, []wire.Tag, []wire.Field) {}); err == nil {
		t.Fatal("a pid file without a pid is not an error")
	}
}

func TestProcStatParse(t *testing.T) {
	line := []byte("4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 500 0 0 0 150 50 0 0 20 0 7 0 123456 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n")
	var f [24][]byte
	st, ok := parseProcStat(line, &f)
	if !ok || string(st.comm) != "my (odd) proc" || st.cpu != 200 || st.threads != 7 || st.start != 123456 || st.rss != 2560 {
		t.Fatalf("parsed %+v %v (comm %q)", st, ok, st.comm)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 a 5 0 0 20 0 1 0 5 1 1"} {
		if _, ok := parseProcStat([]byte(bad), &f); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzProcStat(f *testing.F) {
	f.Add([]byte("1 (init) S 0 1 1 0 -1 4194560 1 0 0 0 10 20 0 0 20 0 1 0 3 100 200 1 1 1\n"))
	f.Add([]byte("2 ()) ) R"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fl [24][]byte
		st, ok := parseProcStat(b, &fl)
		if ok && len(st.comm) > len(b) {
			t.Fatal("comm longer than the input")
		}
	})
}
