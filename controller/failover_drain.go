package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-sre/vigil/internal/route"
	"github.com/vigil-sre/vigil/internal/wire"
)

// DrainRequest asks to shift a service's traffic gradually from its
// active member to another one (POST /api/v1/drain).
type DrainRequest struct {
	Service string `json:"service"`
	// From: the active member (optional; checked when given).
	From string `json:"from"`
	// To: the member taking the traffic (optional: chosen like a failover,
	// hot before warm before cold); it is readied/started first.
	To string `json:"to"`
	// Steps: the share (1..100, increasing) of the traffic sent to To at
	// each step. A last step of 100 ends with the failover proper (fence,
	// switch, verify); a lower one leaves the split in place (a canary).
	// Default [25, 50, 75, 100].
	Steps []int `json:"steps"`
	// Pause between steps, a Go duration. Default 10s.
	Pause string `json:"pause"`
	By    string `json:"by"`
}

func (r *DrainRequest) check() (time.Duration, error) {
	if len(r.Steps) == 0 {
		r.Steps = []int{25, 50, 75, 100}
	}
	for i, w := range r.Steps {
		if w < 1 || w > 100 || i > 0 && w <= r.Steps[i-1] {
			return 0, fmt.Errorf("steps %v: want increasing shares in 1..100", r.Steps)
		}
	}
	if r.Pause == "" {
		return 10 * time.Second, nil
	}
	p, err := time.ParseDuration(r.Pause)
	if err != nil || p < 0 {
		return 0, fmt.Errorf("pause %q: want a duration like 10s", r.Pause)
	}
	return p, nil
}

// Drain moves the traffic of req.Service from its active member to
// req.To in req.Steps (route weights, same epoch, CAS), pausing between
// steps; the target must pass its health check before every step, else
// the split is undone and the drain stops. It holds the service's
// failover lock throughout (ErrFailoverBusy while another runs). When ctx
// ends mid-way the split is undone too.
func (m *failoverManager) Drain(ctx context.Context, req DrainRequest) (*FailoverResult, error) {
	pause, err := req.check()
	if err != nil {
		return nil, err
	}
	s, err := m.service(req.Service)
	if err != nil {
		return nil, err
	}
	ctx, err = m.leaderContext(ctx)
	if err != nil {
		return nil, err
	}
	l := m.lock(s.Name)
	if !l.TryLock() {
		return nil, ErrFailoverBusy
	}
	defer l.Unlock()
	kv, err := m.waitKV(ctx)
	if err != nil {
		return nil, err
	}
	e, err := route.Get(ctx, kv, s.Name)
	if err != nil {
		return nil, err
	}
	if e.State != route.StateActive || req.From != "" && req.From != e.Active {
		return nil, fmt.Errorf("%w: %s is %s %q at epoch %d (drain from %q)", route.ErrConflict, s.Name, e.State, e.Active, e.Epoch, req.From)
	}
	target, err := m.choose(s, e, req.To)
	if err != nil {
		return nil, err
	}
	if err := m.ready(ctx, s, target, e.Epoch+1); err != nil {
		return nil, fmt.Errorf("readying %s: %w", target.Name, err)
	}
	by := "operator " + req.By
	res := &FailoverResult{Service: s.Name, From: e.Active, To: target.Name, Standby: target.Standby, Epoch: e.Epoch}
	undo := func(why error) (*FailoverResult, error) {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if u, err := route.SetWeights(uctx, kv, s.Name, e.Active, e.Epoch, nil, nil, by, time.Now()); err == nil {
			m.routeHook(uctx, s, u, e.Active)
		} else {
			why = errors.Join(why, fmt.Errorf("undoing the split: %w", err))
		}
		return res, fmt.Errorf("drain of %s stopped, traffic back on %s: %w", s.Name, e.Active, why)
	}
	for i, w := range req.Steps {
		if i > 0 {
			select {
			case <-ctx.Done():
				return undo(ctx.Err())
			case <-time.After(pause):
			}
		}
		if !m.probe(ctx, s, target) {
			return undo(fmt.Errorf("%s failed its health check at step %d", target.Name, i+1))
		}
		weights := map[string]int{e.Active: 100 - w, target.Name: w}
		u, err := route.SetWeights(ctx, kv, s.Name, e.Active, e.Epoch, weights, map[string]string{target.Name: target.Endpoint}, by, time.Now())
		if err != nil {
			return undo(err)
		}
		m.log.Info("drain step", "service", s.Name, "from", e.Active, "to", target.Name, "share", w, "epoch", e.Epoch)
		if msg := m.routeHook(ctx, s, u, e.Active); msg != "" {
			res.RouteHookError = msg
		}
	}
	if last := req.Steps[len(req.Steps)-1]; last < 100 {
		res.Note = fmt.Sprintf("%d%% of the traffic on %s; the split stays until the next drain or failover", last, target.Name)
		return res, nil
	}
	now := time.Now()
	f, err := route.Fence(ctx, kv, s.Name, e.Active, route.Target{Member: target.Name, Endpoint: target.Endpoint}, e.Epoch, now, by, "drained to "+target.Name, now)
	if err != nil {
		return undo(fmt.Errorf("fencing %s: %w", e.Active, err))
	}
	return m.complete(ctx, s, f, by, false)
}

