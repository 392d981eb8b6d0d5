package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/vigil-sre/vigil/internal/route"
	"github.com/vigil-sre/vigil/rules"
)

// failoverAction fails a service over (rule `action: {kind: failover,
// params: {service: NAME, to: MEMBER}}`; to is optional: a standby is
// chosen, hot before warm before cold). The fault is taken as detected
// when the rule fired, so the recorded RTO runs from there to the switch.
// It is idempotent per intent: a service whose route already moved on is
// not failed over twice by one intent (the dispatcher runs a key once, and
// the route's CAS refuses a stale epoch).
type failoverAction struct {
	service, to string
	mgr         *failoverManager
}

func validateFailoverParams(p map[string]string) error {
	for k := range p {
		if k != "service" && k != "to" {
			return fmt.Errorf("failover: unknown param %q (service, to)", k)
		}
	}
	if err := route.ValidService(p["service"]); err != nil {
		return fmt.Errorf("failover: params.service: %w", err)
	}
	return nil
}

func newFailoverAction(spec *rules.Action, cfg ActionsConfig) (Action, error) {
	if err := validateFailoverParams(spec.Params); err != nil {
		return nil, fmt.Errorf("action %q: %w", spec.Name, err)
	}
	if cfg.failover == nil {
		return nil, fmt.Errorf("action %q: failover is not available here", spec.Name)
	}
	if _, err := cfg.failover.service(spec.Params["service"]); err != nil {
		return nil, fmt.Errorf("action %q: %w (services: in the controller config)", spec.Name, err)
	}
	return &failoverAction{service: spec.Params["service"], to: spec.Params["to"], mgr: cfg.failover}, nil
}

func (a *failoverAction) Kind() string { return "failover" }

func (a *failoverAction) Execute(ctx context.Context, in rules.Intent) (Outcome, error) {
	by := "rule " + in.Key
	res, err := a.mgr.Failover(ctx, a.service, a.to, by, "rule "+ruleName(in), in.At)
	if err != nil {
		return Outcome{Status: OutcomeFailure, Output: err.Error()}, err
	}
	return Outcome{Status: OutcomeSuccess, Output: fmt.Sprintf("%s: %s -> %s at epoch %d, rto %.3fs", res.Service, res.From, res.To, res.Epoch, res.RTOSeconds)}, nil
}

func ruleName(in rules.Intent) string {
	if in.Rule == nil {
		return ""
	}
	return in.Rule.Group + "/" + in.Rule.Name
}

// RouteStatus is a service's route and its members' last probes.
type RouteStatus struct {
	Route   route.Entry              `json:"route"`
	Members map[string]*memberHealth `json:"members"`
}

// Routes returns the route and member health of every service.
func (m *failoverManager) Routes(ctx context.Context) ([]RouteStatus, error) {
	kv, err := m.waitKV(ctx)
	if err != nil {
		return nil, err
	}
	var out []RouteStatus
	for i := range m.svcs {
		s := &m.svcs[i]
		e, err := route.Get(ctx, kv, s.Name)
		if err != nil {
			return nil, err
		}
		rs := RouteStatus{Route: e, Members: map[string]*memberHealth{}}
		m.mu.Lock()
		for _, mc := range s.Members {
			if h := m.health[s.Name+"/"+mc.Name]; h != nil {
				c := *h
				rs.Members[mc.Name] = &c
			}
		}
		m.mu.Unlock()
		out = append(out, rs)
	}
	return out, nil
}

// failoverRoutes adds the failover API:
//
//	GET  /api/v1/routes    every service's route and its members' health
//	POST /api/v1/failover  {"service": S, "to": M (optional), "by": NAME}
//	                       fail S over now (an operator's command needs no
//	                       further approval); answers the FailoverResult
func (c *Controller) failoverRoutes(mux *http.ServeMux) {
	c.drainRoutes(mux) // POST /api/v1/drain (failover_drain.go)
	mux.HandleFunc("GET /api/v1/routes", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		rs, err := c.fo.Routes(ctx)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, rs)
	})
	mux.HandleFunc("POST /api/v1/failover", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Service, To, By string }
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil || req.Service == "" || req.By == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": `body must be JSON {"service": "...", "to": "<member, optional>", "by": "<operator>"}`})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Minute)
		defer cancel()
		res, err := c.fo.Failover(ctx, req.Service, req.To, "operator "+req.By, "manual failover by "+req.By, time.Time{})
		writeFailoverResult(w, res, err)
	})
}

// writeFailoverResult answers a failover or drain request: 409 when another
// one holds the service or the route changed under it, 400 when nothing
// was attempted, otherwise 200 with the result (and the error, if any).
func writeFailoverResult(w http.ResponseWriter, res *FailoverResult, err error) {
	switch {
	case errors.Is(err, ErrFailoverBusy) || errors.Is(err, route.ErrConflict):
		writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "result": res})
	case err != nil && res == nil:
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
	case err != nil:
		writeJSON(w, http.StatusOK, map[string]any{"error": err.Error(), "result": res})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"result": res})
	}
}

func init() {
	registerAction("failover", newFailoverAction)
	rules.RegisterActionKind("failover", validateFailoverParams)
}

var _ Action = (*failoverAction)(nil)
