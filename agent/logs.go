package agent

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// logsCollector tails log files and counts the lines that match named
// regular expressions, for error rates (measurement logmatch; tags file =
// the log's name, pattern = the pattern's name).
//
// Fields, both counters since the agent started: count, lines of the file
// that matched the pattern; lines, all lines of the file (the same in each
// of the file's points), so count/lines is the matching share and the
// derivative of count the rate. Every tick emits every (file, pattern),
// zero counts included, so a quiet log is visible as such.
//
// Each file is followed by a Tailer (tail.go): rotation by rename or
// removal and re-creation, and truncation (copytruncate), are handled; a
// missing file counts nothing until it appears. By default reading starts
// at the end of the file when the agent starts (from_start: true reads it
// all); lines longer than max_line (default 64 KiB) are cut. A file that
// cannot be read is the tick's error; the other files are still read.
//
// Cost: two stat calls per file per tick plus reading what was appended,
// and one regular-expression match per pattern per line (Go's RE2: linear
// in the line's length). Memory: a 32 KiB buffer and up to max_line bytes
// per file. Opt-in: runs only when listed, with at least one file.
//
//	logs:
//	  files:
//	    - name: api
//	      path: /var/log/api/error.log
//	      patterns:
//	        - {name: error, regex: '\b(ERROR|FATAL)\b'}
//	        - {name: oom, regex: 'CUDA out of memory'}
type logsCollector struct {
	files  []*logTail
	tags   []wire.Tag
	fields []wire.Field
}

// LogFile is one tailed file of the logs collector.
type LogFile struct {
	// Name of the log in the file tag (required, unique).
	Name string `yaml:"name"`
	// Path of the file (required).
	Path string `yaml:"path"`
	// Patterns counted (at least one).
	Patterns []LogPattern `yaml:"patterns"`
	// FromStart reads the file from its beginning at the agent's start
	// instead of from its end. Default false.
	FromStart bool `yaml:"from_start"`
	// MaxLine: longer lines are cut. Default 64 KiB.
	MaxLine int `yaml:"max_line"`
}

// LogPattern is a named regular expression (RE2 syntax) counted in a log.
type LogPattern struct {
	Name  string `yaml:"name"`
	Regex string `yaml:"regex"`
}

type logTail struct {
	name     string
	tail     *Tailer
	patterns []logPatternState
	lines    uint64
	match    func(line []byte)
}

type logPatternState struct {
	name  string
	re    *regexp.Regexp
	count uint64
}

func init() {
	RegisterOptIn("logs", newLogsCollector, "files")
}

func newLogsCollector(o Options) (Collector, error) {
	var errs []error
	c := &logsCollector{tags: make([]wire.Tag, 2), fields: make([]wire.Field, 2)}
	names := map[string]bool{}
	for i, f := range o.Files {
		p := fmt.Sprintf("files[%d]", i)
		switch {
		case f.Name == "":
			errs = append(errs, optErr(p, "name is required"))
		case names[f.Name]:
			errs = append(errs, optErr(p+".name", "name %q used twice", f.Name))
		}
		names[f.Name] = true
		if f.Path == "" {
			errs = append(errs, optErr(p, "path is required"))
		}
		if f.MaxLine < 0 {
			errs = append(errs, optErr(p+".max_line", "max_line must not be negative"))
		}
		if len(f.Patterns) == 0 {
			errs = append(errs, optErr(p, "at least one pattern is required"))
		}
		lt := &logTail{name: f.Name}
		pnames := map[string]bool{}
		for j, pt := range f.Patterns {
			pp := fmt.Sprintf("%s.patterns[%d]", p, j)
			if pt.Name == "" || pnames[pt.Name] {
				errs = append(errs, optErr(pp+".name", "pattern name %q: missing or used twice", pt.Name))
			}
			pnames[pt.Name] = true
			re, err := regexp.Compile(pt.Regex)
			if err != nil {
				errs = append(errs, optErr(pp+".regex", "bad regex: %v", err))
				continue
			}
			lt.patterns = append(lt.patterns, logPatternState{name: pt.Name, re: re})
		}
		lt.match = lt.countLine
		if len(errs) == 0 {
			lt.tail = NewTailer(f.Path, f.FromStart, f.MaxLine)
		}
		c.files = append(c.files, lt)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// countLine counts one line.
func (l *logTail) countLine(line []byte) {
	l.lines++
	for i := range l.patterns {
		if l.patterns[i].re.Match(line) {
			l.patterns[i].count++
		}
	}
}

// Name implements Collector.
func (c *logsCollector) Name() string { return "logs" }

// Collect implements Collector.
func (c *logsCollector) Collect(ctx context.Context, _ time.Time, emit Emit) error {
	var firstErr error
	for _, f := range c.files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := f.tail.Poll(f.match); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("log %s: %w", f.name, err)
		}
		c.tags[0] = wire.Tag{Key: "file", Value: f.name}
		for _, p := range f.patterns {
			c.tags[1] = wire.Tag{Key: "pattern", Value: p.name}
			c.fields[0] = wire.I("count", i64(p.count))
			c.fields[1] = wire.I("lines", i64(f.lines))
			emit("logmatch", c.tags, c.fields)
		}
	}
	return firstErr
}

// Close closes the tailed files.
func (c *logsCollector) Close() error {
	for _, f := range c.files {
		f.tail.Close()
	}
	return nil
}

var _ Collector = (*logsCollector)(nil)
