package controller

import (
	"time"

	"github.com/vigil-sre/vigil/rules"
)

// What a follower does (lease.go holds the lease itself):
//
//   - it ingests all telemetry through its own durable consumer and runs
//     the detectors and forecasters, so its series state is warm;
//   - it evaluates the rules, so that their for/keep_firing_for clocks run
//     and a rule firing at the takeover is firing in the new leader too;
//   - it publishes no anomaly, forecast or rule events (the leader does;
//     the history holds each once) and dispatches nothing: the intent a
//     rule makes while this controller follows is held, the latest per
//     rule and subject, and dropped when the rule stops firing;
//   - history: the InfluxDB writers of all controllers share their durable
//     consumers (history.consumer), so each event is written once, by
//     whichever controller fetched it, leader or not.
//
// On taking over, the held intents of rules still firing go to the
// dispatcher as a handover: the ledger's record of the rule and subject
// tells whether the previous leader dispatched this episode already (then
// it is skipped as a duplicate) or not (then it runs, once).

// maxHeld bounds the intents held while following.
const maxHeld = 10000

func heldKey(r *rules.Rule, subject string) string {
	return r.Group + "/" + r.Name + "/" + subject
}

// onIntent hands in to the dispatcher under the current term, or holds it
// while this controller follows.
func (c *Controller) onIntent(in rules.Intent) {
	if epoch, ok := c.lease.Leader(); ok {
		in.Epoch = epoch
		c.disp.Submit(in)
		return
	}
	c.stats.HeldIntents.Add(1)
	k := heldKey(in.Rule, in.Subject)
	if _, ok := c.held[k]; ok || len(c.held) < maxHeld {
		c.held[k] = in
	}
}

// leadershipChanged runs on the owner goroutine when the lease changed
// hands: on a new term of this controller, the held intents of rules that
// still fire are handed over to the dispatcher.
func (c *Controller) leadershipChanged(now time.Time) {
	epoch, ok := c.lease.Leader()
	if !ok || epoch == c.ledEpoch {
		return
	}
	c.ledEpoch = epoch
	if len(c.held) == 0 {
		return
	}
	since := map[string]time.Time{}
	for _, st := range c.engine.States() {
		if st.State == rules.Firing {
			since[heldKey(st.Rule, st.Subject)] = st.ActiveSince
		}
	}
	n := 0
	for k, in := range c.held {
		delete(c.held, k)
		s, firing := since[k]
		if !firing {
			continue
		}
		in.Epoch = epoch
		c.disp.Handover(in, s)
		n++
	}
	c.log.Info("leader: held intents handed to the dispatcher", "epoch", epoch, "intents", n, "at", now)
}
