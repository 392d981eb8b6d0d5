package backup

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vigil-sre/vigil/internal/run"
)

// Hook is a program run before or after a backup: program and arguments,
// no shell. It gets the environment of the caller plus VIGIL_BACKUP_NAME,
// VIGIL_BACKUP_KIND and, after the backup, VIGIL_BACKUP_STATUS and
// VIGIL_SNAPSHOT_ID. A nil Hook does nothing.
type Hook struct {
	Program string
	Args    []string
	// Timeout of one run. Default 5m.
	Timeout time.Duration
}

// DefaultHookTimeout bounds a hook without its own timeout.
const DefaultHookTimeout = 5 * time.Minute

// Run runs the hook; a non-zero exit, a timeout or a missing program is
// an error carrying the end of the hook's output.
func (h *Hook) Run(ctx context.Context, env map[string]string) error {
	if h == nil || h.Program == "" {
		return nil
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	extra := make([]string, 0, len(env))
	for k, v := range env {
		extra = append(extra, k+"="+v)
	}
	sort.Strings(extra)
	res := run.Run(ctx, run.Spec{
		Argv:       append([]string{h.Program}, h.Args...),
		InheritEnv: true, Env: extra,
		Timeout: timeout, MaxOutput: 4096, KeepTail: true, Combined: true,
	})
	err := res.Err
	if err == nil {
		return nil
	}
	msg := strings.TrimSpace(string(res.Stdout))
	if len(msg) > 512 {
		msg = "..." + msg[len(msg)-512:]
	}
	if msg != "" {
		return fmt.Errorf("%s: %w: %s", h.Program, err, msg)
	}
	return fmt.Errorf("%s: %w", h.Program, err)
}
