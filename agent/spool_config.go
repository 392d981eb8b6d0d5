package agent

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// SpoolConfig is the on-disk spool: batches JetStream has not acknowledged
// while NATS is away, kept across restarts and re-sent in order.
type SpoolConfig struct {
	// Dir holds the spool's segment files. Default <state_dir>/spool; "off"
	// disables the spool (unacknowledged batches then live in memory only,
	// bounded by publish.max_pending_batches). Without state_dir and dir
	// there is no spool.
	Dir string `yaml:"dir"`
	// MaxBytes bounds the spool's files; when full, the oldest batches are
	// dropped, counted and logged. An integer (bytes) or a size such as
	// 256MiB, 1GiB, 500MB. Default 256MiB; at least 1MiB.
	MaxBytes ByteSize `yaml:"max_bytes"`
}

// DefaultSpoolBytes is spool.max_bytes when unset.
const DefaultSpoolBytes = 256 << 20

// ByteSize is a number of bytes written as an integer or with a unit
// (B, KB, MB, GB, KiB, MiB, GiB; case-insensitive).
type ByteSize int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// ParseByteSize reads "268435456", "256MiB", "1 GiB", "500MB".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') {
		i--
	}
	num, unit := strings.TrimSpace(t[:i]), strings.ToLower(strings.TrimSpace(t[i:]))
	mult := map[string]int64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}[unit]
	n, err := strconv.ParseInt(num, 10, 64)
	if mult == 0 || err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q: want bytes or a number with B, KB, MB, GB, KiB, MiB or GiB", s)
	}
	return ByteSize(n * mult), nil
}

// MetricsConfig is the agent's Prometheus endpoint.
type MetricsConfig struct {
	// Listen is the address of GET /metrics (Prometheus text format).
	// Default "" (off); "off" disables it too. Use a loopback address such
	// as 127.0.0.1:9465: the endpoint has no authentication.
	Listen string `yaml:"listen"`
}

// DefaultStateDir is where the vigil-agent command keeps its state when
// state_dir is not set: $STATE_DIRECTORY (the first one, set by systemd's
// StateDirectory=), else /var/lib/vigil-agent as root, else
// $XDG_STATE_HOME/vigil-agent, else ~/.local/state/vigil-agent.
func DefaultStateDir() string {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		first, _, _ := strings.Cut(d, ":")
		return first
	}
	if os.Geteuid() == 0 {
		return "/var/lib/vigil-agent"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "vigil-agent")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "vigil-agent")
	}
	return "/var/lib/vigil-agent"
}

// SpoolDir is the spool directory in effect, "" when there is no spool.
func (c *Config) SpoolDir() string {
	switch {
	case c.Spool.Dir == "off":
		return ""
	case c.Spool.Dir != "":
		return c.Spool.Dir
	case c.StateDir != "":
		return filepath.Join(c.StateDir, "spool")
	}
	return ""
}

// MetricsAddr is the metrics listen address in effect, "" when off.
func (c *Config) MetricsAddr() string {
	if c.Metrics.Listen == "off" {
		return ""
	}
	return c.Metrics.Listen
}

// deliveryDefaults fills the spool's defaults.
func (c *Config) deliveryDefaults() {
	if c.Spool.MaxBytes == 0 {
		c.Spool.MaxBytes = DefaultSpoolBytes
	}
}

// validateDelivery checks spool, metrics and TLS settings.
func (c *Config) validateDelivery(bad badFunc) {
	if c.Spool.MaxBytes < 1<<20 {
		bad("spool.max_bytes", "spool.max_bytes %d is too small (at least 1MiB)", c.Spool.MaxBytes)
	}
	if d := c.Spool.Dir; d != "" && d != "off" && !filepath.IsAbs(d) {
		bad("spool.dir", "spool.dir %q must be an absolute path (or \"off\")", d)
	}
	if d := c.StateDir; d != "" && !filepath.IsAbs(d) {
		bad("state_dir", "state_dir %q must be an absolute path", d)
	}
	if a := c.MetricsAddr(); a != "" {
		if _, port, err := net.SplitHostPort(a); err != nil || !validPort(port) {
			bad("metrics.listen", "metrics.listen %q: want host:port (e.g. 127.0.0.1:9465) or \"off\"", a)
		}
	}
}

func validPort(p string) bool {
	_, err := strconv.ParseUint(p, 10, 16)
	return err == nil
}
