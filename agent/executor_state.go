package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/nats-io/nkeys"
)

// leaseEpochKey is the epochStore key of a controller lease's leader
// epochs: service names cannot contain ':', so the two never collide.
func leaseEpochKey(lease string) string { return "lease:" + lease }

// epochStore keeps the newest fencing epoch seen per service (and per
// controller lease, under leaseEpochKey), in
// <state_dir>/executor-epochs.json when there is a state dir (written to
// a temporary file, synced and renamed, before the command runs), so a
// restarted agent still refuses a deposed controller's commands.
type epochStore struct {
	mu   sync.Mutex
	path string
	m    map[string]uint64
}

func openEpochStore(stateDir string) (*epochStore, error) {
	s := &epochStore{m: map[string]uint64{}}
	if stateDir == "" {
		return s, nil
	}
	s.path = filepath.Join(stateDir, executorEpochFile)
	b, err := os.ReadFile(s.path)
	switch {
	case os.IsNotExist(err):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("executor epochs: %w", err)
	}
	if err := json.Unmarshal(b, &s.m); err != nil {
		return nil, fmt.Errorf("executor epochs %s: %w", s.path, err)
	}
	if s.m == nil {
		s.m = map[string]uint64{}
	}
	return s, nil
}

func (s *epochStore) get(service string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[service]
}

// raise records the epochs of keys (services, or leases under leaseEpochKey)
// that are newer than the ones kept, persisting them first in one write;
// nothing is recorded if that write fails.
func (s *epochStore) raise(epochs map[string]uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next map[string]uint64
	for k, e := range epochs {
		if e <= s.m[k] {
			continue
		}
		if next == nil {
			next = make(map[string]uint64, len(s.m)+len(epochs))
			for k, v := range s.m {
				next[k] = v
			}
		}
		next[k] = e
	}
	if next == nil {
		return nil
	}
	if s.path != "" {
		if err := writeFileAtomic(s.path, next); err != nil {
			return fmt.Errorf("persist fencing epochs %v: %w", epochs, err)
		}
	}
	s.m = next
	return nil
}

func writeFileAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".epochs-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func validPublicKey(k string) bool {
	_, err := nkeys.FromPublicKey(k)
	return err == nil
}

// writeExecutorMetrics appends the executor's counters in the Prometheus
// text format: vigil_agent_commands_total, _commands_run_total,
// _commands_failed_total and vigil_agent_commands_rejected_total{reason}.
func writeExecutorMetrics(w io.Writer, s ExecutorStats) {
	fmt.Fprintf(w, "# HELP vigil_agent_commands_total Command envelopes received.\n# TYPE vigil_agent_commands_total counter\nvigil_agent_commands_total %d\n", s.Received)
	fmt.Fprintf(w, "# HELP vigil_agent_commands_run_total Commands run.\n# TYPE vigil_agent_commands_run_total counter\nvigil_agent_commands_run_total %d\n", s.Ran)
	fmt.Fprintf(w, "# HELP vigil_agent_commands_failed_total Commands that ran and failed.\n# TYPE vigil_agent_commands_failed_total counter\nvigil_agent_commands_failed_total %d\n", s.Failed)
	fmt.Fprintf(w, "# HELP vigil_agent_commands_rejected_total Commands refused, by reason.\n# TYPE vigil_agent_commands_rejected_total counter\n")
	reasons := make([]string, 0, len(s.Rejected))
	for r := range s.Rejected {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		fmt.Fprintf(w, "vigil_agent_commands_rejected_total{reason=%q} %d\n", r, s.Rejected[r])
	}
}
