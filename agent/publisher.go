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
	failing                                             bool // sender goroutine only
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
			signal(p.up)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			p.log.Info("nats reconnected", "url", c.ConnectedUrlRedacted())
			signal(p.up)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own Close at shutdown
				p.log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			p.log.Warn("nats error", "err", err)
		}),
	}
	switch {
	case n.User != "":
		opts = append(opts, nats.UserInfo(string(n.User), string(n.Password)))
	case n.Token != "":
		opts = append(opts, nats.Token(string(n.Token)))
	case n.Creds != "":
		opts = append(opts, nats.UserCredentials(string(n.Creds)))
	}
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

// enqueue adds a batch to the backlog, dropping the oldest when full.
func (p *publisher) enqueue(b batch) {
	if p.q.push(b) > 0 {
		n := p.dropped.Add(1)
		if !p.dropLogged.Swap(true) {
			p.log.Warn("backlog full: dropping oldest batches", "max_pending_batches", len(p.q.buf), "dropped", n)
		}
	}
	signal(p.wake)
}

// run sends until ctx ends, or, once draining is closed, until the backlog
// is empty.
func (p *publisher) run(ctx context.Context, draining <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	backoff := minBackoff
	for ctx.Err() == nil {
		if n, _ := p.q.depth(); n == 0 {
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

// sendOldest publishes the oldest batch and waits for its acknowledgement.
func (p *publisher) sendOldest(ctx context.Context) error {
	b, ok := p.q.begin()
	if !ok {
		return nil
	}
	acked := false
	defer func() { p.q.end(b.seq, acked) }()
	seq := strconv.FormatUint(b.seq, 10)
	msg := &nats.Msg{Subject: p.subject, Data: b.data, Header: nats.Header{
		wire.HeaderRun:   {p.runID},
		wire.HeaderSeq:   {seq},
		wire.HeaderMsgID: {wire.MsgID(p.host, p.runID, b.seq)},
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
	if p.failing {
		n, _ := p.q.depth()
		p.log.Info("publishing resumed", "backlog", n-1)
		p.failing = false
		p.dropLogged.Store(false)
	}
	return nil
}

// fail counts a failed publication and logs the first of a series.
func (p *publisher) fail(err error) {
	p.errs.Add(1)
	if !p.failing {
		n, _ := p.q.depth()
		p.log.Warn("publish failed: keeping batches in the backlog", "err", err, "backlog", n)
		p.failing = true
	}
}

// close closes the connection.
func (p *publisher) close() {
	if p.nc != nil {
		p.nc.Close()
	}
}
