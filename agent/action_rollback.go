package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-sre/vigil/internal/config"
	"github.com/vigil-sre/vigil/internal/release"
	"github.com/vigil-sre/vigil/internal/wire"
)

// ReleaseConfig is one release registry the agent watches and may roll
// back (config `releases:`): <root>/<name>/versions/<v> with a `current`
// symlink (see internal/release).
type ReleaseConfig struct {
	Name string `yaml:"name"`
	Root string `yaml:"root"`
	// HealthyFor: how long a version must be current and healthy to become
	// last-known-good. Default 10m.
	HealthyFor time.Duration `yaml:"healthy_for"`
	// CheckEvery: how often the agent runs the health check and records
	// it for the current version (so the LKG advances by itself). Default 30s.
	CheckEvery time.Duration `yaml:"check_every"`
	// OnFailure: after a failed restart or verification, "stay" on the
	// rolled-back-to version (default) or "revert" to the one before.
	OnFailure string `yaml:"on_failure"`
	// Restart is the program run after the switch (no shell). Optional.
	Restart ReleaseCommand `yaml:"restart"`
	// Health verifies the service: url (GET, 2xx) or program+args (exit 0).
	Health ReleaseHealth `yaml:"health"`
}

// ReleaseCommand is a program with arguments, run without a shell.
type ReleaseCommand struct {
	Program string   `yaml:"program"`
	Args    []string `yaml:"args"`
	// Timeout: default 60s.
	Timeout time.Duration `yaml:"timeout"`
}

// ReleaseHealth is a release's health check.
type ReleaseHealth struct {
	URL     config.Expand `yaml:"url"`
	Program string        `yaml:"program"`
	Args    []string      `yaml:"args"`
	// Timeout of one attempt: default 5s.
	Timeout time.Duration `yaml:"timeout"`
	// Retries after a failed attempt when verifying a rollback (the
	// periodic check makes one attempt): default 5.
	Retries *int `yaml:"retries"`
	// Interval between attempts: default 2s.
	Interval time.Duration `yaml:"interval"`
}

func (c *ReleaseConfig) withDefaults() {
	if c.HealthyFor == 0 {
		c.HealthyFor = release.DefaultHealthyFor
	}
	if c.CheckEvery == 0 {
		c.CheckEvery = 30 * time.Second
	}
	if c.OnFailure == "" {
		c.OnFailure = release.OnFailureStay
	}
	if c.Restart.Timeout == 0 {
		c.Restart.Timeout = 60 * time.Second
	}
	h := &c.Health
	if h.Timeout == 0 {
		h.Timeout = 5 * time.Second
	}
	if h.Retries == nil {
		n := 5
		h.Retries = &n
	}
	if h.Interval == 0 {
		h.Interval = 2 * time.Second
	}
}

