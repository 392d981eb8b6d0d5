package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// procstatCollector watches processes (measurement procstat, tag name =
// the watch's name). A watch selects processes by exactly one of:
// process (the executable's name: /proc/<pid>/comm, or the base name of
// argv[0] for names longer than comm's 15 characters), pattern (a regular
// expression matched against the command line, arguments joined by spaces)
// or pid_file (a file holding one pid).
//
// Fields, summed over the watch's processes: up (1 when at least one runs),
// count, cpu_percent (CPU time used since the previous tick over the wall
// time between the ticks, 100 = one core; from the processes' own utime +
// stime in /proc/<pid>/stat, compared with this collector's previous
// reading, so a process seen for the first time adds nothing yet; absent
// on a watch's first tick), rss_bytes, threads, open_files (entries of
// /proc/<pid>/fd; absent when one cannot be read, e.g. another user's
// process without privileges), and restarts, a counter of processes that
// started after the watch had seen one of its processes (a new pid, or a
// pid reused by a new process; a service's first start is not a restart):
// a crash-looping service shows a rising restarts.
//
// Cost: the process table (every /proc/<pid>/stat, and the command lines
// when a pattern watch exists) is scanned every scan_every (default 10s)
// and at once when a watched process is gone; the other ticks read only
// the watched processes' stat files and count their fds (one stat call on
// Linux 6.2+). Follows HOST_PROC. Memory: the watched pids. Opt-in.
type procstatCollector struct {
	watches    []*procWatch
	scanEvery  time.Duration
	lastScan   time.Time
	pageSize   uint64
	prevTime   time.Time
	buf, cmd   []byte
	tags       []wire.Tag
	fields     []wire.Field
	statFields [24][]byte
}

// ProcWatch selects the processes of one procstat watch.
type ProcWatch struct {
	// Name in the name tag (required, unique).
	Name string `yaml:"name"`
	// Process: the executable's name (e.g. nginx).
	Process string `yaml:"process"`
	// Pattern: regular expression (RE2) matched against the command line.
	Pattern string `yaml:"pattern"`
	// PidFile: file holding the pid (e.g. /run/nginx.pid).
	PidFile string `yaml:"pid_file"`
}

// procWatch is a checked ProcWatch and its state.
type procWatch struct {
	ProcWatch
	re       *regexp.Regexp
	pids     []procID          // matched by the last scan (or pid file)
	prev     map[procID]uint64 // cpu ticks at the previous tick
	cur      map[procID]procStat
	seen     bool // had its first tick
	hadProc  bool // has seen a process of its own
	restarts uint64
}

