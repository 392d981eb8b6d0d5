package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/internal/route"
	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

// failoverManager probes the members of the configured services and fails
// a service over when its active member is down (mode auto), or asks for
// approval first (mode manual, through the dispatcher's approvals). A
// failover is: ready the standby (hot: nothing; warm: hooks.ready; cold:
// hooks.start; then wait for its health check) → fence the old primary
// (route table: epoch+1, nobody active) → switch the route to the standby
// (CAS) → run hooks.fence on the old primary → verify the new primary's
// health → record the RTO (fault detected → route switched) as an action
// event. A fenced route left by a controller that stopped mid-failover is
// completed by the next one that reads it, exactly once (CAS).
type failoverManager struct {
	svcs    []ServiceConfig
	js      jetstream.JetStream
	pub     *publisher
	disp    *dispatcher
	lease   *lease // only the leader fails over (nil: always)
	log     *slog.Logger
	name    string
	actions ActionsConfig

	kvOnce  sync.Once
	kvReady chan struct{}
	kv      jetstream.KeyValue

	mu     sync.Mutex
	locks  map[string]*sync.Mutex
	health map[string]*memberHealth // service/member -> last probe
	asked  map[string]uint64        // service -> epoch a manual failover was asked for

	failovers, failed, resumed atomic.Uint64
}

// ErrFailoverBusy: a failover of the service is already running here.
var ErrFailoverBusy = errors.New("a failover of this service is already running")

// failoverStageHook, when set (tests), is called after each stage of a
// failover: "readied", "fenced", "switched".
var failoverStageHook func(service, stage string)

func newFailoverManager(cfg *Config, js jetstream.JetStream, pub *publisher, log *slog.Logger) *failoverManager {
	return &failoverManager{
		svcs: cfg.Services, js: js, pub: pub, log: log, name: cfg.Name, actions: cfg.Actions,
		kvReady: make(chan struct{}),
		locks:   map[string]*sync.Mutex{}, health: map[string]*memberHealth{}, asked: map[string]uint64{},
	}
}

