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
//	psi        pressure     resource (cpu, memory, io)  some_avg10/60/300, full_avg10/60/300 (percent),
//	                                                    some_total, full_total (µs, counters)
//	fd         fd           -                          allocated, max (int), used_percent
//	netstat    netstat      -                          tcp_retrans_segs, tcp_out_segs, tcp_in_segs, tcp_in_errs,
//	                                                    tcp_active_opens, tcp_passive_opens, tcp_attempt_fails,
//	                                                    tcp_estab_resets, tcp_out_rsts, udp_in_datagrams,
//	                                                    udp_in_errors, udp_no_ports, udp_rcvbuf_errors,
//	                                                    udp_sndbuf_errors (counters), tcp_curr_estab
//	boot       system       -                          boot_time (unix s), reboots (counter, kept in state_dir)
//	clock      clock        -                          offset_seconds, max_error_seconds, synced (0/1)
//	sensors    sensors      sensor                     temp_c
//	gpu        gpu          index, name                utilization_percent, memory_used_bytes, memory_total_bytes,
//	                                                    memory_used_percent, temperature_c, power_watts,
//	                                                    ecc_errors_corrected, ecc_errors_uncorrected,
//	                                                    throttle_reasons (bitmask), throttled (0/1)
//	smart      smart        device                     healthy, reallocated_sectors, pending_sectors,
//	                                                    wear_percent_used, temperature_c, power_on_hours,
//	                                                    media_errors
//	procstat   procstat     name                       up, count, cpu_percent, rss_bytes, open_files, threads,
//	                                                    restarts (counter)
//	probes     probe_http   name                       up, status_code, latency_ms, body_match, tls_days_left
//	probes     probe_tcp    name                       up, latency_ms
//	probes     probe_cmd    name                       up, exit_code, duration_ms
//	logs       logmatch     file, pattern              count, lines (counters)
//
// procstat, probes and logs run only when configured; gpu and smart run
// their tool in the background every `every`; psi, sensors, gpu and smart
// report an absent kernel feature, hardware or tool once (Availability).
//
//	(agent)    vigil_agent  -                          backlog, dropped, acked, resent, publish_errors,
//	                                                    collect_errors, collect_ms (see selfPoint)
//
// Integers are written as line-protocol integers (`12i`), not unsigned, as
// Telegraf does by default and as InfluxDB 1.8 requires.
package agent

import (
	"context"
	"fmt"
	"log/slog"
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
	// Every (gpu, smart): how often the collector runs its tool, in the
	// background; ticks in between emit nothing. Default 30s (gpu), 5m (smart).
	Every time.Duration `yaml:"every"`
	// Program (gpu, smart): path of the tool. Default nvidia-smi or
	// smartctl looked up in PATH.
	Program string `yaml:"program"`
	// Devices (smart): devices to query (e.g. /dev/sda). Default: those
	// `smartctl --scan` lists.
	Devices []string `yaml:"devices"`
	// Watches (procstat): the watched processes.
	Watches []ProcWatch `yaml:"watches"`
	// ScanEvery (procstat): how often the process table is scanned for new
	// matches (vanished ones are noticed every tick). Default 10s.
	ScanEvery time.Duration `yaml:"scan_every"`
	// HTTP, TCP and Command (probes): the health probes.
	HTTP    []HTTPProbe    `yaml:"http"`
	TCP     []TCPProbe     `yaml:"tcp"`
	Command []CommandProbe `yaml:"command"`
	// Files (logs): the tailed log files and their patterns.
	Files []LogFile `yaml:"files"`

	// Timeout (gpu, smart), set from collectors.<name>.timeout: bounds one
	// run of the tool (its collection runs in the background, so the tick
	// does not wait for it). Default 10s (gpu), 30s per device (smart).
	Timeout time.Duration `yaml:"-"`
	// StateDir (boot), set by the agent from the top-level state_dir: where
	// collectors keep what must survive a restart. "" keeps nothing.
	StateDir string `yaml:"-"`
	// Log, set by the agent: for what a collector reports once (a tool or
	// hardware that is absent). Default slog.Default().
	Log *slog.Logger `yaml:"-"`
}

// logger is o.Log or the default logger.
func (o Options) logger() *slog.Logger {
	if o.Log != nil {
		return o.Log
	}
	return slog.Default()
}

// optionError is a problem with one option of a collector; path is
// relative to collectors.<name> ("http[1].url"), so that the config error
// can name its line and column.
type optionError struct {
	path string
	err  error
}

func (e *optionError) Error() string { return e.path + ": " + e.err.Error() }
func (e *optionError) Unwrap() error { return e.err }

// optErr makes an optionError.
func optErr(path, format string, args ...any) error {
	return &optionError{path: path, err: fmt.Errorf(format, args...)}
}

// Availability is implemented by collectors whose hardware or tool may be
// absent (no nvidia-smi, no sensors in a VM). Such a collector logs the
// absence once, then emits nothing and returns no error; Unavailable says
// why it has nothing to report, "" when it has.
type Availability interface {
	Unavailable() string
}

// Factory builds a collector from its options.
type Factory func(o Options) (Collector, error)

type registration struct {
	factory Factory
	keys    []string // accepted option keys
	optIn   bool     // enabled only when listed under collectors
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

// RegisterOptIn makes a collector available under name that is enabled
// only when listed under collectors in the config (it needs settings: the
// processes to watch, the probes, the log files).
func RegisterOptIn(name string, f Factory, optionKeys ...string) {
	Register(name, f, optionKeys...)
	registryMu.Lock()
	defer registryMu.Unlock()
	r := registry[name]
	r.optIn = true
	registry[name] = r
}

// enabledByDefault reports whether collector name runs when the config
// does not list it.
func enabledByDefault(name string) bool {
	registryMu.RLock()
	defer registryMu.RUnlock()
	r, ok := registry[name]
	return ok && !r.optIn
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
		if k := yamlKey(t.Field(i)); k != "-" && !v.Field(i).IsZero() {
			keys = append(keys, k)
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
