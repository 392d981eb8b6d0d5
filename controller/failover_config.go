package controller

import (
	"fmt"
	"net/url"
	"time"

	"github.com/vigil-sre/vigil/internal/config"
	"github.com/vigil-sre/vigil/internal/route"
)

// ServiceConfig is a service the controller can fail over (config
// `services:`): its members, how their health is probed, and how a
// failover is decided.
type ServiceConfig struct {
	// Name of the service: the route table key, what traffic switches
	// follow. Letters, digits, '_' and '-'.
	Name string `yaml:"name"`
	// Members: exactly one with role primary (active when the route is
	// first created), the others standbys.
	Members []MemberConfig `yaml:"members"`
	Health  HealthConfig   `yaml:"health"`
	// Mode: auto (fail over as soon as the active member is found down)
	// or manual (the failover waits for `vigil approve KEY`). Default auto.
	Mode string `yaml:"mode"`
	// Failback: when the primary is healthy again while a standby is
	// active, fail back to it. Default false (an operator decides).
	Failback bool `yaml:"failback"`
	// Hooks: programs the controller runs to ready, start and fence
	// members (until host commands to agents replace them).
	Hooks HooksConfig `yaml:"hooks"`
	// Start, with via: agent, readies warm and starts cold standbys through
	// their host's agent instead of hooks.ready / hooks.start (see
	// AgentStartConfig).
	Start *AgentStartConfig `yaml:"start"`
	// ReadyTimeout: how long a warm or cold standby may take to answer its
	// health check after it was readied or started. Default 60s.
	ReadyTimeout time.Duration `yaml:"ready_timeout"`
}

// MemberConfig is one member of a service.
type MemberConfig struct {
	Name string `yaml:"name"`
	// Host: the host (agent) the member runs on.
	Host string `yaml:"host"`
	// Endpoint: base URL traffic is sent to, e.g. http://10.0.0.2:8080.
	Endpoint string `yaml:"endpoint"`
	// Role: primary or standby. Default standby.
	Role string `yaml:"role"`
	// Standby: hot (running, takes traffic at once), warm (running, must
	// be readied: hooks.ready) or cold (must be started: hooks.start).
	// Default hot.
	Standby string `yaml:"standby"`
}

// HealthConfig is the health probe of a service's members: HTTP GET of
// endpoint+path, healthy when it answers 2xx within timeout.
type HealthConfig struct {
	// Path probed. Default /healthz.
	Path string `yaml:"path"`
	// Interval between probes. Default 1s.
	Interval time.Duration `yaml:"interval"`
	// Timeout of one probe. Default interval/2.
	Timeout time.Duration `yaml:"timeout"`
	// Failures: consecutive failed probes of the active member that make
	// it down (the fault is detected at the last one). Default 3.
	Failures int `yaml:"failures"`
}

// HooksConfig names programs (no shell) run for a member. Each gets
// actions.pass_env and VIGIL_SERVICE, VIGIL_MEMBER, VIGIL_MEMBER_HOST,
// VIGIL_ENDPOINT and VIGIL_EPOCH; exit 0 is success.
type HooksConfig struct {
	// Ready readies a warm standby; Start starts a cold one. Both must
	// return once the member was asked to get ready; the controller then
	// waits for its health check. Fence stops or isolates the old
	// primary after the route fenced it (failures are recorded, the
	// failover goes on: the route table is the fence).
	Ready *HookConfig `yaml:"ready"`
	Start *HookConfig `yaml:"start"`
	Fence *HookConfig `yaml:"fence"`
	// Route runs after every route switch and drain step, for DNS or a
	// load balancer. It gets VIGIL_SERVICE, VIGIL_MEMBER (now active),
	// VIGIL_ENDPOINT, VIGIL_EPOCH, VIGIL_PREVIOUS (the member before) and,
	// while draining, VIGIL_WEIGHTS ("a=75,b=25"). A failure is recorded in
	// the failover event (label route_hook_error) and never blocks the
	// switch.
	Route *HookConfig `yaml:"route"`
}

// AgentStartConfig: `start: {via: agent, action: NAME, timeout: 60s}`.
// The controller sends a signed host command (actions.signing) to the
// agent of the standby's host: action NAME with params member and
// endpoint (the host action must declare both), Service = the service and
// Epoch = the failover's new fencing epoch, ID
// failover/<service>/epoch-<E>/start/<member>. done means the member was
// asked to get ready; the controller then waits for its health check.
type AgentStartConfig struct {
	// Via: agent. Required.
	Via string `yaml:"via"`
	// Action: the agent's host action name. Required.
	Action string `yaml:"action"`
	// Timeout: the command's lifetime, at most the agents'
	// executor.nonce_window. Default 60s.
	Timeout time.Duration `yaml:"timeout"`
}

