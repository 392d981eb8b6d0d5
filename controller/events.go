package controller

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/vigil-sre/vigil/internal/wire"
)

// publisher sends events to the events stream. Publish never blocks the
// caller; Run publishes with acknowledgements and re-sends what was not
// acknowledged (same Nats-Msg-Id, so JetStream keeps one copy), so a NATS
// outage delays events but loses none as long as the queue has room.
type publisher struct {
	js  jetstream.JetStream
	log *slog.Logger

	mu     sync.Mutex
	closed bool
	ch     chan *wire.Event

	published, dropped, retries atomic.Uint64
}

func newPublisher(js jetstream.JetStream, log *slog.Logger, queue int) *publisher {
	return &publisher{js: js, log: log, ch: make(chan *wire.Event, queue)}
}

// Publish queues ev. It returns false, counting a drop, when the queue is
// full or the publisher is closed.
func (p *publisher) Publish(ev *wire.Event) bool {
	if ev.ID == "" {
		ev.ID = nuid.Next()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.dropped.Add(1)
		return false
	}
	select {
	case p.ch <- ev:
		return true
	default:
		p.dropped.Add(1)
		return false
	}
}

// Close stops accepting events; Run returns after sending what is queued.
func (p *publisher) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.ch)
	}
}

// Run publishes until Close was called and the queue is empty, or until
// ctx ends (then unsent events are counted as dropped).
func (p *publisher) Run(ctx context.Context) error {
	var batch []*wire.Event
	open := true
	for open || len(batch) > 0 {
		if len(batch) == 0 {
			select {
			case ev, ok := <-p.ch:
				if !ok {
					open = false
					continue
				}
				batch = append(batch, ev)
			case <-ctx.Done():
				p.dropped.Add(uint64(len(p.ch)))
				return nil
			}
		}
		for open && len(batch) < 512 {
			select {
			case ev, ok := <-p.ch:
				if !ok {
					open = false
					break
				}
				batch = append(batch, ev)
				continue
			default:
			}
			break
		}
		var err error
		batch, err = p.send(ctx, batch)
		if err != nil {
			p.retries.Add(1)
			p.log.Warn("events not acknowledged, retrying", "pending", len(batch), "err", err)
			select {
			case <-time.After(500 * time.Millisecond):
			case <-ctx.Done():
				p.dropped.Add(uint64(len(batch) + len(p.ch)))
				return nil
			}
		}
	}
	return nil
}

// send publishes batch asynchronously and returns the events that were
// not acknowledged.
func (p *publisher) send(ctx context.Context, batch []*wire.Event) ([]*wire.Event, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(batch))
	var failed []*wire.Event
	var firstErr error
	for _, ev := range batch {
		data, err := ev.Marshal()
		if err != nil { // cannot happen for well-formed events; do not retry
			p.log.Error("event not encodable", "id", ev.ID, "err", err)
			p.dropped.Add(1)
			futures = append(futures, nil)
			continue
		}
		msg := &nats.Msg{Subject: ev.Subject(), Data: data, Header: nats.Header{}}
		msg.Header.Set(wire.HeaderMsgID, ev.ID)
		f, err := p.js.PublishMsgAsync(msg)
		if err != nil {
			failed = append(failed, ev)
			firstErr = err
			futures = append(futures, nil)
			continue
		}
		futures = append(futures, f)
	}
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
			p.published.Add(1)
		case err := <-f.Err():
			failed = append(failed, batch[i])
			firstErr = err
		case <-wait.Done():
			failed = append(failed, batch[i])
			firstErr = errors.New("no acknowledgement within 10s")
		}
	}
	return failed, firstErr
}
