package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-sre/vigil/internal/run"
)

// Command is a program run with arguments, never through a shell, bounded
// by Timeout (default 60s). It is the restart hook, and may be a health
// check.
type Command struct {
	Program string
	Args    []string
	Timeout time.Duration
	// Env is added to the program's environment (KEY=value).
	Env []string
}

// Run runs the program; a non-zero exit, a timeout or a failure to start
// is an error carrying the tail of its output.
func (c Command) Run(ctx context.Context) error {
	if c.Program == "" {
		return errors.New("no program")
	}
	t := c.Timeout
	if t <= 0 {
		t = 60 * time.Second
	}
	res := run.Run(ctx, run.Spec{
		Argv:       append([]string{c.Program}, c.Args...),
		InheritEnv: true, Env: c.Env,
		Timeout: t, MaxOutput: 2048, KeepTail: true, Combined: true,
	})
	if res.TimedOut || ctx.Err() != nil {
		return fmt.Errorf("%s: timed out after %s", c.Program, t)
	}
	if err := res.Err; err != nil {
		if tail := strings.TrimSpace(string(res.Stdout)); tail != "" {
			return fmt.Errorf("%s: %w: %s", c.Program, err, tail)
		}
		return fmt.Errorf("%s: %w", c.Program, err)
	}
	return nil
}

// HealthCheck verifies a service: an HTTP GET of URL answered with a 2xx
// status, or Command exiting 0. Each attempt is bounded by Timeout
// (default 5s); up to Retries more attempts (default 0) follow a failure,
// Interval (default 1s) apart.
type HealthCheck struct {
	URL     string
	Command Command
	Timeout time.Duration
	Retries int
	// Interval between attempts.
	Interval time.Duration
	// Client for URL; default a client without keep-alives.
	Client *http.Client
}

// Check runs the check until an attempt succeeds or the attempts run out;
// the error is the last attempt's.
func (h HealthCheck) Check(ctx context.Context) error {
	iv := h.Interval
	if iv <= 0 {
		iv = time.Second
	}
	var err error
	for i := 0; i <= max(h.Retries, 0); i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w (last attempt: %v)", ctx.Err(), err)
			case <-time.After(iv):
			}
		}
		if err = h.once(ctx); err == nil {
			return nil
		}
	}
	if h.Retries > 0 {
		return fmt.Errorf("%d attempts: %w", h.Retries+1, err)
	}
	return err
}

func (h HealthCheck) once(ctx context.Context) error {
	t := h.Timeout
	if t <= 0 {
		t = 5 * time.Second
	}
	if h.URL == "" {
		c := h.Command
		if c.Timeout <= 0 || c.Timeout > t {
			c.Timeout = t
		}
		return c.Run(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return fmt.Errorf("health url: %w", err)
	}
	cl := h.Client
	if cl == nil {
		cl = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	}
	resp, err := cl.Do(req)
	if err != nil {
		return fmt.Errorf("health GET %s: %w", h.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("health GET %s: status %d: %s", h.URL, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}
