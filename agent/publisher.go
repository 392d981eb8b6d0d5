package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/internal/wire"
)

// publisher sends the backlog's batches, oldest first and one at a time,
// to JetStream on wire.TelemetrySubject(host), each with the headers
// Vigil-Run, Vigil-Seq and Nats-Msg-Id = wire.MsgID(host, run, seq). A batch
// leaves the backlog only when JetStream acknowledged it; a failed or
// unacknowledged publication is retried with the same headers (JetStream
// drops the duplicate if an earlier attempt did arrive), after a backoff or
// as soon as the connection is back. While disconnected it does not publish
// at all, so the client's reconnect buffer holds at most the batch that was
// in flight when the connection broke.
//
// With a spool (spool.go), an outage moves the backlog to disk and new
// batches go there too until the spool is empty again; the spool's
// batches, which are always older than those in memory, are sent first,
// each with the run, seq and Nats-Msg-Id it was made with, so a restarted
// agent re-sends its predecessor's batches exactly as they would have been
// sent. At shutdown what is left in memory goes to the spool.
type publisher struct {
	log     *slog.Logger
	host    string
	runID   string
	subject string
	timeout time.Duration
	q       *backlog

	nc *nats.Conn
	js jetstream.JetStream

	wake chan struct{} // a batch was queued
	up   chan struct{} // the connection is (back) up

	published, acked, duplicates, resent, errs, dropped atomic.Uint64
	dropLogged                                          atomic.Bool
	// outage: a publication failed or the connection broke, and no
	// acknowledgement came since; new batches go to the spool.
	outage   atomic.Bool
	connErr  atomic.Pointer[string] // last failed connection attempt's error
	failing  bool                   // sender goroutine only
	sp       *spool                 // nil: no disk spool
	spoolErr bool                   // tick loop only: the spool is failing
}

const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

func newPublisher(host, run string, cfg Config, log *slog.Logger) *publisher {
	return &publisher{
		log:     log,
		host:    host,
		runID:   run,
		subject: wire.TelemetrySubject(host),
		timeout: cfg.Publish.Timeout,
		q:       newBacklog(cfg.Publish.MaxPendingBatches),
		wake:    make(chan struct{}, 1),
		up:      make(chan struct{}, 1),
	}
}

