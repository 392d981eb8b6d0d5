package agent

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/vigil-sre/vigil/internal/wire"
)

// HostAction is an action the agent runs on its own host when the
// controller asks for it with a signed command (vigil.cmd.<host>): a
// backup, a restore, a rollback, starting or fencing a service. Only
// actions enabled in the agent's config exist; the command names one and
// carries its declared parameters, never a program to run.
type HostAction interface {
	// Name is the action's name in commands and in the config.
	Name() string
	// Params lists the parameters a command may carry; any other is
	// refused before Run.
	Params() []string
	// Run carries out cmd. It reports progress (0..1) as it goes and
	// returns a small result map (e.g. snapshot id, bytes, duration) or an
	// error. It must honour ctx (the command's expiry and the agent's
	// shutdown) and be idempotent for one cmd.ID.
	Run(ctx context.Context, cmd *wire.Command, progress func(frac float64, msg string)) (map[string]string, error)
}

// HostActions holds the host actions an agent offers, by name.
type HostActions struct {
	mu sync.Mutex
	m  map[string]HostAction
}

// Add offers a; a second action with the same name is an error.
func (h *HostActions) Add(a HostAction) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]HostAction{}
	}
	if _, dup := h.m[a.Name()]; dup {
		return fmt.Errorf("host action %q offered twice", a.Name())
	}
	h.m[a.Name()] = a
	return nil
}

// Get returns the action called name.
func (h *HostActions) Get(name string) (HostAction, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	a, ok := h.m[name]
	return a, ok
}

// Names lists the offered actions, sorted.
func (h *HostActions) Names() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.m))
	for n := range h.m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
