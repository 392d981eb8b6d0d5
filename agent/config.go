package agent

import (
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/vigil-sre/vigil/internal/config"
)

// ExampleConfig is agent/example.yaml, the documented example configuration.
//
//go:embed example.yaml
var ExampleConfig []byte

// Config is the agent's configuration file (YAML, strict: unknown keys are
// errors). Zero values take the defaults named in the comments.
type Config struct {
	// Host names this host in subjects and in the host tag. Default: the
	// operating system's host name.
	Host string `yaml:"host"`
	// Tags are added to every point this agent publishes, e.g. {role:
	// gpu-serving, zone: eu-1}: the controller reads role, zone, site,
	// region, cluster, env, team, service and model as the host's labels
	// (fleet rules group hosts by role). A collector's own tag of the same
	// name wins; "host" is not allowed here. Default none.
	Tags map[string]string `yaml:"tags"`
	// Interval between ticks (one batch per tick). Default 10s; at least 10ms.
	Interval time.Duration `yaml:"interval"`
	// Jitter: every tick fires at a random offset in [0, jitter) after its
	// slot on the interval grid, and the grid starts at a random offset, so
	// a fleet does not publish in lockstep. Default interval/10; 0 disables
	// it; must be less than interval.
	Jitter *time.Duration `yaml:"jitter"`
	// SelfMetrics adds the vigil_agent measurement (backlog, drops, errors)
	// to every batch. Default true.
	SelfMetrics *bool `yaml:"self_metrics"`

	// StateDir keeps what must survive a restart: the disk spool (under
	// spool/ unless spool.dir says otherwise) and what collectors remember.
	// Default for the vigil-agent command (see DefaultStateDir):
	// $STATE_DIRECTORY (systemd's StateDirectory=), else /var/lib/vigil-agent
	// as root, else $XDG_STATE_HOME/vigil-agent (~/.local/state/vigil-agent).
	// A program that embeds the agent package and leaves it empty keeps no
	// state: without spool.dir it has no disk spool.
	StateDir string `yaml:"state_dir"`

	NATS    NATSConfig    `yaml:"nats"`
	Publish PublishConfig `yaml:"publish"`
	Spool   SpoolConfig   `yaml:"spool"`
	Metrics MetricsConfig `yaml:"metrics"`
	// Collectors by name. Every registered collector is enabled unless
	// listed with enabled: false, except procstat, probes and logs, which
	// need settings and run only when listed.
	Collectors map[string]CollectorConfig `yaml:"collectors"`
	// Models turns on model-drift monitoring (see ModelsConfig); nil: off.
	Models *ModelsConfig `yaml:"models"`
	// Executor turns on the signed command server (see ExecutorConfig);
	// nil: the agent runs no host action.
	Executor *ExecutorConfig `yaml:"executor"`
	// Traffic: traffic switches following the route table (see
	// TrafficConfig in traffic.go); default none.
	Traffic []TrafficConfig `yaml:"traffic"`
	// Releases: release registries the agent watches (health, LKG) and
	// may roll back (the "rollback" host action); see ReleaseConfig in
	// action_rollback.go. Default none.
	Releases []ReleaseConfig `yaml:"releases"`
	// Backup: a backup repository and policies for the "backup" and
	// "restore" host actions and the backup collector (see BackupConfig in
	// action_backup.go); nil: off.
	Backup *BackupConfig `yaml:"backup"`
}

// NATSConfig is how the agent connects to NATS. It reconnects forever.
type NATSConfig struct {
	// URL of the server, or several separated by commas. ${ENV} is
	// expanded. Default nats://127.0.0.1:4222.
	URL config.Expand `yaml:"url"`
	// Name of the connection as the server shows it. Default vigil-agent-<host>.
	Name string `yaml:"name"`
	// User and Password authenticate with a user name (both or neither).
	User     config.Expand `yaml:"user"`
	Password config.Expand `yaml:"password"`
	// Token authenticates with a token (not with user or creds).
	Token config.Expand `yaml:"token"`
	// Creds is a credentials file (JWT and seed).
	Creds config.Expand `yaml:"creds"`
	// NkeySeed is a file holding an nkey seed (SU...): the agent signs the
	// server's challenge with it (not with user, token or creds).
	NkeySeed config.Expand `yaml:"nkey_seed"`
	// TLS: server verification and client certificate. A tls:// URL or any
	// of these keys turns TLS on.
	TLS TLSConfig `yaml:"tls"`
	// ReconnectWait between reconnection attempts. Default 2s.
	ReconnectWait time.Duration `yaml:"reconnect_wait"`
	// ReconnectBuffer: bytes published while disconnected that the client
	// keeps and sends on reconnect. Default 8 MiB.
	ReconnectBuffer int `yaml:"reconnect_buffer"`
}