// connect opens the NATS connection. It reconnects forever, and also
// retries a first connection that fails, so the agent starts (and keeps
// its backlog) while NATS is away.
func (p *publisher) connect(n NATSConfig) error {
	opts := []nats.Option{
		nats.Name(n.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(n.ReconnectWait),
		nats.ReconnectBufSize(n.ReconnectBuffer),
		nats.RetryOnFailedConnect(true),
		nats.ConnectHandler(func(c *nats.Conn) {
			p.log.Info("nats connected", "url", c.ConnectedUrlRedacted())
			p.connErr.Store(nil)
			signal(p.up)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			p.log.Info("nats reconnected", "url", c.ConnectedUrlRedacted())
			p.connErr.Store(nil)
			signal(p.up)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own Close at shutdown
				p.outage.Store(true)
				p.log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			p.log.Warn("nats error", "err", err)
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			// Every attempt fails the same way during an outage: log the
			// first and every change (e.g. connection refused, then an
			// authorization violation once the server is back).
			msg := err.Error()
			if prev := p.connErr.Swap(&msg); prev == nil || *prev != msg {
				p.log.Warn("nats connection attempt failed", "err", err)
			}
		}),
	}
	auth, err := authOptions(n)
	if err != nil {
		return err
	}
	opts = append(opts, auth...)
	nc, err := nats.Connect(string(n.URL), opts...)
	if err != nil {
		return fmt.Errorf("nats connect: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("jetstream: %w", err)
	}
	p.nc, p.js = nc, js
	return nil
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// enqueue queues a batch: in memory while NATS acknowledges, else (with a
// spool) on disk, after the batches still in memory, so that the spool
// always holds the oldest. Without a spool a full backlog drops its oldest.
func (p *publisher) enqueue(b batch) {
	if p.sp != nil && p.spilling() {
		p.spill(&b)
	} else {
		p.push(b)
	}
	signal(p.wake)
}

// push adds b to the in-memory backlog, dropping the oldest when full.
func (p *publisher) push(b batch) {
	if p.q.push(b) > 0 {
		n := p.dropped.Add(1)
		if !p.dropLogged.Swap(true) {
			p.log.Warn("backlog full: dropping oldest batches", "max_pending_batches", len(p.q.buf), "dropped", n)
		}
	}
}

// spilling reports whether new batches go to the spool: NATS is away or
// not acknowledging, the spool is not empty yet, or memory is full.
func (p *publisher) spilling() bool {
	if p.outage.Load() || p.sp.depth() > 0 || p.q.full() {
		return true
	}
	return p.nc != nil && !p.nc.IsConnected()
}

// spill moves the backlog's batches (but the one being published) and
// then b, if not nil, to the spool, oldest first, and syncs it. Batches
// the spool cannot take stay in memory, in order. Called by the tick
// loop, or at shutdown once nothing is sent any more.
func (p *publisher) spill(b *batch) {
	bs := p.q.takeAll()
	if b != nil {
		bs = append(bs, *b)
	}
	for i := range bs {
		if err := p.sp.put(&bs[i]); err != nil {
			p.spoolFailed(err)
			for _, rest := range bs[i:] {
				p.push(rest)
			}
			return
		}
		p.q.recycle(bs[i].data)
	}
	if err := p.sp.sync(); err != nil {
		p.spoolFailed(err)
		return
	}
	if p.spoolErr {
		p.log.Info("spool writable again")
		p.spoolErr = false
	}
}

// spoolFailed logs the first spool error of a series.
func (p *publisher) spoolFailed(err error) {
	if !p.spoolErr {
		p.log.Error("spool: cannot write; keeping batches in memory", "err", err)
		p.spoolErr = true
	}
}

// pending is the number of batches not yet acknowledged.
func (p *publisher) pending() int {
	n, _ := p.q.depth()
	if p.sp != nil {
		n += p.sp.depth()
	}
	return n
}

// run sends until ctx ends, or, once draining is closed, until nothing is
// pending.
func (p *publisher) run(ctx context.Context, draining <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	backoff := minBackoff
	for ctx.Err() == nil {
		if p.pending() == 0 {
			select {
			case <-draining:
				return
			case <-p.wake:
			case <-ctx.Done():
			}
			continue
		}
		if !p.nc.IsConnected() {
			timer.Reset(time.Second) // poll too, in case a signal was missed
			select {
			case <-p.up:
			case <-timer.C:
			case <-ctx.Done():
			}
			continue
		}
		if err := p.sendOldest(ctx); err != nil {
			p.fail(err)
			timer.Reset(backoff)
			select {
			case <-p.up:
			case <-timer.C:
			case <-ctx.Done():
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
	}
}

// next picks the oldest pending batch: the spool's head (batches of an
// earlier run first, then by seq) or the backlog's, which it marks as
// being published.
func (p *publisher) next() (b batch, ref spoolRef, fromSpool, ok bool) {
	if p.sp != nil {
		if sb, r, ok := p.sp.peek(); ok {
			if mseq, mok := p.q.headSeq(); !mok || sb.run != p.runID || sb.seq < mseq {
				sb.attempts = p.sp.attempt()
				return sb, r, true, true
			}
		}
	}
	b, ok = p.q.begin()
	return b, spoolRef{}, false, ok
}

// sendOldest publishes the oldest batch and waits for its acknowledgement.
func (p *publisher) sendOldest(ctx context.Context) error {
	b, ref, fromSpool, ok := p.next()
	if !ok {
		return nil
	}
	acked := false
	defer func() {
		switch {
		case !fromSpool:
			p.q.end(b.seq, acked)
		case acked:
			p.sp.ack(ref)
		}
	}()
	run, host, subject := p.runID, p.host, p.subject
	if b.run != "" {
		run = b.run
	}
	if b.host != "" && b.host != p.host {
		host, subject = b.host, wire.TelemetrySubject(b.host)
	}
	msg := &nats.Msg{Subject: subject, Data: b.data, Header: nats.Header{
		wire.HeaderRun:   {run},
		wire.HeaderSeq:   {strconv.FormatUint(b.seq, 10)},
		wire.HeaderMsgID: {wire.MsgID(host, run, b.seq)},
	}}
	p.published.Add(1)
	if b.attempts > 1 {
		p.resent.Add(1)
	}
	pctx, cancel := context.WithTimeout(ctx, p.timeout)
	ack, err := p.js.PublishMsg(pctx, msg)
	cancel()
	if errors.Is(err, nats.ErrMaxPayload) {
		// Can never succeed: drop it rather than block the backlog.
		acked = true
		p.dropped.Add(1)
		p.log.Error("batch larger than the server's max payload: dropped", "seq", b.seq, "bytes", len(b.data))
		return nil
	}
	if err != nil {
		return fmt.Errorf("publish seq %d: %w", b.seq, err)
	}
	acked = true
	p.acked.Add(1)
	if ack.Duplicate {
		p.duplicates.Add(1)
	}
	p.outage.Store(false)
	if p.failing {
		p.log.Info("publishing resumed", "pending", p.pending()-1)
		p.failing = false
		p.dropLogged.Store(false)
	}
	return nil
}

// fail counts a failed publication and logs the first of a series.
func (p *publisher) fail(err error) {
	p.errs.Add(1)
	p.outage.Store(true)
	if !p.failing {
		where := "memory"
		if p.sp != nil {
			where = "the spool"
		}
		p.log.Warn("publish failed: keeping batches in "+where, "err", err, "pending", p.pending())
		p.failing = true
	}
}

// shutdown moves what is still in memory to the spool (nothing is sent
// any more) and closes the spool; it returns the batches kept there.
func (p *publisher) shutdown() (kept int, err error) {
	if p.sp == nil {
		return 0, nil
	}
	p.spill(nil)
	kept = p.sp.depth()
	return kept, p.sp.close()
}

// close closes the connection.
func (p *publisher) close() {
	if p.nc != nil {
		p.nc.Close()
	}
}