func (c *Config) validateReleases(bad badFunc) {
	seen := map[string]bool{}
	for i, r := range c.Releases {
		p := fmt.Sprintf("releases[%d]", i)
		switch {
		case r.Name == "" || strings.ContainsAny(r.Name, `/\`) || strings.HasPrefix(r.Name, "."):
			bad(p+".name", "%s.name %q: want a name without slashes or a leading dot", p, r.Name)
		case seen[r.Name]:
			bad(p+".name", "%s.name %q is listed twice", p, r.Name)
		}
		seen[r.Name] = true
		if r.Root == "" {
			bad(p+".root", "%s.root must be set", p)
		}
		if r.HealthyFor < 0 || r.CheckEvery < 0 || r.Restart.Timeout < 0 || r.Health.Timeout < 0 || r.Health.Interval < 0 {
			bad(p, "%s: durations must not be negative", p)
		}
		if r.OnFailure != release.OnFailureStay && r.OnFailure != release.OnFailureRevert {
			bad(p+".on_failure", "%s.on_failure %q: want stay or revert", p, r.OnFailure)
		}
		h := r.Health
		if (h.URL == "") == (h.Program == "") {
			bad(p+".health", "%s.health: set exactly one of url and program", p)
		}
		if h.URL != "" {
			if u, err := url.Parse(string(h.URL)); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad(p+".health.url", "%s.health.url %q: want http(s)://host[:port]/path", p, h.URL)
			}
		}
		if h.Retries != nil && *h.Retries < 0 {
			bad(p+".health.retries", "%s.health.retries must not be negative", p)
		}
	}
}

// Releases is the agent's side of the release registries: the "release"
// collector and the "rollback" host action.
//
// Collector: every CheckEvery it runs each release's health check in the
// background (one attempt) and records the outcome for the version that
// was current when the check started (not if it changed meanwhile), so a
// version becomes last-known-good by itself. Every tick it publishes
//
//	release (tag release=<name>): current_version_age_seconds (since the
//	current version was activated), is_lkg (0/1), rollbacks (counter),
//	healthy (0/1, the latest observation; absent before the first)
//
// A release without a current version publishes nothing.
//
// Host action "rollback", params release (optional when one release is
// configured) and version (default: the last-known-good): switches
// current, runs the restart hook, verifies health with retries, records
// the result (internal/release.Registry.Rollback). Result: from, to,
// outcome, reverted, duration_seconds.
type Releases struct {
	log     *slog.Logger
	entries []*releaseEntry
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type releaseEntry struct {
	cfg   ReleaseConfig
	reg   *release.Registry
	check release.HealthCheck

	mu   sync.Mutex
	next time.Time
	busy bool
	err  error // last check's failure to record, reported once by Collect
}

// NewReleases opens the configured registries (cfgs defaulted).
func NewReleases(cfgs []ReleaseConfig, log *slog.Logger) (*Releases, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Releases{log: log}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	for _, c := range cfgs {
		c.withDefaults()
		reg, err := release.Open(c.Root, c.Name)
		if err != nil {
			return nil, err
		}
		reg.HealthyFor = c.HealthyFor
		chk := release.HealthCheck{
			URL:     string(c.Health.URL),
			Command: release.Command{Program: c.Health.Program, Args: c.Health.Args},
			Timeout: c.Health.Timeout, Retries: *c.Health.Retries, Interval: c.Health.Interval,
		}
		r.entries = append(r.entries, &releaseEntry{cfg: c, reg: reg, check: chk})
	}
	return r, nil
}

// Name implements Collector and HostAction: the collector is "release",
// the action "rollback" (see Action).
func (r *Releases) Name() string { return "release" }

// Collect implements Collector.
func (r *Releases) Collect(_ context.Context, now time.Time, emit Emit) error {
	var errs []error
	for _, e := range r.entries {
		if err := r.collectOne(e, now, emit); err != nil {
			errs = append(errs, fmt.Errorf("release %s: %w", e.cfg.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (r *Releases) collectOne(e *releaseEntry, now time.Time, emit Emit) error {
	e.mu.Lock()
	err := e.err
	e.err = nil
	if !e.busy && !now.Before(e.next) && r.ctx.Err() == nil {
		e.next, e.busy = now.Add(e.cfg.CheckEvery), true
		r.wg.Add(1)
		go r.healthJob(e, now)
	}
	e.mu.Unlock()
	st, serr := e.reg.Status()
	if serr != nil {
		return errors.Join(err, serr)
	}
	cv := st.CurrentVersion()
	if cv == nil {
		return err
	}
	fields := []wire.Field{
		wire.F("current_version_age_seconds", max(now.Sub(cv.Activated).Seconds(), 0)),
		wire.I("is_lkg", b2i(cv.LKG)),
		wire.I("rollbacks", int64(st.Rollbacks)),
	}
	if cv.Observed {
		fields = append(fields, wire.I("healthy", b2i(cv.Healthy)))
	}
	emit("release", []wire.Tag{{Key: "release", Value: e.cfg.Name}}, fields)
	return err
}

// healthJob runs one attempt of e's check and records it at now for the
// version current when it started.
func (r *Releases) healthJob(e *releaseEntry, now time.Time) {
	defer r.wg.Done()
	var err error
	if v, cerr := e.reg.Current(); cerr == nil {
		one := e.check
		one.Retries = 0
		ok := one.Check(r.ctx) == nil
		if r.ctx.Err() == nil {
			_, err = e.reg.RecordHealthOf(v, ok, now)
		}
	}
	e.mu.Lock()
	e.busy, e.err = false, err
	e.mu.Unlock()
}

// Close stops running health checks and waits for them.
func (r *Releases) Close() error {
	r.cancel()
	r.wg.Wait()
	return nil
}

// Action is the "rollback" host action over these releases.
func (r *Releases) Action() HostAction { return rollbackAction{r} }

type rollbackAction struct{ r *Releases }

func (rollbackAction) Name() string     { return "rollback" }
func (rollbackAction) Params() []string { return []string{"release", "version"} }

func (a rollbackAction) Run(ctx context.Context, cmd *wire.Command, progress func(float64, string)) (map[string]string, error) {
	e, err := a.r.find(cmd.Params["release"])
	if err != nil {
		return nil, err
	}
	res, err := e.reg.Rollback(ctx, time.Now(), e.hooks(cmd.Params["version"], false, progress))
	out := map[string]string{
		"release": res.Release, "from": res.From, "to": res.To, "outcome": res.Outcome,
		"reverted": strconv.FormatBool(res.Reverted), "duration_seconds": strconv.FormatFloat(res.Total.Seconds(), 'f', 3, 64),
	}
	if err != nil {
		return out, err
	}
	a.r.log.Info("rolled back", "release", res.Release, "from", res.From, "to", res.To, "outcome", res.Outcome, "duration_s", res.Total.Seconds())
	return out, nil
}

// hooks builds the rollback hooks of e.
func (e *releaseEntry) hooks(to string, dry bool, progress func(float64, string)) release.Hooks {
	h := release.Hooks{To: to, DryRun: dry, Check: e.check.Check, OnFailure: e.cfg.OnFailure, Progress: progress}
	if rc := e.cfg.Restart; rc.Program != "" {
		h.Restart = release.Command{Program: rc.Program, Args: rc.Args, Timeout: rc.Timeout}.Run
	}
	return h
}

func (r *Releases) find(name string) (*releaseEntry, error) {
	if name == "" && len(r.entries) == 1 {
		return r.entries[0], nil
	}
	names := make([]string, 0, len(r.entries))
	for _, e := range r.entries {
		if e.cfg.Name == name {
			return e, nil
		}
		names = append(names, e.cfg.Name)
	}
	sort.Strings(names)
	if name == "" {
		return nil, fmt.Errorf("rollback: param release is required (configured: %s)", strings.Join(names, ", "))
	}
	return nil, fmt.Errorf("rollback: unknown release %q (configured: %s)", name, strings.Join(names, ", "))
}

// addReleases adds the release collector and the rollback action when
// releases are configured.
func (a *Agent) addReleases() error {
	if len(a.cfg.Releases) == 0 {
		return nil
	}
	r, err := NewReleases(a.cfg.Releases, a.log.With("component", "releases"))
	if err != nil {
		return err
	}
	if err := a.actions.Add(r.Action()); err != nil {
		r.Close()
		return err
	}
	a.addRunner(r, min(a.cfg.Interval/2, 5*time.Second))
	return nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

var (
	_ Collector  = (*Releases)(nil)
	_ HostAction = rollbackAction{}
)
