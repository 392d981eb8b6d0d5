package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/vigil-sre/vigil/internal/config"
	"github.com/vigil-sre/vigil/internal/run"
	"github.com/vigil-sre/vigil/internal/wire"
)

// probesCollector runs health probes, each at its own interval and with
// its own timeout, in the background, and emits every finished probe's
// result once, at the next tick (tag name = the probe's name):
//
//	probe_http  up (0/1: answered in time with an expected status and, when
//	            body_regex is set, a matching body), status_code, latency_ms
//	            (request sent to the whole body read), body_match (0/1, with
//	            body_regex), tls_days_left (https: days until the server
//	            certificate expires, fractional, negative once expired)
//	probe_tcp   up (0/1: connected within timeout), latency_ms (connect time)
//	probe_cmd   up (0/1: exit status 0 within timeout), exit_code (-1 when
//	            killed at the timeout or ended by a signal), duration_ms
//
// HTTP probes open a new connection each time (no keep-alive), so latency
// includes connecting and the TLS handshake, and read at most 1 MiB of the
// body. Command probes run program with args directly (no shell), output
// discarded, in their own process group, which is killed at the timeout.
// A probe that failed is data (up=0), not a collector error; a command that
// cannot be started is both.
//
// Defaults: interval 30s, timeout 5s; http expect_status 200–399, method
// GET. A probe still running when it is due again is not started twice.
// The first run of each probe is at the first tick. Cost: nothing per tick
// beyond emitting; one goroutine per running probe. Opt-in.
type probesCollector struct {
	probes []*probe

	mu     sync.Mutex // guards the probes' busy, result and err
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	tags   []wire.Tag
}

// probe is one configured probe and its last result.
type probe struct {
	measurement, name string
	interval, timeout time.Duration
	run               func(ctx context.Context) ([]wire.Field, error)
	next              time.Time
	busy              bool
	result            []wire.Field // finished, not yet emitted
	err               error
}

// TCPProbe connects to address.
type TCPProbe struct {
	Name string `yaml:"name"`
	// Address is host:port. ${ENV} is expanded.
	Address  config.Expand `yaml:"address"`
	Interval time.Duration `yaml:"interval"`
	Timeout  time.Duration `yaml:"timeout"`
}

// CommandProbe runs a program; exit status 0 is up.
type CommandProbe struct {
	Name     string        `yaml:"name"`
	Program  string        `yaml:"program"`
	Args     []string      `yaml:"args"`
	Interval time.Duration `yaml:"interval"`
	Timeout  time.Duration `yaml:"timeout"`
}

// Probe defaults.
const (
	DefaultProbeInterval = 30 * time.Second
	DefaultProbeTimeout  = 5 * time.Second
)

func init() {
	RegisterOptIn("probes", newProbesCollector, "http", "tcp", "command")
}

func newProbesCollector(o Options) (Collector, error) {
	c := &probesCollector{tags: make([]wire.Tag, 1)}
	var errs []error
	names := map[string]bool{}
	add := func(path, measurement, name string, interval, timeout time.Duration, run func(context.Context) ([]wire.Field, error)) {
		key := measurement + "/" + name
		switch {
		case name == "":
			errs = append(errs, optErr(path, "name is required"))
		case names[key]:
			errs = append(errs, optErr(path+".name", "name %q used twice", name))
		}
		names[key] = true
		if interval < 0 || timeout < 0 {
			errs = append(errs, optErr(path, "interval and timeout must not be negative"))
		}
		c.probes = append(c.probes, &probe{
			measurement: measurement, name: name, run: run,
			interval: orDefault(interval, DefaultProbeInterval), timeout: orDefault(timeout, DefaultProbeTimeout),
		})
	}
	for i, h := range o.HTTP {
		path := fmt.Sprintf("http[%d]", i)
		run, err := newHTTPProbe(path, h)
		errs = append(errs, err)
		add(path, "probe_http", h.Name, h.Interval, h.Timeout, run)
	}
	for i, t := range o.TCP {
		path := fmt.Sprintf("tcp[%d]", i)
		if _, port, err := net.SplitHostPort(string(t.Address)); err != nil || port == "" {
			errs = append(errs, optErr(path+".address", "address %q: want host:port", t.Address))
		}
		add(path, "probe_tcp", t.Name, t.Interval, t.Timeout, tcpProbe(string(t.Address)))
	}
	for i, cp := range o.Command {
		path := fmt.Sprintf("command[%d]", i)
		if cp.Program == "" {
			errs = append(errs, optErr(path, "program is required"))
		}
		add(path, "probe_cmd", cp.Name, cp.Interval, cp.Timeout, commandProbe(cp.Program, cp.Args))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Name implements Collector.
func (c *probesCollector) Name() string { return "probes" }

// Collect implements Collector: it emits the results that came in since
// the last tick and starts the probes that are due.
func (c *probesCollector) Collect(_ context.Context, now time.Time, emit Emit) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		c.ctx, c.cancel = context.WithCancel(context.Background())
	}
	var errs []error
	for _, p := range c.probes {
		if p.result != nil {
			c.tags[0] = wire.Tag{Key: "name", Value: p.name}
			emit(p.measurement, c.tags, p.result)
			p.result = nil
		}
		if p.err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", p.measurement, p.name, p.err))
			p.err = nil
		}
		if p.busy || now.Before(p.next) || c.ctx.Err() != nil {
			continue
		}
		p.next = now.Add(p.interval)
		p.busy = true
		c.wg.Add(1)
		go c.runProbe(p)
	}
	return errors.Join(errs...)
}

// runProbe runs p once, in its own goroutine, and hands the result back.
func (c *probesCollector) runProbe(p *probe) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.ctx, p.timeout)
	defer cancel()
	fields, err := p.run(ctx)
	c.mu.Lock()
	p.busy = false
	p.result, p.err = fields, err
	c.mu.Unlock()
}

// Close stops the running probes and waits for them.
func (c *probesCollector) Close() error {
	c.mu.Lock()
	if c.cancel != nil {
		c.cancel()
	}
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// b01 is 1 for true.
func b01(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func tcpProbe(addr string) func(context.Context) ([]wire.Field, error) {
	return func(ctx context.Context) ([]wire.Field, error) {
		var d net.Dialer
		start := time.Now()
		conn, err := d.DialContext(ctx, "tcp", addr)
		took := time.Since(start)
		if err != nil {
			return []wire.Field{wire.I("up", 0), wire.F("latency_ms", ms(took))}, nil
		}
		conn.Close()
		return []wire.Field{wire.I("up", 1), wire.F("latency_ms", ms(took))}, nil
	}
}

func commandProbe(program string, args []string) func(context.Context) ([]wire.Field, error) {
	return func(ctx context.Context) ([]wire.Field, error) {
		res := run.Run(ctx, run.Spec{Argv: append([]string{program}, args...), InheritEnv: true, MaxOutput: -1})
		if !res.Started {
			return []wire.Field{wire.I("up", 0), wire.I("exit_code", -1), wire.F("duration_ms", 0)}, res.Err
		}
		code := res.ExitCode // -1 when ended by a signal (the timeout's too)
		return []wire.Field{wire.I("up", b01(code == 0)), wire.I("exit_code", int64(code)), wire.F("duration_ms", ms(res.Duration))}, nil
	}
}

var _ Collector = (*probesCollector)(nil)