// procID identifies a process across pid reuse.
type procID struct {
	pid   int
	start uint64 // start time, clock ticks after boot
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on every
// Linux architecture Vigil runs on).
const clockTicks = 100

func init() {
	RegisterOptIn("procstat", newProcstatCollector, "watches", "scan_every")
}

func newProcstatCollector(o Options) (Collector, error) {
	c := &procstatCollector{
		scanEvery: orDefault(o.ScanEvery, 10*time.Second),
		pageSize:  uint64(os.Getpagesize()),
		tags:      make([]wire.Tag, 1),
		fields:    make([]wire.Field, 0, 7),
	}
	var errs []error
	if o.ScanEvery < 0 {
		errs = append(errs, optErr("scan_every", "scan_every must not be negative"))
	}
	names := map[string]bool{}
	for i, w := range o.Watches {
		p := fmt.Sprintf("watches[%d]", i)
		switch {
		case w.Name == "":
			errs = append(errs, optErr(p, "name is required"))
		case names[w.Name]:
			errs = append(errs, optErr(p+".name", "name %q used twice", w.Name))
		}
		names[w.Name] = true
		set := 0
		for _, s := range []string{w.Process, w.Pattern, w.PidFile} {
			if s != "" {
				set++
			}
		}
		if set != 1 {
			errs = append(errs, optErr(p, "set exactly one of process, pattern and pid_file"))
		}
		pw := &procWatch{ProcWatch: w, prev: map[procID]uint64{}, cur: map[procID]procStat{}}
		if w.Pattern != "" {
			re, err := regexp.Compile(w.Pattern)
			if err != nil {
				errs = append(errs, optErr(p+".pattern", "bad regex: %v", err))
			}
			pw.re = re
		}
		c.watches = append(c.watches, pw)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// Name implements Collector.
func (c *procstatCollector) Name() string { return "procstat" }

// Collect implements Collector.
func (c *procstatCollector) Collect(ctx context.Context, now time.Time, emit Emit) error {
	if len(c.watches) == 0 {
		return nil
	}
	var firstErr error
	scanned := false
	if c.lastScan.IsZero() || now.Sub(c.lastScan) >= c.scanEvery {
		if err := c.scan(ctx); err != nil {
			return err
		}
		c.lastScan, scanned = now, true
	}
	if err := c.readPidFiles(); err != nil {
		firstErr = err
	}
	if gone := c.sample(); gone && !scanned {
		if err := c.scan(ctx); err != nil {
			return err
		}
		c.lastScan = now
		c.sample()
	}
	dt := now.Sub(c.prevTime).Seconds()
	first := c.prevTime.IsZero()
	c.prevTime = now
	for _, w := range c.watches {
		c.emitWatch(w, emit, dt, first)
	}
	return firstErr
}

// sample reads every watched process' stat file into w.cur; gone reports
// whether a process matched by a scan has ended.
func (c *procstatCollector) sample() (gone bool) {
	for _, w := range c.watches {
		clear(w.cur)
		live := w.pids[:0]
		for _, id := range w.pids {
			st, ok := c.readStat(id.pid)
			if !ok || st.start != id.start {
				gone = gone || w.PidFile == ""
				continue
			}
			st.comm = nil
			w.cur[id] = st
			live = append(live, id)
		}
		w.pids = live
	}
	return gone
}

// emitWatch writes one watch's point and rolls its state.
func (c *procstatCollector) emitWatch(w *procWatch, emit Emit, dt float64, first bool) {
	var cpuTicks, rss, threads, files uint64
	filesOK := true
	for id, st := range w.cur {
		if prev, ok := w.prev[id]; ok && st.cpu >= prev {
			cpuTicks += st.cpu - prev
		} else if w.seen && w.hadProc {
			w.restarts++ // not there at the previous tick: a new process
		}
		rss += st.rss * c.pageSize
		threads += st.threads
		if n, ok := countFDs(id.pid); ok {
			files += n
		} else {
			filesOK = false
		}
	}
	clear(w.prev)
	for id, st := range w.cur {
		w.prev[id] = st.cpu
	}
	c.tags[0] = wire.Tag{Key: "name", Value: w.Name}
	c.fields = append(c.fields[:0],
		wire.I("up", b01(len(w.cur) > 0)),
		wire.I("count", int64(len(w.cur))),
		wire.I("rss_bytes", i64(rss)),
		wire.I("threads", i64(threads)),
		wire.I("restarts", i64(w.restarts)),
	)
	if !first && w.seen && dt > 0 {
		c.fields = append(c.fields, wire.F("cpu_percent", 100*float64(cpuTicks)/clockTicks/dt))
	}
	if filesOK {
		c.fields = append(c.fields, wire.I("open_files", i64(files)))
	}
	w.seen = true
	w.hadProc = w.hadProc || len(w.cur) > 0
	emit("procstat", c.tags, c.fields)
}

// procStat is what procstat uses of /proc/<pid>/stat.
type procStat struct {
	comm                     []byte // valid until the next read
	cpu, threads, start, rss uint64
}

// readStat reads /proc/<pid>/stat.
func (c *procstatCollector) readStat(pid int) (procStat, bool) {
	b, err := readInto(hostProc(strconv.Itoa(pid), "stat"), &c.buf)
	if err != nil {
		return procStat{}, false
	}
	return parseProcStat(b, &c.statFields)
}

// parseProcStat parses a /proc/<pid>/stat line: "pid (comm) state ppid
// ... utime(14) stime(15) ... num_threads(20) ... starttime(22) vsize
// rss(24) ...". comm may hold spaces and parentheses, so it ends at the
// last ')'.
func parseProcStat(b []byte, f *[24][]byte) (procStat, bool) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procStat{}, false
	}
	st := procStat{comm: b[open+1 : end]}
	if n := fieldsN(b[end+1:], f[:]); n < 22 {
		return procStat{}, false
	}
	// f[0] is field 3 (state): field k is f[k-3].
	ut, ok1 := parseUint(f[11])
	stime, ok2 := parseUint(f[12])
	th, ok3 := parseUint(f[17])
	start, ok4 := parseUint(f[19])
	rss, ok5 := parseUint(f[21])
	if !(ok1 && ok2 && ok3 && ok4 && ok5) {
		return procStat{}, false
	}
	st.cpu, st.threads, st.start, st.rss = ut+stime, th, start, rss
	return st, true
}

// countFDs counts a process' open files: Linux 6.2+ gives the count as the
// size of /proc/<pid>/fd, older kernels need the directory read.
func countFDs(pid int) (uint64, bool) {
	dir := hostProc(strconv.Itoa(pid), "fd")
	st, err := os.Stat(dir)
	if err != nil {
		return 0, false
	}
	if st.Size() > 0 {
		return uint64(st.Size()), true
	}
	f, err := os.Open(dir)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	return uint64(len(names)), err == nil
}

// readPidFiles sets the pids of the pid-file watches.
func (c *procstatCollector) readPidFiles() error {
	var firstErr error
	for _, w := range c.watches {
		if w.PidFile == "" {
			continue
		}
		w.pids = w.pids[:0]
		b, err := os.ReadFile(w.PidFile)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) && firstErr == nil {
				firstErr = fmt.Errorf("watch %s: %w", w.Name, err)
			}
			continue // no pid file: not running
		}
		pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
		if err != nil || pid <= 0 {
			if firstErr == nil {
				firstErr = fmt.Errorf("watch %s: pid file %s: %q is not a pid", w.Name, w.PidFile, bytes.TrimSpace(b))
			}
			continue
		}
		if st, ok := c.readStat(pid); ok {
			w.pids = append(w.pids, procID{pid: pid, start: st.start})
		}
	}
	return firstErr
}

