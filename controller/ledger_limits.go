package controller

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/vigil-sre/vigil/rules"
)

// rateLimits counts action starts in a sliding minute, controller-wide
// and per rule. Owned by the dispatcher's Run goroutine.
type rateLimits struct {
	all    []time.Time
	byRule map[string][]time.Time
}

// allow records a start of rule at now, or says why it exceeds a limit.
func (r *rateLimits) allow(s Safety, rule string, now time.Time) string {
	if r.byRule == nil {
		r.byRule = map[string][]time.Time{}
	}
	r.all = recent(r.all, now)
	rs := recent(r.byRule[rule], now)
	if s.MaxPerMinute > 0 && len(r.all) >= s.MaxPerMinute {
		r.byRule[rule] = rs
		return fmt.Sprintf("rate limit: %d actions started in the last minute (actions.max_per_minute)", len(r.all))
	}
	if s.RuleMaxPerMinute > 0 && len(rs) >= s.RuleMaxPerMinute {
		r.byRule[rule] = rs
		return fmt.Sprintf("rate limit: rule %s started %d actions in the last minute (actions.rule_max_per_minute)", rule, len(rs))
	}
	r.all = append(r.all, now)
	r.byRule[rule] = append(rs, now)
	if len(r.byRule) > 4096 {
		for k, v := range r.byRule {
			if len(recent(v, now)) == 0 {
				delete(r.byRule, k)
			}
		}
	}
	return ""
}

func recent(ts []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= time.Minute {
		i++
	}
	return ts[i:]
}

// retriesOf is the number of retries for in: the action's params.retries
// when set, else actions.retries.
func retriesOf(s Safety, in rules.Intent) int {
	if a := in.Rule.Action; a != nil {
		if v, ok := a.Params["retries"]; ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				return min(n, maxRetries)
			}
		}
	}
	return s.Retries
}

// attempt runs act with retries and exponential backoff; a retry waits
// unless the dispatcher is stopping.
func (d *dispatcher) attempt(ctx context.Context, act Action, in rules.Intent) (Outcome, int, error) {
	retries := retriesOf(d.cfg.Safety, in)
	for n := 1; ; n++ {
		try := in
		if n > 1 {
			try.Key = in.Key + "#retry" + strconv.Itoa(n-1)
		}
		o, err := act.Execute(ctx, try)
		if err == nil || n > retries {
			return o, n, err
		}
		if !d.lease.leads(in.Epoch) { // a new leader may have abandoned it; it decides
			return o, n, fmt.Errorf("%w (no retry: this controller no longer leads at epoch %d)", err, in.Epoch)
		}
		wait := d.cfg.retryBackoff(n)
		d.log.Warn("action failed, retrying", "rule", in.Rule.Name, "host", in.Subject, "attempt", n, "retry_in", wait, "err", err)
		if d.ledger != nil {
			d.ledger.set(in, "retrying", n, err.Error(), d.now())
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-d.stopping:
			t.Stop()
			return o, n, fmt.Errorf("%w (no retry: controller stopping)", err)
		}
	}
}
