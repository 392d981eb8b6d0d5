package controller

import (
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

// What a follower does (lease.go holds the lease itself):
//
//   - it ingests all telemetry through its own durable consumer and runs
//     the detectors and forecasters, so its series state is warm;
//   - it evaluates the rules, so that their for/keep_firing_for clocks run
//     and a rule firing at the takeover is firing in the new leader too;
//   - it publishes no anomaly, forecast or rule events (the leader does;
//     the history holds each once), but keeps them while it is in a lapse
//     (below), and dispatches nothing: the intent a
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

// The lapse: a controller that lost the lease without seeing another holder
// (its renewal failed, typically because NATS was unreachable) may well be
// the only one; before the lease, its publisher queued the events of an
// outage and published them afterwards. So it keeps the events it makes
// while following in a lapse, up to maxKeptEvents (later ones are dropped
// and counted: the kept ones are the oldest, a contiguous stretch from the
// loss of the lease). When its next term continues the line of the lost
// one (lease.go: nobody wrote the lease key in between, so nobody led),
// they are published, in order, before anything of the new term; when
// another controller is seen holding the lease, or the next term does not
// continue the line, they are discarded and counted (the other leader
// made its own events for that time).

// maxHeld bounds the intents held while following.
const maxHeld = 10000

// maxKeptEvents bounds the events kept in a lapse (the size of the events
// publisher's queue).
const maxKeptEvents = 1 << 16

// follows reports whether this controller follows, and then keeps ev for
// a term continuing its last one, or drops it. Owner goroutine.
func (c *Controller) follows(ev *wire.Event) bool {
	_, lead, line := c.lease.standing()
	c.settleLapse(lead, line)
	if lead {
		return false
	}
	c.stats.FollowerEvents.Add(1)
	switch {
	case line == 0: // another controller leads, or none of ours came before
	case len(c.lapseEvents) >= maxKeptEvents:
		c.stats.LapseOverflow.Add(1)
	default:
		c.lapseLine = line
		c.lapseEvents = append(c.lapseEvents, ev)
		c.stats.LapseKept.Store(int64(len(c.lapseEvents)))
	}
	return true
}

// settleLapse publishes the kept events when this controller leads on their
// line again, and discards them when that can no longer happen.
func (c *Controller) settleLapse(lead bool, line uint64) {
	n := len(c.lapseEvents)
	if n == 0 || (!lead && line == c.lapseLine) {
		return
	}
	if lead && line == c.lapseLine {
		for _, ev := range c.lapseEvents {
			c.publishEvent(ev)
		}
		c.stats.LapseResumed.Add(uint64(n))
		c.log.Info("leader again, nobody led in between: events made while following published", "events", n)
	} else {
		c.stats.LapseDiscarded.Add(uint64(n))
		c.log.Warn("another controller may have led: events made while following discarded", "events", n)
	}
	c.lapseEvents, c.lapseLine = nil, 0
	c.stats.LapseKept.Store(0)
}

// lapseAtShutdown reports kept events that no term of this process will
// publish.
func (c *Controller) lapseAtShutdown() {
	if n := len(c.lapseEvents); n > 0 {
		c.log.Warn("shutdown while following: events kept for the next term not published", "events", n)
	}
}

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
// hands: the events kept in a lapse are published or discarded once that is
// decided; on a new term of this controller, the held intents of rules
// that still fire are handed over to the dispatcher.
func (c *Controller) leadershipChanged(now time.Time) {
	epoch, ok, line := c.lease.standing()
	c.settleLapse(ok, line)
	if !ok || epoch == c.ledEpoch {
		return
	}
	c.ledEpoch = epoch
	c.disp.NewTerm(epoch) // what older terms left unsettled in the ledger is abandoned
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
