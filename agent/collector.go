// Package agent is the Vigil host agent: collectors that read the host's
// signals (gopsutil v3), a publisher that sends one InfluxDB line-protocol
// batch per tick to JetStream and keeps unacknowledged batches in a bounded
// backlog, and Agent, which ties them together under Run(ctx).
//
// Built-in collectors and what they write (Telegraf-compatible names, so
// Telegraf dashboards and Vigil rules read alike). Every line also carries
// the tag host=<host> and the timestamp of the tick.
//
//	collector  measurement  tags                       fields
//	cpu        cpu          cpu (cpu-total, cpu0, ...)  usage_user, usage_system, usage_idle, usage_nice,
//	                                                    usage_iowait, usage_irq, usage_softirq, usage_steal,
//	                                                    usage_guest, usage_guest_nice (percent, float)
//	mem        mem          -                          total, available, used, free, cached, buffers (bytes, int),
//	                                                    used_percent, available_percent (float)
//	mem        swap         -                          total, used, free (bytes, int), used_percent (float)
//	system     system       -                          load1, load5, load15 (float), n_cpus, uptime (s) (int)
//	disk       disk         path, device, fstype       total, free, used, inodes_total, inodes_free, inodes_used (int),
//	                                                    used_percent, inodes_used_percent (float)
//	diskio     diskio       name                       reads, writes, read_bytes, write_bytes, read_time, write_time,
//	                                                    io_time, weighted_io_time, iops_in_progress,
//	                                                    merged_reads, merged_writes (counters, int)
//	net        net          interface                  bytes_sent, bytes_recv, packets_sent, packets_recv,
//	                                                    err_in, err_out, drop_in, drop_out (counters, int)
//	(agent)    vigil_agent  -                          backlog, dropped, acked, resent, publish_errors,
//	                                                    collect_errors, collect_ms (see selfPoint)
//
// Integers are written as line-protocol integers (`12i`), not unsigned, as
// Telegraf does by default and as InfluxDB 1.8 requires.
package agent

import (
	"context"
	"fmt"
	"math"
	"path"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// Emit adds one point; the agent adds the host tag and the timestamp of the
// tick. Tags and fields are copied before Emit returns, so a collector may
// reuse its slices.
type Emit func(measurement string, tags []wire.Tag, fields []wire.Field)

// Collector reads one family of host signals once per tick.
//
// Collect is called from one goroutine at a time, never concurrently with
// itself; it must honour ctx (the per-collector timeout). now is the tick
// time, for collectors that compute rates.
type Collector interface {
	Name() string
	Collect(ctx context.Context, now time.Time, emit Emit) error
}

// Options are the collector-specific settings under collectors.<name> in
// the config file. Each collector declares, when registered, which of these
// keys it accepts; setting another is a config error. Zero values mean the
// collector's default.
type Options struct {
	// PerCPU (cpu): one point per core, tag cpu=cpuN. Default true.
	PerCPU *bool `yaml:"percpu"`
	// TotalCPU (cpu): one point for all cores, tag cpu=cpu-total. Default true.
	TotalCPU *bool `yaml:"totalcpu"`
	// IgnoreFS (disk): file-system types to skip. Default DefaultIgnoreFS.
	// An explicit empty list keeps every file system.
	IgnoreFS []string `yaml:"ignore_fs"`
	// IgnoreMounts (disk): mount points to skip, each with everything below
	// it. Default DefaultIgnoreMounts.
	IgnoreMounts []string `yaml:"ignore_mounts"`
	// RefreshEvery (disk): re-read the mount table every N ticks. Default 6.
	RefreshEvery int `yaml:"refresh_every"`
	// IgnoreDevices (diskio): device-name globs to skip. Default ["loop*", "ram*"].
	IgnoreDevices []string `yaml:"ignore_devices"`
	// IgnoreInterfaces (net): interface-name globs to skip. Default ["lo"].
	IgnoreInterfaces []string `yaml:"ignore_interfaces"`
}

// Factory builds a collector from its options.
type Factory func(o Options) (Collector, error)

type registration struct {
	factory Factory
	keys    []string // accepted option keys
}

var (
	registryMu sync.RWMutex
	registry   = map[string]registration{}
)

// Register makes a collector available under name, enabled by default.
// optionKeys are the yaml keys of Options it reads. Register panics on a
// duplicate name (a programming error, caught at init).
func Register(name string, f Factory, optionKeys ...string) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic(fmt.Sprintf("agent: collector %q registered twice", name))
	}
	registry[name] = registration{factory: f, keys: optionKeys}
}

// Registered lists the registered collector names, sorted.
func Registered() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// NewCollector builds the registered collector name with options o.
func NewCollector(name string, o Options) (Collector, error) {
	registryMu.RLock()
	r, ok := registry[name]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown collector %q", name)
	}
	c, err := r.factory(o)
	if err != nil {
		return nil, fmt.Errorf("collector %s: %w", name, err)
	}
	return c, nil
}

// acceptedKeys returns the option keys of collector name, and whether it
// is registered.
func acceptedKeys(name string) ([]string, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	r, ok := registry[name]
	return r.keys, ok
}

// setOptionKeys returns the yaml keys of the options that are set (non-zero).
func setOptionKeys(o Options) []string {
	var keys []string
	v := reflect.ValueOf(o)
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if !v.Field(i).IsZero() {
			keys = append(keys, yamlKey(t.Field(i)))
		}
	}
	return keys
}

func yamlKey(f reflect.StructField) string {
	tag := f.Tag.Get("yaml")
	for i := 0; i < len(tag); i++ {
		if tag[i] == ',' {
			return tag[:i]
		}
	}
	return tag
}

// boolOr returns *p, or def when p is nil.
func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

// matchAny reports whether name matches one of the globs (path.Match
// syntax; a malformed pattern matches nothing).
func matchAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// validGlobs returns the first malformed pattern's error.
func validGlobs(globs []string) error {
	for _, g := range globs {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("bad pattern %q: %w", g, err)
		}
	}
	return nil
}

// i64 converts a counter to a line-protocol integer, saturating.
func i64(u uint64) int64 {
	if u > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(u)
}

// percent is 100*part/whole, or 0 for an empty whole.
func percent(part, whole float64) float64 {
	if whole <= 0 {
		return 0
	}
	return 100 * part / whole
}
