package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/vigil-sre/vigil/rules"
)

// Handler serves the controller's HTTP API:
//
//	GET  /healthz               liveness
//	GET  /api/v1/status         hosts and rule states (JSON)
//	POST /api/v1/rules/reload   reload rule files (400 with every error if they do not load)
//	GET  /api/v1/actions        recent actions with their state, newest first
//	POST /api/v1/actions/approve {"key": K, "by": NAME}           run an action awaiting approval
//	POST /api/v1/actions/deny    {"key": K, "by": NAME, "reason": R} drop it
//	     (any controller: the decision is recorded in the action ledger first;
//	     200 when this controller carried it out, 202 when the leader will,
//	     404 nothing awaits approval under K, 409 decided already, 503 the
//	     decision could not be recorded: nothing done, try again)
//	GET  /api/v1/routes         services' routes and member health
//	POST /api/v1/failover        {"service": S, "to": M, "by": NAME} fail over now
//	GET  /metrics               Prometheus text exposition of the counters
//
// The API does not authenticate its callers: keep api.listen on loopback
// or behind an authenticating proxy (README, "Who may approve").
func (c *Controller) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		st, err := c.Status(ctx)
		if err != nil {
			http.Error(w, "status: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST /api/v1/rules/reload", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		if err := c.Reload(ctx); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
	})
	mux.HandleFunc("GET /api/v1/actions", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, c.disp.records.list())
	})
	decide := func(approve bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var req struct{ Key, By, Reason string }
			if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil || req.Key == "" || req.By == "" {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": `body must be JSON {"key": "...", "by": "<operator>"}`})
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
			defer cancel()
			acted, err := c.disp.Decide(ctx, req.Key, req.By, req.Reason, approve)
			verdict := "denied"
			if approve {
				verdict = "approved"
			}
			switch {
			case errors.Is(err, ErrNoSuchApproval):
				writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			case errors.Is(err, ErrAlreadyDecided):
				writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
			case err != nil:
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			case acted:
				writeJSON(w, http.StatusOK, map[string]string{"status": verdict, "key": req.Key})
			default: // recorded in the ledger; the leader carries it out
				note := "recorded in the action ledger: the leader carries it out"
				if ln := c.disp.leaderNote(); ln != "" {
					note += " (" + ln + ")"
				}
				status := "denial recorded"
				if approve {
					status = "approval recorded"
				}
				writeJSON(w, http.StatusAccepted, map[string]string{"status": status, "key": req.Key, "note": note})
			}
		}
	}
	mux.HandleFunc("POST /api/v1/actions/approve", decide(true))
	mux.HandleFunc("POST /api/v1/actions/deny", decide(false))
	c.failoverRoutes(mux) // GET /api/v1/routes, POST /api/v1/failover (failover_action.go)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		c.writeMetrics(w)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ServeAPI serves Handler on addr until ctx ends.
