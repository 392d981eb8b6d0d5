package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"syscall"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// psiCollector reports pressure stall information (measurement pressure,
// tag resource=cpu|memory|io), from /proc/pressure/<resource> (Linux 4.20+,
// following HOST_PROC): the share of wall time in which some (or, for
// "full", all) non-idle tasks were stalled waiting for the resource.
//
// Fields: some_avg10, some_avg60, some_avg300, full_avg10, full_avg60,
// full_avg300 (percent, the kernel's running averages over 10 s, 60 s and
// 300 s) and some_total, full_total (counters: total stall time in
// microseconds; their derivative is the exact stall share between two
// ticks). Memory and io pressure rise before out-of-memory kills and I/O
// saturation become failures. cpu's full line is all zeros at the system
// level (present since Linux 5.13); it is reported as read.
//
// A kernel without PSI (no /proc/pressure, or booted with psi=0) makes the
// collector unavailable: logged once, then it emits nothing and reports no
// errors. Cost: three small reads (pread on files kept open) per tick, no
// allocation.
type psiCollector struct {
	log         func()
	files       [3]procFile
	unavailable string
	tags        []wire.Tag
	fields      []wire.Field
}

var psiResources = [3]string{"cpu", "memory", "io"}

func init() {
	Register("psi", func(o Options) (Collector, error) {
		c := &psiCollector{tags: make([]wire.Tag, 1), fields: make([]wire.Field, 0, 8)}
		for i, r := range psiResources {
			c.files[i].path = hostProc("pressure", r)
		}
		log := o.logger()
		c.log = sync.OnceFunc(func() {
			log.Info("pressure stall information unavailable: psi collector idle", "reason", c.unavailable)
		})
		return c, nil
	})
}

// Name implements Collector.
func (c *psiCollector) Name() string { return "psi" }

// Unavailable implements Availability.
func (c *psiCollector) Unavailable() string { return c.unavailable }

// Collect implements Collector.
func (c *psiCollector) Collect(_ context.Context, _ time.Time, emit Emit) error {
	if c.unavailable != "" {
		return nil
	}
	for i := range c.files {
		path := c.files[i].path
		b, err := c.files[i].read()
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.EOPNOTSUPP) {
			c.unavailable = fmt.Sprintf("%s: %v", path, err)
			c.log()
			return nil
		}
		if err != nil {
			return fmt.Errorf("pressure: %w", err)
		}
		p, ok := parsePSI(b)
		if !ok {
			return fmt.Errorf("pressure: %s: unexpected content %q", path, b)
		}
		c.tags[0] = wire.Tag{Key: "resource", Value: psiResources[i]}
		c.fields = append(c.fields[:0],
			wire.F("some_avg10", p.some[0]), wire.F("some_avg60", p.some[1]), wire.F("some_avg300", p.some[2]),
			wire.I("some_total", int64(p.some[3])),
		)
		if p.hasFull {
			c.fields = append(c.fields,
				wire.F("full_avg10", p.full[0]), wire.F("full_avg60", p.full[1]), wire.F("full_avg300", p.full[2]),
				wire.I("full_total", int64(p.full[3])),
			)
		}
		emit("pressure", c.tags, c.fields)
	}
	return nil
}

// Close closes the pressure files.
func (c *psiCollector) Close() error {
	for i := range c.files {
		c.files[i].close()
	}
	return nil
}

// psiValues is one /proc/pressure file: avg10, avg60, avg300, total.
type psiValues struct {
	some, full [4]float64
	hasFull    bool
}

// parsePSI parses
//
//	some avg10=0.12 avg60=0.05 avg300=0.01 total=123456
//	full avg10=0.00 avg60=0.00 avg300=0.00 total=0
//
// (the full line is missing on old kernels for cpu). The some line is
// required.
func parsePSI(b []byte) (psiValues, bool) {
	var p psiValues
	hasSome := false
	var f [5][]byte
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if fieldsN(line, f[:]) != 5 {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			return p, false
		}
		var dst *[4]float64
		switch string(f[0]) {
		case "some":
			dst, hasSome = &p.some, true
		case "full":
			dst, p.hasFull = &p.full, true
		default:
			return p, false
		}
		for i, key := range [4]string{"avg10=", "avg60=", "avg300=", "total="} {
			v, ok := bytes.CutPrefix(f[i+1], []byte(key))
			if !ok {
				return p, false
			}
			x, ok := parseFloat(v)
			if !ok || x < 0 {
				return p, false
			}
			dst[i] = x
		}
	}
	return p, hasSome
}

var (
	_ Collector    = (*psiCollector)(nil)
	_ Availability = (*psiCollector)(nil)
)