// PublishConfig bounds publishing and the backlog of unacknowledged batches.
type PublishConfig struct {
	// Timeout: how long to wait for JetStream's acknowledgement of a
	// batch. Default 5s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxPendingBatches bounds the in-memory backlog of batches not yet
	// acknowledged; when it is full the oldest is dropped and counted.
	// Default 1000.
	MaxPendingBatches int `yaml:"max_pending_batches"`
	// ShutdownGrace: how long Run keeps sending the backlog after its
	// context ends. Default 3s.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
}

// CollectorConfig configures one collector. The collector-specific keys of
// Options are written beside enabled and timeout.
type CollectorConfig struct {
	// Enabled: default true.
	Enabled *bool `yaml:"enabled"`
	// Timeout of one Collect call. Default interval/2, at most 5s.
	Timeout time.Duration `yaml:"timeout"`
	Options `yaml:",inline"`
}

// Defaults.
const (
	DefaultURL      = "nats://127.0.0.1:4222"
	DefaultInterval = 10 * time.Second
)

// LoadConfig reads, defaults and validates the file at path. Errors name
// file, line and column.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig decodes YAML data named file, then defaults and validates it.
func ParseConfig(file string, data []byte) (Config, error) {
	var c Config
	doc, err := config.Decode(file, data, &c)
	if err != nil {
		return Config{}, err
	}
	if err := c.WithDefaults(); err != nil {
		return Config{}, err
	}
	if err := c.Validate(doc); err != nil {
		return Config{}, err
	}
	return c, nil
}

// WithDefaults fills unset fields with their defaults. It fails only when
// the host name is unset and the system's cannot be read.
func (c *Config) WithDefaults() error {
	if c.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("config: host not set and host name unknown: %w", err)
		}
		c.Host = h
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Jitter == nil {
		j := c.Interval / 10
		c.Jitter = &j
	}
	if c.SelfMetrics == nil {
		t := true
		c.SelfMetrics = &t
	}
	n := &c.NATS
	if n.URL == "" {
		n.URL = DefaultURL
	}
	if n.Name == "" {
		n.Name = "vigil-agent-" + c.Host
	}
	if n.ReconnectWait == 0 {
		n.ReconnectWait = 2 * time.Second
	}
	if n.ReconnectBuffer == 0 {
		n.ReconnectBuffer = 8 << 20
	}
	p := &c.Publish
	if p.Timeout == 0 {
		p.Timeout = 5 * time.Second
	}
	if p.MaxPendingBatches == 0 {
		p.MaxPendingBatches = 1000
	}
	if p.ShutdownGrace == 0 {
		p.ShutdownGrace = 3 * time.Second
	}
	c.deliveryDefaults()
	for i := range c.Traffic {
		c.Traffic[i].withDefaults()
	}
	for i := range c.Releases {
		c.Releases[i].withDefaults()
	}
	if c.Backup != nil {
		c.Backup.withDefaults()
	}
	if c.Executor != nil {
		c.Executor.withDefaults()
	}
	if c.Models != nil {
		c.Models.withDefaults()
	}
	return nil
}

// DisableCollectors disables every registered collector, for an agent that
// gets its collectors from AddCollector only (e.g. a simulated host).
func (c *Config) DisableCollectors() {
	if c.Collectors == nil {
		c.Collectors = map[string]CollectorConfig{}
	}
	f := false
	for _, name := range Registered() {
		cc := c.Collectors[name]
		cc.Enabled = &f
		c.Collectors[name] = cc
	}
}

// collectorEnabled reports whether collector name is enabled: as its
// enabled key says when it is listed under collectors (default true), else
// as registered (procstat, probes and logs need settings, so they run only
// when listed).
func (c *Config) collectorEnabled(name string) bool {
	if cc, listed := c.Collectors[name]; listed {
		return boolOr(cc.Enabled, true)
	}
	return enabledByDefault(name)
}

// collectorOptions are the options collector name is built with: those of
// the file plus what the agent provides (the state directory and log).
func (c *Config) collectorOptions(name string, log *slog.Logger) Options {
	o := c.Collectors[name].Options
	o.Timeout = c.Collectors[name].Timeout
	o.StateDir = c.StateDir
	if log != nil {
		o.Log = log.With("collector", name)
	}
	return o
}

// collectorTimeout is the timeout of collector name.
func (c *Config) collectorTimeout(name string) time.Duration {
	if t := c.Collectors[name].Timeout; t > 0 {
		return t
	}
	return min(c.Interval/2, 5*time.Second)
}

