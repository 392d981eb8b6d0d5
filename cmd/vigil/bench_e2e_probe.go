package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/internal/wire"
)

// e2eProber measures latency with the series probe.v of host e2e-probe, one probe at a time:
// a baseline batch (20 samples near 10, no alarm; the rule probe_high resolves), then one sample
// v = 1000+i without a timestamp, published at t0. Without a timestamp the controller stamps the
// sample with its own clock when it handles the batch, so the anomaly event's time is when the
// sample was observed (ingest latency); the rule event's time is the evaluation that fired
// (rule latency: the rule reads probe.v, so it is evaluated right after the batch, not at its
// group's next 100 ms round); the dispatcher's dry-run action
// event is stamped when the dispatcher handled the intent (dispatch latency: what a user sees).
// All clocks are this process's.
type e2eProber struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	events  chan *nats.Msg
	sub     *nats.Subscription
	futures []jetstream.PubAckFuture
	sent    []int // samples in each future's batch
	samples atomic.Uint64

	probes                 int
	ingest, rule, dispatch []time.Duration
	lastFired              bool
	lastReset              time.Time
}

func newE2EProber(url string) (*e2eProber, error) {
	nc, err := nats.Connect(url, nats.Name("vigil bench e2e prober"))
	if err != nil {
		return nil, fmt.Errorf("prober: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	p := &e2eProber{nc: nc, js: js, events: make(chan *nats.Msg, 4096)}
	p.sub, err = nc.ChanSubscribe(wire.EventsPrefix+"*."+wire.Token(e2eProbeHost), p.events)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("prober subscription: %w", err)
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return nil, err
	}
	return p, nil
}

func (p *e2eProber) close() { p.nc.Close() }

// publish sends one probe batch of n samples.
func (p *e2eProber) publish(data []byte, n int) error {
	f, err := p.js.PublishAsync(wire.TelemetrySubject(e2eProbeHost), data)
	if err != nil {
		return fmt.Errorf("probe publish: %w", err)
	}
	p.futures = append(p.futures, f)
	p.sent = append(p.sent, n)
	return nil
}

// baseline publishes 20 samples of probe.v alternating 10 and 9.9 (a gauge with a small
// spread), stamped just after now.
func (p *e2eProber) baseline() error {
	const n = 20
	ts := time.Now().UnixNano()
	var b []byte
	for j := range n {
		b = append(b, "probe,host="+e2eProbeHost+" v="...)
		b = strconv.AppendFloat(b, 10-float64(j%2)/10, 'f', 1, 64)
		b = append(b, ' ')
		b = strconv.AppendInt(b, ts+int64(j)*1000, 10)
		b = append(b, '\n')
	}
	p.lastReset = time.Now()
	return p.publish(b, n)
}

// warmUp publishes enough baseline samples for the anomaly detector's warm-up (30).
func (p *e2eProber) warmUp(context.Context) error {
	for range 3 {
		if err := p.baseline(); err != nil {
			return err
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// run probes until ctx ends, then waits for the acknowledgements of its batches.
func (p *e2eProber) run(ctx context.Context) error {
	for i := 0; ctx.Err() == nil; i++ {
		if err := p.baseline(); err != nil {
			return err
		}
		if p.lastFired {
			p.await(p.lastReset, 3*time.Second, func(ev *wire.Event) bool {
				return ev.Kind == wire.KindRule && ev.State == "resolved"
			})
		} else {
			time.Sleep(250 * time.Millisecond)
		}
		// A random phase: a failure does not wait for the evaluation tick, and the wait above
		// ends just after an evaluation, which would bias every probe to a full tick.
		time.Sleep(rand.N(250 * time.Millisecond))
		if ctx.Err() != nil {
			break
		}
		if err := p.spike(1000 + float64(i)); err != nil {
			return err
		}
	}
	select {
	case <-p.js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
	}
	for i, f := range p.futures {
		select {
		case <-f.Ok():
			p.samples.Add(uint64(p.sent[i]))
		default:
		}
	}
	return nil
}

// spike publishes the probe sample v and waits (≤ 5 s) for its three events.
func (p *e2eProber) spike(v float64) error {
	b := append([]byte("probe,host="+e2eProbeHost+" v="), strconv.FormatFloat(v, 'f', 1, 64)...)
	b = append(b, '\n')
	t0 := time.Now()
	if err := p.publish(b, 1); err != nil {
		return err
	}
	p.probes++
	var got [3]bool
	p.lastFired = false
	p.await(t0, 5*time.Second, func(ev *wire.Event) bool {
		switch {
		case ev.Kind == wire.KindAnomaly && ev.Value == v && !got[0]:
			got[0] = true
			p.ingest = append(p.ingest, ev.Time.Sub(t0))
		case ev.Kind == wire.KindRule && ev.State == "firing" && !got[1]:
			got[1], p.lastFired = true, true
			p.rule = append(p.rule, ev.Time.Sub(t0))
		case ev.Kind == wire.KindAction && ev.State == "skipped" && ev.Outcome == "dry_run" && !got[2]:
			got[2] = true
			p.dispatch = append(p.dispatch, ev.Time.Sub(t0))
		}
		return got[0] && got[1] && got[2]
	})
	return nil
}

// await reads the probe host's events stamped at or after since until done says so or the
// timeout passes.
func (p *e2eProber) await(since time.Time, timeout time.Duration, done func(*wire.Event) bool) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return
		case m := <-p.events:
			var ev wire.Event
			if json.Unmarshal(m.Data, &ev) != nil || ev.Time.Before(since) {
				continue
			}
			if done(&ev) {
				return
			}
		}
	}
}

// summarise returns percentiles in milliseconds of the probes' latencies.
func summarise(d []time.Duration, probes int) e2eLatency {
	l := e2eLatency{N: len(d), Missed: probes - len(d)}
	if len(d) == 0 {
		return l
	}
	s := slices.Clone(d)
	slices.Sort(s)
	q := func(x float64) float64 {
		i := int(math.Ceil(x*float64(len(s)))) - 1
		return float64(s[max(i, 0)]) / 1e6
	}
	l.P50, l.P90, l.P99, l.Max = q(0.5), q(0.9), q(0.99), float64(s[len(s)-1])/1e6
	return l
}