func (c *Controller) ServeAPI(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("api listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	c.log.Info("api listening", "addr", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}

func (c *Controller) writeMetrics(w io.Writer) {
	s := &c.stats
	m := []struct {
		name, help string
		v          float64
	}{
		{"vigil_telemetry_messages_total", "Telemetry batches consumed.", float64(s.Messages.Load())},
		{"vigil_telemetry_points_total", "Line-protocol points accepted.", float64(s.Points.Load())},
		{"vigil_telemetry_samples_total", "Numeric samples fed to detectors.", float64(s.Samples.Load())},
		{"vigil_telemetry_malformed_lines_total", "Malformed line-protocol lines skipped.", float64(s.MalformedLines.Load())},
		{"vigil_telemetry_oversize_batches_total", "Telemetry batches over the size limit, dropped.", float64(s.Oversize.Load())},
		{"vigil_telemetry_non_numeric_fields_total", "String fields, NaN and Inf values not fed to detectors.", float64(s.NonNumeric.Load())},
		{"vigil_telemetry_series_limit_total", "Samples refused because their host reached its series limit.", float64(s.SeriesLimit.Load())},
		{"vigil_telemetry_gaps_total", "Batches missing according to Vigil-Seq.", float64(s.Gaps.Load())},
		{"vigil_telemetry_duplicates_total", "Batches received again (same or older Vigil-Seq).", float64(s.Duplicates.Load())},
		{"vigil_anomalies_total", "Anomaly events recorded.", float64(s.Anomalies.Load())},
		{"vigil_predictions_total", "Forecast predictions started.", float64(s.Predictions.Load())},
		{"vigil_rule_evaluation_rounds_total", "Rule evaluation rounds.", float64(s.Evaluations.Load())},
		{"vigil_rule_triggered_rounds_total", "Evaluations of the rules whose series took samples, right after telemetry.", float64(s.TriggeredRounds.Load())},
		{"vigil_rule_evaluation_seconds_total", "Time spent evaluating rules.", float64(s.EvalNanoseconds.Load()) / 1e9},
		{"vigil_rule_reloads_total", "Successful rule reloads.", float64(s.RuleReloads.Load())},
		{"vigil_rule_reload_errors_total", "Rule reloads refused because the files did not load.", float64(s.RuleLoadErrors.Load())},
		{"vigil_events_published_total", "Events acknowledged by the events stream.", float64(c.pub.published.Load())},
		{"vigil_events_dropped_total", "Events dropped (queue full or shutdown).", float64(c.pub.dropped.Load())},
		{"vigil_events_publish_retries_total", "Event batches re-sent after a failed publish.", float64(c.pub.retries.Load())},
		{"vigil_actions_submitted_total", "Intents handed to the dispatcher.", float64(c.disp.submitted.Load())},
		{"vigil_actions_started_total", "Actions started.", float64(c.disp.started.Load())},
		{"vigil_actions_succeeded_total", "Actions that succeeded.", float64(c.disp.succeeded.Load())},
		{"vigil_actions_failed_total", "Actions that failed or timed out.", float64(c.disp.failed.Load())},
		{"vigil_actions_skipped_total", "Intents not run: duplicate, cooldown, dry run or rejected.", float64(c.disp.skipped.Load())},
		{"vigil_actions_ledger_errors_total", "Claims in the action ledger that failed (ledger unreachable).", float64(c.disp.ledgerErrors.Load())},
		{"vigil_actions_deferred_total", "Automatic actions that waited for an unreachable action ledger.", float64(c.disp.deferredTotal.Load())},
		{"vigil_actions_abandoned_total", "Ledger entries an earlier term left pending, awaiting approval, running or retrying, marked abandoned (never re-run).", float64(c.disp.abandoned.Load())},
	}
	for _, x := range m {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %g\n", x.name, x.help, x.name, x.name, x.v)
	}
	fmt.Fprintf(w, "# HELP vigil_actions_ledger_deferred Automatic actions waiting now for the action ledger to be reachable.\n# TYPE vigil_actions_ledger_deferred gauge\nvigil_actions_ledger_deferred %d\n", c.disp.deferredNow.Load())
	c.writeLeaderMetrics(w)
	hosts, counts := c.hostSeqs.snapshot()
	for i, fam := range [2]struct{ name, help string }{
		{"vigil_telemetry_host_gaps_total", "Batches missing according to Vigil-Seq, per host (subject token)."},
		{"vigil_telemetry_host_duplicates_total", "Batches received again (same or older Vigil-Seq), per host."},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", fam.name, fam.help, fam.name)
		for j, h := range hosts {
			fmt.Fprintf(w, "%s{host=%q} %d\n", fam.name, h, counts[j][i])
		}
	}
	c.writeRuleMetrics(w)
	if c.history == nil {
		return
	}
	hs := c.history.Stats()
	streams := []struct {
		name string
		s    HistoryStreamStats
	}{{"events", hs.Events}, {"telemetry", hs.Telemetry}}
	hm := []struct {
		name, help, typ string
		v               func(HistoryStreamStats) uint64
	}{
		{"vigil_history_points_total", "Points written to InfluxDB.", "counter", func(s HistoryStreamStats) uint64 { return s.Points }},
		{"vigil_history_batches_total", "Writes accepted by InfluxDB.", "counter", func(s HistoryStreamStats) uint64 { return s.Batches }},
		{"vigil_history_retries_total", "Writes retried after a failure.", "counter", func(s HistoryStreamStats) uint64 { return s.Retries }},
		{"vigil_history_rejected_total", "Messages InfluxDB refused as bad data (terminated).", "counter", func(s HistoryStreamStats) uint64 { return s.Rejected }},
		{"vigil_history_malformed_lines_total", "Malformed telemetry lines not written.", "counter", func(s HistoryStreamStats) uint64 { return s.Malformed }},
		{"vigil_history_lag_messages", "Messages not yet written (pending and in flight).", "gauge", func(s HistoryStreamStats) uint64 { return s.Lag() }},
	}
	for _, x := range hm {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", x.name, x.help, x.name, x.typ)
		for _, st := range streams {
			fmt.Fprintf(w, "%s{stream=%q} %d\n", x.name, st.name, x.v(st.s))
		}
	}
}

// writeRuleMetrics exports the rule engine's counters per rule.
func (c *Controller) writeRuleMetrics(w io.Writer) {
	st := c.ruleStats.Load()
	if st == nil || len(st.Rules) == 0 {
		return
	}
	per := []struct {
		name, help string
		v          func(r *rules.RuleStats) float64
	}{
		{"vigil_rule_evaluations_total", "Evaluations of a rule (one per subject per round, and those after new data).", func(r *rules.RuleStats) float64 { return float64(r.Evaluations) }},
		{"vigil_rule_triggered_evaluations_total", "Evaluations of a rule made right after its series took samples (part of vigil_rule_evaluations_total).", func(r *rules.RuleStats) float64 { return float64(r.Triggered) }},
		{"vigil_rule_errors_total", "Evaluations that failed with a runtime error.", func(r *rules.RuleStats) float64 { return float64(r.Errors) }},
		{"vigil_rule_nodata_total", "Evaluations that found no data.", func(r *rules.RuleStats) float64 { return float64(r.NoData) }},
		{"vigil_rule_transitions_total", "State changes of a rule on its subjects.", func(r *rules.RuleStats) float64 { return float64(r.Transitions) }},
		{"vigil_rule_intents_total", "Action intents a rule made.", func(r *rules.RuleStats) float64 { return float64(r.Intents) }},
		{"vigil_rule_suppressed_total", "Intents not made because the rule was flapping.", func(r *rules.RuleStats) float64 { return float64(r.Suppressed) }},
		{"vigil_rule_template_errors_total", "Label or annotation renderings that failed.", func(r *rules.RuleStats) float64 { return float64(r.TemplateErrors) }},
		{"vigil_rule_evaluation_time_seconds_total", "Time spent evaluating a rule.", func(r *rules.RuleStats) float64 { return r.EvalTime.Seconds() }},
	}
	for _, m := range per {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", m.name, m.help, m.name)
		for i := range st.Rules {
			r := &st.Rules[i]
			fmt.Fprintf(w, "%s{group=%q,rule=%q} %g\n", m.name, r.Group, r.Rule, m.v(r))
		}
	}
}

// writeLeaderMetrics exports the leader lease: vigil_leader (1 while this
// controller leads), vigil_leader_epoch, vigil_leader_transitions_total,
// and what this controller did with the events and intents it made while
// following.
func (c *Controller) writeLeaderMetrics(w io.Writer) {
	ls := c.lease.status()
	lead := 0
	if ls.Leader {
		lead = 1
	}
	fmt.Fprintf(w, "# HELP vigil_leader 1 while this controller holds the leader lease.\n# TYPE vigil_leader gauge\nvigil_leader %d\n", lead)
	fmt.Fprintf(w, "# HELP vigil_leader_epoch Epoch (fencing token) of this controller's term, or of the holder's last seen.\n# TYPE vigil_leader_epoch gauge\nvigil_leader_epoch %d\n", ls.Epoch)
	fmt.Fprintf(w, "# HELP vigil_leader_transitions_total Times this controller acquired or lost the lease.\n# TYPE vigil_leader_transitions_total counter\nvigil_leader_transitions_total %d\n", ls.Transitions)
	fmt.Fprintf(w, "# HELP vigil_follower_events_total Events made while this controller followed (kept or dropped).\n# TYPE vigil_follower_events_total counter\nvigil_follower_events_total %d\n", c.stats.FollowerEvents.Load())
	fmt.Fprintf(w, "# HELP vigil_follower_events_kept Events kept while following after losing the lease without seeing another holder, to publish on leading again.\n# TYPE vigil_follower_events_kept gauge\nvigil_follower_events_kept %d\n", c.stats.LapseKept.Load())
	fmt.Fprintf(w, "# HELP vigil_follower_events_resumed_total Kept events published on leading again (nobody else led in between).\n# TYPE vigil_follower_events_resumed_total counter\nvigil_follower_events_resumed_total %d\n", c.stats.LapseResumed.Load())
	fmt.Fprintf(w, "# HELP vigil_follower_events_discarded_total Kept events discarded because another controller may have led in between.\n# TYPE vigil_follower_events_discarded_total counter\nvigil_follower_events_discarded_total %d\n", c.stats.LapseDiscarded.Load())
	fmt.Fprintf(w, "# HELP vigil_follower_events_overflow_total Events not kept because the buffer of kept events was full.\n# TYPE vigil_follower_events_overflow_total counter\nvigil_follower_events_overflow_total %d\n", c.stats.LapseOverflow.Load())
	fmt.Fprintf(w, "# HELP vigil_follower_intents_total Intents held because this controller followed.\n# TYPE vigil_follower_intents_total counter\nvigil_follower_intents_total %d\n", c.stats.HeldIntents.Load())
}