func (s *ServiceConfig) viaAgent() bool { return s.Start != nil && s.Start.Via == "agent" }

// HookConfig is one program.
type HookConfig struct {
	Program string   `yaml:"program"`
	Args    []string `yaml:"args"`
	// Timeout. Default 60s.
	Timeout time.Duration `yaml:"timeout"`
}

// Service modes and standby kinds.
const (
	ServiceModeAuto   = "auto"
	ServiceModeManual = "manual"
	StandbyHot        = "hot"
	StandbyWarm       = "warm"
	StandbyCold       = "cold"
	RolePrimary       = "primary"
	RoleStandby       = "standby"
)

func (s *ServiceConfig) member(name string) *MemberConfig {
	for i := range s.Members {
		if s.Members[i].Name == name {
			return &s.Members[i]
		}
	}
	return nil
}

func (s *ServiceConfig) primary() *MemberConfig {
	for i := range s.Members {
		if s.Members[i].Role == RolePrimary {
			return &s.Members[i]
		}
	}
	return nil
}

// validateServices defaults and checks services.
func validateServices(doc *config.Doc, svcs []ServiceConfig) config.Errors {
	var errs config.Errors
	bad := func(path, format string, args ...any) { errs = append(errs, doc.Errorf(path, format, args...)) }
	seen := map[string]bool{}
	for i := range svcs {
		s := &svcs[i]
		p := fmt.Sprintf("services[%d]", i)
		if err := route.ValidService(s.Name); err != nil {
			bad(p+".name", "%v", err)
		}
		if seen[s.Name] {
			bad(p+".name", "service %q listed twice", s.Name)
		}
		seen[s.Name] = true
		if s.Mode == "" {
			s.Mode = ServiceModeAuto
		}
		if s.Mode != ServiceModeAuto && s.Mode != ServiceModeManual {
			bad(p+".mode", "mode %q: use auto or manual", s.Mode)
		}
		if s.ReadyTimeout == 0 {
			s.ReadyTimeout = time.Minute
		}
		h := &s.Health
		if h.Path == "" {
			h.Path = "/healthz"
		}
		if h.Interval == 0 {
			h.Interval = time.Second
		}
		if h.Timeout == 0 {
			h.Timeout = h.Interval / 2
		}
		if h.Failures == 0 {
			h.Failures = 3
		}
		if h.Interval < 10*time.Millisecond || h.Timeout <= 0 || h.Failures < 1 {
			bad(p+".health", "health: interval at least 10ms, timeout positive, failures at least 1")
		}
		if st := s.Start; st != nil {
			if st.Via != "agent" || st.Action == "" {
				bad(p+".start", "start: want {via: agent, action: <host action name>}")
			}
			if st.Timeout == 0 {
				st.Timeout = time.Minute
			}
		}
		for _, hk := range []*HookConfig{s.Hooks.Ready, s.Hooks.Start, s.Hooks.Fence, s.Hooks.Route} {
			if hk == nil {
				continue
			}
			if hk.Program == "" {
				bad(p+".hooks", "a hook needs a program")
			}
			if hk.Timeout == 0 {
				hk.Timeout = time.Minute
			}
		}
		validateMembers(s, p, bad)
	}
	return errs
}

func validateMembers(s *ServiceConfig, p string, bad func(path, format string, args ...any)) {
	primaries := 0
	names := map[string]bool{}
	for j := range s.Members {
		m := &s.Members[j]
		mp := fmt.Sprintf("%s.members[%d]", p, j)
		if m.Name == "" || names[m.Name] {
			bad(mp+".name", "member name %q empty or listed twice", m.Name)
		}
		names[m.Name] = true
		if u, err := url.Parse(m.Endpoint); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			bad(mp+".endpoint", "endpoint %q: need an http(s) URL", m.Endpoint)
		}
		if m.Role == "" {
			m.Role = RoleStandby
		}
		if m.Standby == "" {
			m.Standby = StandbyHot
		}
		switch {
		case m.Role == RolePrimary:
			primaries++
		case m.Role != RoleStandby:
			bad(mp+".role", "role %q: use primary or standby", m.Role)
		}
		switch m.Standby {
		case StandbyHot:
		case StandbyWarm:
			if s.Hooks.Ready == nil && !s.viaAgent() {
				bad(mp+".standby", "a warm standby needs hooks.ready or start: {via: agent}")
			}
		case StandbyCold:
			if s.Hooks.Start == nil && !s.viaAgent() {
				bad(mp+".standby", "a cold standby needs hooks.start or start: {via: agent}")
			}
		default:
			bad(mp+".standby", "standby %q: use hot, warm or cold", m.Standby)
		}
	}
	if primaries != 1 || len(s.Members) < 2 {
		bad(p+".members", "service %s needs exactly one primary and at least one standby", s.Name)
	}
}