// routeHook runs hooks.route for entry e (previous: the member active
// before); it returns the failure, logged, or "".
func (m *failoverManager) routeHook(ctx context.Context, s *ServiceConfig, e route.Entry, previous string) string {
	hk := s.Hooks.Route
	if hk == nil {
		return ""
	}
	env := []string{"VIGIL_SERVICE=" + s.Name, "VIGIL_MEMBER=" + e.Active, "VIGIL_ENDPOINT=" + e.Endpoint,
		"VIGIL_EPOCH=" + strconv.FormatUint(e.Epoch, 10), "VIGIL_PREVIOUS=" + previous}
	if len(e.Weights) > 0 {
		ws := make([]string, 0, len(e.Weights))
		for mem, w := range e.Weights {
			ws = append(ws, mem+"="+strconv.Itoa(w))
		}
		sort.Strings(ws)
		env = append(env, "VIGIL_WEIGHTS="+strings.Join(ws, ","))
	}
	if err := m.runProgram(ctx, hk, env...); err != nil {
		m.log.Error("route hook failed (the route stands)", "service", s.Name, "member", e.Active, "epoch", e.Epoch, "err", err)
		return err.Error()
	}
	return ""
}

// agentStart readies or starts mc through its host's agent (service
// start: {via: agent}): a signed command with the service and the new
// epoch, answered done once the member was asked to get ready.
func (m *failoverManager) agentStart(ctx context.Context, s *ServiceConfig, mc *MemberConfig, epoch uint64) error {
	var rt *actionRuntime
	if m.disp != nil {
		rt = m.disp.cfg.rt
	}
	switch {
	case rt == nil || rt.nc == nil:
		return errors.New("start via agent: no NATS connection for host commands")
	case rt.err != nil:
		return fmt.Errorf("start via agent: %w", rt.err)
	}
	leader, ok := m.lease.Leader()
	if !ok {
		return fmt.Errorf("start via agent: %w", ErrNotLeader)
	}
	now := time.Now()
	cmd := &wire.Command{
		ID:   fmt.Sprintf("failover/%s/epoch-%d/start/%s", s.Name, epoch, mc.Name),
		Host: mc.Host, Action: s.Start.Action, Service: s.Name, Epoch: epoch,
		Params: map[string]string{"member": mc.Name, "endpoint": mc.Endpoint},
		Nonce:  newNonce(), Issued: now, Expires: now.Add(s.Start.Timeout),
	}
	if cmd.Lease = m.lease.fenceName(); cmd.Lease != "" {
		cmd.LeaderEpoch = leader // fences this start against a successor's commands
	}
	r, err := sendCommand(ctx, rt.nc, rt.kp, cmd)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("start via agent %s: no final reply within %s", mc.Host, s.Start.Timeout)
	case err != nil:
		return fmt.Errorf("start via agent %s: %w", mc.Host, err)
	case r.State != wire.ReplyDone:
		return fmt.Errorf("start via agent %s: action %s %s: %s", mc.Host, s.Start.Action, r.State, r.Error)
	}
	m.log.Info("standby started by its agent", "service", s.Name, "member", mc.Name, "host", mc.Host, "epoch", epoch)
	return nil
}

// drainRoutes adds POST /api/v1/drain (body DrainRequest; by required):
// answers the FailoverResult when the drain ended.
func (c *Controller) drainRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/drain", func(w http.ResponseWriter, r *http.Request) {
		var req DrainRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil || req.Service == "" || req.By == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": `body must be JSON {"service": "...", "from": "...", "to": "...", "steps": [25, 50, 100], "pause": "10s", "by": "<operator>"}`})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Minute)
		defer cancel()
		res, err := c.fo.Drain(ctx, req)
		writeFailoverResult(w, res, err)
	})
}