// Validate checks a defaulted configuration. doc, from decoding the file,
// positions the errors; nil names no position.
func (c *Config) Validate(doc *config.Doc) error {
	if doc == nil {
		doc = &config.Doc{File: "config"}
	}
	var errs config.Errors
	bad := func(path, format string, args ...any) {
		errs = append(errs, doc.Errorf(path, format, args...))
	}
	if strings.TrimSpace(c.Host) == "" {
		bad("host", "host must not be empty")
	}
	for k, v := range c.Tags {
		switch {
		case k == "" || k == "host":
			bad("tags", "tag name %q is not allowed (host is set by the host key)", k)
		case v == "":
			bad("tags."+k, "tag %s has an empty value", k)
		}
	}
	if c.Interval < 10*time.Millisecond {
		bad("interval", "interval %s is too short (at least 10ms)", c.Interval)
	}
	if c.Jitter != nil && (*c.Jitter < 0 || *c.Jitter >= c.Interval) {
		bad("jitter", "jitter %s must be at least 0 and less than interval %s", *c.Jitter, c.Interval)
	}
	c.NATS.validate(bad)
	p := c.Publish
	if p.Timeout < 0 {
		bad("publish.timeout", "publish.timeout must be positive")
	}
	if p.MaxPendingBatches < 1 {
		bad("publish.max_pending_batches", "publish.max_pending_batches must be at least 1")
	}
	if p.ShutdownGrace < 0 {
		bad("publish.shutdown_grace", "publish.shutdown_grace must not be negative")
	}
	c.validateDelivery(bad)
	c.validateCollectors(bad)
	if c.Models != nil {
		c.Models.validate(bad)
	}
	if c.Executor != nil {
		c.Executor.validate(bad)
	}
	c.validateReleases(bad)
	if c.Backup != nil {
		c.Backup.validate(bad)
	}
	for i := range c.Traffic {
		if err := c.Traffic[i].validate(); err != nil {
			bad(fmt.Sprintf("traffic[%d]", i), "traffic[%d]: %v", i, err)
		}
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool {
			return errs[i].Line < errs[j].Line || errs[i].Line == errs[j].Line && errs[i].Col < errs[j].Col
		})
		return errs
	}
	return nil
}

type badFunc func(path, format string, args ...any)

func (n *NATSConfig) validate(bad badFunc) {
	for _, u := range strings.Split(string(n.URL), ",") {
		p, err := url.Parse(strings.TrimSpace(u))
		switch {
		case err != nil:
			bad("nats.url", "nats.url: %v", errors.Unwrap(err))
		case p.Host == "" || !validScheme(p.Scheme):
			bad("nats.url", "nats.url %q: want scheme://host:port with scheme nats, tls, ws or wss", u)
		}
	}
	if (n.User == "") != (n.Password == "") {
		bad("nats.user", "nats.user and nats.password go together")
	}
	auth := 0
	for _, set := range []bool{n.User != "", n.Token != "", n.Creds != "", n.NkeySeed != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		bad("nats", "use one of nats.user/password, nats.token, nats.creds and nats.nkey_seed")
	}
	for _, f := range []struct{ key, path string }{
		{"nats.creds", string(n.Creds)}, {"nats.nkey_seed", string(n.NkeySeed)},
		{"nats.tls.ca", n.TLS.CA}, {"nats.tls.cert", n.TLS.Cert}, {"nats.tls.key", n.TLS.Key},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			bad(f.key, "%s: %v", f.key, err)
		}
	}
	if (n.TLS.Cert == "") != (n.TLS.Key == "") {
		bad("nats.tls.cert", "nats.tls.cert and nats.tls.key go together")
	}
	if n.ReconnectWait < 0 {
		bad("nats.reconnect_wait", "nats.reconnect_wait must not be negative")
	}
	if n.ReconnectBuffer < 0 {
		bad("nats.reconnect_buffer", "nats.reconnect_buffer must not be negative")
	}
}

func validScheme(s string) bool {
	switch s {
	case "nats", "tls", "ws", "wss":
		return true
	}
	return false
}

func (c *Config) validateCollectors(bad badFunc) {
	names := make([]string, 0, len(c.Collectors))
	for n := range c.Collectors {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		cc := c.Collectors[name]
		path := "collectors." + name
		keys, ok := acceptedKeys(name)
		if !ok {
			bad(path, "unknown collector %q (known: %s)", name, strings.Join(Registered(), ", "))
			continue
		}
		if cc.Timeout < 0 {
			bad(path+".timeout", "%s.timeout must not be negative", path)
		}
		for _, k := range setOptionKeys(cc.Options) {
			if !contains(keys, k) {
				bad(path+"."+k, "collector %s has no option %q (it has: %s)", name, k, listOrNone(keys))
			}
		}
		// Options are checked even when disabled: enabling it later must
		// not reveal old mistakes.
		col, err := NewCollector(name, c.collectorOptions(name, nil))
		badOptions(bad, path, name, err)
		if cl, ok := col.(interface{ Close() error }); ok {
			cl.Close()
		}
	}
}

// badOptions reports err from building collector name, each option error
// (several may be joined) at its own position below path.
func badOptions(bad badFunc, path, name string, err error) {
	if err == nil {
		return
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		j, ok = errors.Unwrap(err).(interface{ Unwrap() []error }) // NewCollector wraps it
	}
	if ok {
		for _, e := range j.Unwrap() {
			badOptions(bad, path, name, e)
		}
		return
	}
	var oe *optionError
	if errors.As(err, &oe) {
		bad(path+"."+oe.path, "collectors.%s.%s: %v", name, oe.path, oe.err)
		return
	}
	bad(path, "%v", err)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}
