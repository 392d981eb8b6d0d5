package rules

import (
	"encoding/json"
	"time"
)

// Rule modes.
const (
	ModeAuto   = "auto"    // intents are executed by the dispatcher
	ModeManual = "manual"  // intents wait for an operator's approval (Intent.Mode)
	ModeDryRun = "dry_run" // intents are recorded, never executed
)

// No-data policies (the rule's no_data key): what an evaluation whose
// functions found no data does to the alert state.
const (
	NoDataState = "nodata"     // default: the state NoData (resolves a firing episode); never an action
	NoDataKeep  = "keep_state" // the state stays as it is (a firing rule keeps firing, pending does not advance)
	NoDataAlert = "alert"      // counts as true for the alert (pending, firing) but never produces an intent
	NoDataOK    = "ok"         // counts as false
)

// Severities, lowest first.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Scopes: what one subject of a group is.
const (
	ScopeHost    = "host"    // a subject is one host: its series
	ScopeService = "service" // a subject is a value of the tag service: the series carrying it
	ScopeModel   = "model"   // a subject is a value of the tag model: the series carrying it
	ScopeFleet   = "fleet"   // a subject is a role (the label role of hosts): the series of its hosts
)

// Defaults of the rule file format.
const (
	DefaultInterval      = 10 * time.Second
	MinInterval          = 100 * time.Millisecond
	DefaultMinConfidence = 0.8
	DefaultCooldown      = 10 * time.Minute
	DefaultActionTimeout = time.Minute
	DefaultFlapFirings   = 4 // firing episodes within DefaultFlapWindow that make a rule flap
	DefaultFlapWindow    = time.Hour
	MaxFlapFirings       = 32
)

// Rule is one compiled rule: a condition evaluated per subject, with the
// alert state machine's timings and an optional action.
type Rule struct {
	Name, Group, Severity, Mode string
	Expr                        string
	Clear                       string // optional: while firing, the rule resolves only when this holds (hysteresis)
	For, KeepFiringFor          time.Duration
	Cooldown                    time.Duration // minimum time between two actions of this rule on one subject (enforced by the dispatcher)
	NoData                      string        // no-data policy, one of the NoData* constants; default NoDataState
	Flap                        FlapPolicy
	Labels, Annotations         map[string]string // values are text/templates (see template.go)
	Action                      *Action           // nil: the rule only alerts
	File                        string
	Line, Column                int          // of the rule's mapping in File
	Selectors                   []*Selector  // every selector expr and clear read, in order of first use
	Windows                     []WindowNeed // selectors read by window functions, with their longest window

	templates map[string]*ruleTemplate // "labels.k" / "annotations.k" -> compiled template; nil entries are plain text

	group       *Group
	fingerprint string // the definition; equal fingerprints keep state across Replace
}

// FlapPolicy: a rule that enters Firing Firings times within Window on one
// subject is flapping: the episode that reaches the count and the later
// ones produce no intent until fewer than Firings episodes started within
// the last Window. Firings 0 disables flap detection.
type FlapPolicy struct {
	Firings int
	Window  time.Duration
}

// Action is what a firing rule asks the dispatcher to run.
type Action struct {
	Name    string // default: the rule name
	Kind    string // "exec" or a kind registered with RegisterActionKind
	Program string // exec: a path, or a name looked up in PATH at run time
	Args    []string
	Params  map[string]string // parameters of the action kind, literal (never templated)
	Timeout time.Duration     // default DefaultActionTimeout
}

// Group is a set of rules evaluated together at one interval.
type Group struct {
	Name          string
	Scope         string        // one of the Scope* constants; default ScopeHost
	Interval      time.Duration // default DefaultInterval, at least MinInterval
	MinConfidence float64       // eta() answers Never below this forecast confidence; default DefaultMinConfidence
	Rules         []*Rule
	File          string
	Line, Column  int
}

// Set is every group of one or more rule files, compiled and checked.
// It is immutable and may be shared.
type Set struct {
	groups []*Group
}

// Groups are the set's groups in file order.
func (s *Set) Groups() []*Group {
	if s == nil {
		return nil
	}
	return s.groups
}

// Rules are every rule of the set, group by group in file order.
func (s *Set) Rules() []*Rule {
	var out []*Rule
	for _, g := range s.Groups() {
		out = append(out, g.Rules...)
	}
	return out
}

// key identifies a rule within a Set.
func (r *Rule) key() string { return r.Group + "/" + r.Name }

// computeFingerprint records the rule's definition: everything that
// decides what it evaluates and does, including its group's scope and
// min_confidence, but not its position in the file nor the group interval.
func (r *Rule) computeFingerprint() {
	type def struct {
		Expr, Clear, Severity, Mode  string
		For, KeepFiringFor, Cooldown time.Duration
		NoData                       string
		Flap                         FlapPolicy
		Labels, Annotations          map[string]string
		Action                       *Action
		Scope                        string
		MinConfidence                float64
	}
	b, _ := json.Marshal(def{ // maps are encoded with sorted keys
		Expr: r.Expr, Clear: r.Clear, Severity: r.Severity, Mode: r.Mode, NoData: r.NoData, Flap: r.Flap,
		For: r.For, KeepFiringFor: r.KeepFiringFor, Cooldown: r.Cooldown,
		Labels: r.Labels, Annotations: r.Annotations, Action: r.Action,
		Scope: r.group.Scope, MinConfidence: r.group.MinConfidence,
	})
	r.fingerprint = string(b)
}

// State is the alert state of one rule on one subject.
type State int

// The states of the alert state machine.
const (
	Inactive State = iota // condition false
	Pending               // condition true for less than `for`
	Firing                // condition true for `for` (or within keep_firing_for of the last true)
	NoData                // a function found no data: neither true nor false
	Error                 // the evaluation failed
)

var stateNames = [...]string{"inactive", "pending", "firing", "nodata", "error"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "unknown"
	}
	return stateNames[s]
}

// MarshalText writes the state's name (for JSON).
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