// FailoverResult is what a failover did.
type FailoverResult struct {
	Service    string    `json:"service"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	Standby    string    `json:"standby"`
	Epoch      uint64    `json:"epoch"`
	Detected   time.Time `json:"detected"`
	Switched   time.Time `json:"switched"`
	RTOSeconds float64   `json:"rto_seconds"`
	Verified   bool      `json:"verified"`
	Resumed    bool      `json:"resumed,omitempty"`
	Note       string    `json:"note,omitempty"`
	// RouteHookError: hooks.route failed after the switch (the switch
	// stands).
	RouteHookError string `json:"route_hook_error,omitempty"`
}

// Run creates the route bucket and the services' routes, then probes
// members until ctx ends.
func (m *failoverManager) Run(ctx context.Context) error {
	for {
		kv, err := route.Ensure(ctx, m.js)
		if err == nil {
			m.kv = kv
			m.kvOnce.Do(func() { close(m.kvReady) })
			break
		}
		m.log.Warn("route table unavailable, retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	var wg sync.WaitGroup
	for i := range m.svcs {
		s := &m.svcs[i]
		p := s.primary()
		if _, err := route.Init(ctx, m.kv, s.Name, route.Target{Member: p.Name, Endpoint: p.Endpoint}, m.name, time.Now()); err != nil {
			m.log.Error("route init", "service", s.Name, "err", err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); m.monitor(ctx, s) }()
	}
	wg.Wait()
	return nil
}

func (m *failoverManager) waitKV(ctx context.Context) (jetstream.KeyValue, error) {
	select {
	case <-m.kvReady:
		return m.kv, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (m *failoverManager) service(name string) (*ServiceConfig, error) {
	for i := range m.svcs {
		if m.svcs[i].Name == name {
			return &m.svcs[i], nil
		}
	}
	return nil, fmt.Errorf("unknown service %q", name)
}

func (m *failoverManager) lock(service string) *sync.Mutex {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.locks[service]
	if l == nil {
		l = &sync.Mutex{}
		m.locks[service] = l
	}
	return l
}

// monitor probes every member of s each health interval; the active
// member down for health.failures probes in a row is a detected fault.
func (m *failoverManager) monitor(ctx context.Context, s *ServiceConfig) {
	tick := time.NewTicker(s.Health.Interval)
	defer tick.Stop()
	fails, primaryUp := 0, 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		e, err := route.Get(ctx, m.kv, s.Name)
		if err != nil {
			m.log.Warn("route read", "service", s.Name, "err", err)
			continue
		}
		up := m.probeAll(ctx, s) // followers probe too: their health view is warm
		if _, ok := m.lease.Leader(); !ok {
			fails, primaryUp = 0, 0
			continue
		}
		if e.State == route.StateFenced { // a failover stopped half-way: complete it
			m.resume(ctx, s)
			continue
		}
		if up[e.Active] {
			fails = 0
		} else {
			fails++
		}
		if p := s.primary(); up[p.Name] && p.Name != e.Active {
			primaryUp++
		} else {
			primaryUp = 0
		}
		switch {
		case fails >= s.Health.Failures:
			fails = 0
			m.onDown(ctx, s, e, time.Now())
		case s.Failback && primaryUp >= s.Health.Failures:
			primaryUp = 0
			if _, err := m.Failover(ctx, s.Name, s.primary().Name, m.name, "failback", time.Now()); err != nil {
				m.log.Warn("failback", "service", s.Name, "err", err)
			}
		}
	}
}

func (m *failoverManager) resume(ctx context.Context, s *ServiceConfig) {
	if _, err := m.Failover(ctx, s.Name, "", m.name, "resume", time.Time{}); err != nil && !errors.Is(err, ErrFailoverBusy) && ctx.Err() == nil {
		m.log.Warn("resuming failover", "service", s.Name, "err", err)
	}
}

// onDown fails s over (auto) or asks an operator once per epoch (manual).
func (m *failoverManager) onDown(ctx context.Context, s *ServiceConfig, e route.Entry, detected time.Time) {
	m.log.Warn("active member down", "service", s.Name, "member", e.Active, "epoch", e.Epoch)
	if s.Mode == ServiceModeManual {
		m.mu.Lock()
		already := m.asked[s.Name] == e.Epoch
		m.asked[s.Name] = e.Epoch
		m.mu.Unlock()
		if epoch, ok := m.lease.Leader(); ok && !already && m.disp != nil {
			in := m.manualIntent(s, e, detected)
			in.Epoch = epoch
			m.disp.Submit(in)
		}
		return
	}
	if _, err := m.Failover(ctx, s.Name, "", m.name, "health check: "+e.Active+" down", detected); err != nil && ctx.Err() == nil {
		m.log.Error("failover", "service", s.Name, "err", err)
	}
}

// manualIntent is the intent of a manual failover: the dispatcher holds it
// for `vigil approve KEY`, then runs the failover action kind.
func (m *failoverManager) manualIntent(s *ServiceConfig, e route.Entry, detected time.Time) rules.Intent {
	r := &rules.Rule{
		Name: "failover_" + s.Name, Group: "failover", Severity: "critical", Mode: rules.ModeManual,
		Action: &rules.Action{Name: "failover_" + s.Name, Kind: "failover", Params: map[string]string{"service": s.Name}},
	}
	host := ""
	if mc := s.member(e.Active); mc != nil {
		host = mc.Host
	}
	return rules.Intent{
		Key: fmt.Sprintf("failover/%s/epoch-%d", s.Name, e.Epoch), Rule: r, Subject: host, Mode: rules.ModeManual,
		At: detected, Labels: map[string]string{"service": s.Name, "member": e.Active},
	}
}

// Failover fails service over to member to ("" picks a standby), or
// completes a fenced failover. detected is when the fault was seen (zero:
// now). It returns ErrFailoverBusy while another failover of the service
// runs in this controller.
func (m *failoverManager) Failover(ctx context.Context, service, to, by, reason string, detected time.Time) (*FailoverResult, error) {
	s, err := m.service(service)
	if err != nil {
		return nil, err
	}
	ctx, err = m.leaderContext(ctx)
	if err != nil {
		return nil, err
	}
	l := m.lock(service)
	if !l.TryLock() {
		return nil, ErrFailoverBusy
	}
	defer l.Unlock()
	return m.failover(ctx, s, to, by, reason, detected)
}

// leaderContext returns ctx carrying this controller's leader epoch, so
// that the route writes made under it are fenced (route.WithLeaderEpoch),
// or ErrNotLeader.
func (m *failoverManager) leaderContext(ctx context.Context) (context.Context, error) {
	epoch, ok := m.lease.Leader()
	if !ok {
		h := m.lease.status().Holder
		if h == "" {
			h = "unknown"
		}
		return ctx, fmt.Errorf("%w (leader: %s)", ErrNotLeader, h)
	}
	if m.lease == nil || m.lease.off {
		return ctx, nil
	}
	return route.WithLeaderEpoch(ctx, epoch), nil
}

// failover is Failover with the service's lock held.
func (m *failoverManager) failover(ctx context.Context, s *ServiceConfig, to, by, reason string, detected time.Time) (*FailoverResult, error) {
	service := s.Name
	kv, err := m.waitKV(ctx)
	if err != nil {
		return nil, err
	}
	if detected.IsZero() {
		detected = time.Now()
	}
	e, err := route.Get(ctx, kv, service)
	if err != nil {
		return nil, err
	}
	if e.State == route.StateFenced {
		m.resumed.Add(1)
		return m.complete(ctx, s, e, by, true)
	}
	target, err := m.choose(s, e, to)
	if err != nil {
		return nil, err
	}
	if err := m.ready(ctx, s, target, e.Epoch+1); err != nil {
		m.record(s, &FailoverResult{Service: s.Name, From: e.Active, To: target.Name, Standby: target.Standby, Epoch: e.Epoch, Detected: detected}, err)
		return nil, fmt.Errorf("readying %s: %w", target.Name, err)
	}
	stage(service, "readied")
	f, err := route.Fence(ctx, kv, service, e.Active, route.Target{Member: target.Name, Endpoint: target.Endpoint}, e.Epoch, detected, by, reason, time.Now())
	if err != nil {
		return nil, fmt.Errorf("fencing %s: %w", e.Active, err)
	}
	stage(service, "fenced")
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return m.complete(ctx, s, f, by, false)
}

func stage(service, name string) {
	if h := failoverStageHook; h != nil {
		h(service, name)
	}
}

// complete switches the fenced route f to its target, runs the fence hook
// on the old primary, verifies the new one and records the RTO.
func (m *failoverManager) complete(ctx context.Context, s *ServiceConfig, f route.Entry, by string, resumed bool) (*FailoverResult, error) {
	target := s.member(f.Target)
	if target == nil {
		return nil, fmt.Errorf("route of %s names target %q, which is not a member", s.Name, f.Target)
	}
	res := &FailoverResult{Service: s.Name, From: f.Fenced, To: target.Name, Standby: target.Standby, Epoch: f.Epoch, Detected: f.Detected, Resumed: resumed}
	if resumed && !m.probe(ctx, s, target) { // readied before the fence, but maybe not by this process
		if err := m.ready(ctx, s, target, f.Epoch); err != nil {
			m.record(s, res, err)
			return nil, fmt.Errorf("readying %s: %w", target.Name, err)
		}
	}
	sw, err := route.Switch(ctx, m.kv, s.Name, target.Name, f.Epoch, by, time.Now())
	if errors.Is(err, route.ErrSwitched) {
		res.Note = "completed by another controller"
		return res, nil
	}
	if err != nil {
		return nil, fmt.Errorf("switching %s to %s: %w", s.Name, target.Name, err)
	}
	res.Switched = sw.Updated
	res.RTOSeconds = sw.Updated.Sub(f.Detected).Seconds()
	stage(s.Name, "switched")
	m.log.Info("failover: route switched", "service", s.Name, "from", f.Fenced, "to", target.Name, "epoch", f.Epoch, "rto", sw.Updated.Sub(f.Detected))
	res.RouteHookError = m.routeHook(ctx, s, sw, f.Fenced)
	var errs []error
	if old := s.member(f.Fenced); old != nil && s.Hooks.Fence != nil {
		if err := m.runHook(ctx, s, s.Hooks.Fence, old, f.Epoch); err != nil {
			errs = append(errs, fmt.Errorf("fence hook on %s: %w", old.Name, err))
		}
	}
	res.Verified = m.verify(ctx, s, target)
	if !res.Verified {
		errs = append(errs, fmt.Errorf("new primary %s failed its health check after the switch", target.Name))
	}
	err = errors.Join(errs...)
	m.record(s, res, err)
	return res, err
}

// choose picks the member to promote: to when named, else a healthy hot
// standby, then a warm one, then a cold one, in config order.
func (m *failoverManager) choose(s *ServiceConfig, e route.Entry, to string) (*MemberConfig, error) {
	if to != "" {
		t := s.member(to)
		switch {
		case t == nil:
			return nil, fmt.Errorf("service %s has no member %q", s.Name, to)
		case t.Name == e.Active:
			return nil, fmt.Errorf("%s is already the active member of %s", to, s.Name)
		}
		return t, nil
	}
	for _, kind := range []string{StandbyHot, StandbyWarm, StandbyCold} {
		for i := range s.Members {
			c := &s.Members[i]
			if c.Name == e.Active || c.Standby != kind && !(kind == StandbyHot && c.Role == RolePrimary) {
				continue
			}
			if kind == StandbyHot && !m.healthy(s, c) {
				continue
			}
			return c, nil
		}
	}
	return nil, fmt.Errorf("service %s: no standby to promote (no healthy hot standby, no warm or cold one)", s.Name)
}

// record publishes the failover as an action event: duration_seconds and
// v_rto_seconds are the RTO.
func (m *failoverManager) record(s *ServiceConfig, r *FailoverResult, err error) {
	host := ""
	if t := s.member(r.To); t != nil {
		host = t.Host
	}
	ev := &wire.Event{
		Kind: wire.KindAction, Time: time.Now(), Host: host, State: "finished",
		Action: "failover", ActionKind: "failover", Outcome: OutcomeSuccess,
		Key:    fmt.Sprintf("failover/%s/epoch-%d", s.Name, r.Epoch),
		Labels: map[string]string{"service": s.Name, "from": r.From, "to": r.To, "standby": r.Standby},
		Values: map[string]float64{"epoch": float64(r.Epoch)},
	}
	if !r.Switched.IsZero() {
		ev.DurationSeconds = r.RTOSeconds
		ev.Values["rto_seconds"] = r.RTOSeconds
		m.failovers.Add(1)
	}
	if r.Verified {
		ev.Values["verified"] = 1
	}
	if r.Resumed {
		ev.Labels["resumed"] = "true"
	}
	if r.RouteHookError != "" {
		ev.Labels["route_hook_error"] = r.RouteHookError
	}
	if err != nil {
		ev.Outcome, ev.Error = OutcomeFailure, err.Error()
		m.failed.Add(1)
	}
	if m.pub != nil {
		m.pub.Publish(ev)
	}
}
