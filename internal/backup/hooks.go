package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
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
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.Program, h.Args...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %s", timeout)
	}
	msg := strings.TrimSpace(out.String())
	if len(msg) > 512 {
		msg = "..." + msg[len(msg)-512:]
	}
	if msg != "" {
		return fmt.Errorf("%s: %w: %s", h.Program, err, msg)
	}
	return fmt.Errorf("%s: %w", h.Program, err)
}