// scan reads the process table and sets the pids of the process and
// pattern watches.
func (c *procstatCollector) scan(ctx context.Context) error {
	d, err := os.Open(hostProc())
	if err != nil {
		return fmt.Errorf("process table: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("process table: %w", err)
	}
	for _, w := range c.watches {
		if w.PidFile == "" {
			w.pids = w.pids[:0]
		}
	}
	for _, name := range names {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		st, ok := c.readStat(pid)
		if !ok {
			continue
		}
		c.match(pid, st)
	}
	return nil
}

// match adds pid to the watches it matches.
func (c *procstatCollector) match(pid int, st procStat) {
	var cmd []byte
	cmdRead := false
	cmdline := func() []byte {
		if !cmdRead {
			cmdRead = true
			b, err := readInto(hostProc(strconv.Itoa(pid), "cmdline"), &c.cmd)
			if err == nil {
				cmd = bytes.TrimRight(b, "\x00")
				for i := range cmd {
					if cmd[i] == 0 {
						cmd[i] = ' '
					}
				}
			}
		}
		return cmd
	}
	id := procID{pid: pid, start: st.start}
	comm := st.comm
	for _, w := range c.watches {
		var ok bool
		switch {
		case w.Process != "":
			ok = procNameMatch(w.Process, comm, cmdline)
		case w.re != nil:
			ok = w.re.Match(cmdline())
		}
		if ok {
			w.pids = append(w.pids, id)
		}
	}
}

// procNameMatch reports whether a process with comm (and command line)
// has the executable name name.
func procNameMatch(name string, comm []byte, cmdline func() []byte) bool {
	const commLen = 15
	if len(name) <= commLen {
		return string(comm) == name
	}
	if string(comm) != name[:commLen] {
		return false
	}
	argv0, _, _ := bytes.Cut(cmdline(), []byte(" "))
	return filepath.Base(string(argv0)) == name
}

var _ Collector = (*procstatCollector)(nil)
