package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-sre/vigil/internal/run"
)

// memberHealth is the last probe of one member.
type memberHealth struct {
	Up      bool      `json:"up"`
	At      time.Time `json:"at"`
	Latency float64   `json:"latency_ms"`
	Error   string    `json:"error,omitempty"`
}

// probeClient has no connection reuse across members' restarts issues:
// keep-alives are off so a probe always opens a fresh connection.
var probeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// probe GETs the member's health path once; 2xx within health.timeout is up.
func (m *failoverManager) probe(ctx context.Context, s *ServiceConfig, mc *MemberConfig) bool {
	ctx, cancel := context.WithTimeout(ctx, s.Health.Timeout)
	defer cancel()
	start := time.Now()
	h := &memberHealth{At: start}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(mc.Endpoint, "/")+s.Health.Path, nil)
	if err == nil {
		var resp *http.Response
		resp, err = probeClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
	}
	h.Up = err == nil
	h.Latency = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		h.Error = err.Error()
	}
	m.mu.Lock()
	m.health[s.Name+"/"+mc.Name] = h
	m.mu.Unlock()
	return h.Up
}

// probeAll probes every member of s at once.
func (m *failoverManager) probeAll(ctx context.Context, s *ServiceConfig) map[string]bool {
	up := make(map[string]bool, len(s.Members))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range s.Members {
		mc := &s.Members[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := m.probe(ctx, s, mc)
			mu.Lock()
			up[mc.Name] = ok
			mu.Unlock()
		}()
	}
	wg.Wait()
	return up
}

// healthy: the member's last probe, at most three intervals old, was up.
func (m *failoverManager) healthy(s *ServiceConfig, mc *MemberConfig) bool {
	m.mu.Lock()
	h := m.health[s.Name+"/"+mc.Name]
	m.mu.Unlock()
	return h != nil && h.Up && time.Since(h.At) <= 3*s.Health.Interval
}

// ready gets target ready for traffic: a hot standby is (when its last
// probe was up; else it is probed once); a warm one is readied and a
// cold one started by their hooks, then waited for until its health check
// passes (ready_timeout).
func (m *failoverManager) ready(ctx context.Context, s *ServiceConfig, target *MemberConfig, epoch uint64) error {
	if m.healthy(s, target) && target.Standby != StandbyWarm {
		return nil
	}
	switch target.Standby {
	case StandbyWarm:
		if s.viaAgent() {
			if err := m.agentStart(ctx, s, target, epoch); err != nil {
				return err
			}
		} else if err := m.runHook(ctx, s, s.Hooks.Ready, target, epoch); err != nil {
			return fmt.Errorf("ready hook: %w", err)
		}
	case StandbyCold:
		switch {
		case m.probe(ctx, s, target): // already running
		case s.viaAgent():
			if err := m.agentStart(ctx, s, target, epoch); err != nil {
				return err
			}
		default:
			if err := m.runHook(ctx, s, s.Hooks.Start, target, epoch); err != nil {
				return fmt.Errorf("start hook: %w", err)
			}
		}
	}
	return m.waitHealthy(ctx, s, target, s.ReadyTimeout)
}

// waitHealthy probes target until it is up or wait passed.
func (m *failoverManager) waitHealthy(ctx context.Context, s *ServiceConfig, target *MemberConfig, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	every := max(s.Health.Interval/4, 10*time.Millisecond)
	for {
		if m.probe(ctx, s, target) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy within %s", target.Name, wait)
		case <-time.After(every):
		}
	}
}

// verify: the new primary passes one of health.failures probes after the
// switch.
func (m *failoverManager) verify(ctx context.Context, s *ServiceConfig, target *MemberConfig) bool {
	for i := 0; i < s.Health.Failures; i++ {
		if m.probe(ctx, s, target) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(s.Health.Interval):
		}
	}
	return false
}

// runHook runs hk for member mc without a shell, in its own process group
// (killed on timeout), with actions.pass_env and the VIGIL_* variables.
func (m *failoverManager) runHook(ctx context.Context, s *ServiceConfig, hk *HookConfig, mc *MemberConfig, epoch uint64) error {
	if hk == nil {
		return errors.New("no hook configured")
	}
	return m.runProgram(ctx, hk, "VIGIL_SERVICE="+s.Name, "VIGIL_MEMBER="+mc.Name, "VIGIL_MEMBER_HOST="+mc.Host,
		"VIGIL_ENDPOINT="+mc.Endpoint, "VIGIL_EPOCH="+strconv.FormatUint(epoch, 10))
}

// runProgram runs hk with actions.pass_env and env, killing its process
// group on timeout.
func (m *failoverManager) runProgram(ctx context.Context, hk *HookConfig, env ...string) error {
	res := run.Run(ctx, run.Spec{
		Argv:    append([]string{hk.Program}, hk.Args...),
		PassEnv: m.actions.passEnv(), Env: env,
		Timeout: hk.Timeout, MaxOutput: 4096, Combined: true, WaitDelay: 2 * time.Second,
	})
	if res.Err != nil {
		out := string(res.Stdout)
		if res.StdoutTruncated {
			out += "\n[output truncated]"
		}
		return fmt.Errorf("%s: %w: %s", hk.Program, res.Err, strings.TrimSpace(out))
	}
	return nil
}
