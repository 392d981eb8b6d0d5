package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// bootCollector detects reboots (measurement system, beside the system
// collector's fields: InfluxDB merges the two points of one tick).
//
// Fields: boot_time (unix seconds, the btime line of /proc/stat) and
// reboots, a counter of boot-id changes: /proc/sys/kernel/random/boot_id is
// a random id the kernel draws at every boot. The last boot id and the
// count are kept in <state_dir>/boot_id, so a reboot (which restarts the
// agent) is counted when the agent comes back; an unclean shutdown shows as
// a reboots increase with a gap in the data before it. Without a state
// directory reboots stays 0 (a reboot can be seen only across restarts).
//
// Both are read once, at the first tick (the agent does not outlive a
// reboot); the state file is written then, only when it changes. Cost per
// tick: one point. Follows HOST_PROC.
type bootCollector struct {
	stateDir string
	log      *slog.Logger
	started  bool
	bootTime int64
	reboots  int64
	fields   []wire.Field
}

func init() {
	Register("boot", func(o Options) (Collector, error) {
		return &bootCollector{stateDir: o.StateDir, log: o.logger(), fields: make([]wire.Field, 2)}, nil
	})
}

// Name implements Collector.
func (c *bootCollector) Name() string { return "boot" }

// Collect implements Collector.
func (c *bootCollector) Collect(_ context.Context, _ time.Time, emit Emit) error {
	var err error
	if !c.started {
		c.started = true
		err = c.start()
	}
	if c.bootTime == 0 {
		return err
	}
	c.fields[0] = wire.I("boot_time", c.bootTime)
	c.fields[1] = wire.I("reboots", c.reboots)
	emit("system", nil, c.fields)
	return err
}

// start reads the boot time and id and counts a reboot against the state.
func (c *bootCollector) start() error {
	stat, err := os.ReadFile(hostProc("stat"))
	if err != nil {
		return fmt.Errorf("boot time: %w", err)
	}
	bt, ok := parseBtime(stat)
	if !ok {
		return fmt.Errorf("boot time: no btime line in %s", hostProc("stat"))
	}
	c.bootTime = bt
	idb, err := os.ReadFile(hostProc("sys", "kernel", "random", "boot_id"))
	if err != nil {
		return fmt.Errorf("boot id: %w", err)
	}
	id := string(bytes.TrimSpace(idb))
	if c.stateDir == "" {
		c.log.Info("no state_dir: reboots are not counted across agent restarts")
		return nil
	}
	path := filepath.Join(c.stateDir, "boot_id")
	last, n, err := readBootState(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case last == id:
		c.reboots = n
		return nil
	default:
		c.reboots = n + 1
		c.log.Info("reboot detected", "previous_boot_id", last, "boot_id", id, "reboots", c.reboots)
	}
	return writeBootState(path, id, c.reboots)
}

// parseBtime finds "btime <unix seconds>" in /proc/stat.
func parseBtime(b []byte) (int64, bool) {
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			n, ok := parseUint(bytes.TrimSpace(v))
			return int64(n), ok && n > 0 && n < 1<<62
		}
	}
	return 0, false
}

// readBootState reads "<boot id> <reboots>".
func readBootState(path string) (id string, reboots int64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", 0, err
	}
	f := bytes.Fields(b)
	if len(f) != 2 {
		return "", 0, fmt.Errorf("boot state %s: want \"<boot id> <reboots>\", got %q", path, b)
	}
	n, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil || n < 0 {
		return "", 0, fmt.Errorf("boot state %s: bad count %q", path, f[1])
	}
	return string(f[0]), n, nil
}

// writeBootState replaces the state file atomically.
func writeBootState(path, id string, reboots int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("boot state: %w", err)
	}
	tmp := path + ".tmp"
	data := fmt.Appendf(nil, "%s %d\n", id, reboots)
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return fmt.Errorf("boot state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("boot state: %w", err)
	}
	return nil
}

var _ Collector = (*bootCollector)(nil)
