package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/internal/wire"
)

// historyKeepAlive: how often messages held by a failing write are marked
// in progress, so JetStream does not redeliver them meanwhile. The
// consumers' AckWait is a few times longer (see ackWait).
const historyKeepAlive = 15 * time.Second

// lineWriter is the blocking InfluxDB write (api.WriteAPIBlocking).
type lineWriter interface {
	WriteRecord(ctx context.Context, line ...string) error
}

// historyMsg is one fetched message and its lines in the stream's arena.
type historyMsg struct {
	msg        jetstream.Msg
	start, end int
	lines      int
	done       bool // acknowledged or terminated
}

// historyStream writes one stream through one durable consumer. Its run
// goroutine owns everything but st.
type historyStream struct {
	h       *History
	stream  string
	durable string
	conv    historyLines
	log     *slog.Logger

	arena        []byte       // line protocol of the current fetch
	batch        []historyMsg // messages of the current fetch to write
	touched      time.Time    // last in-progress mark of batch
	failingSince time.Time    // first failure of the current outage

	mu sync.Mutex
	st HistoryStreamStats
}

func newHistoryStream(h *History, stream, durable string, conv func() historyLines) *historyStream {
	return &historyStream{
		h: h, stream: stream, durable: durable, conv: conv(),
		log: h.log.With("stream", stream, "consumer", durable),
	}
}

func (s *historyStream) snapshot() HistoryStreamStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// ackWait is how long JetStream waits for an acknowledgement before
// redelivering: longer than a write plus the keep-alive between marks.
func (s *historyStream) ackWait() time.Duration {
	return max(time.Minute, 2*s.h.cfg.WriteTimeout+2*historyKeepAlive)
}

// fetchBytes bounds one fetch; it admits the largest telemetry message.
func (s *historyStream) fetchBytes() int {
	return max(s.h.cfg.BatchBytes, 2*wire.MaxBatchBytes+1<<20)
}

func (s *historyStream) consumer(ctx context.Context) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := s.h.js.CreateOrUpdateConsumer(ctx, s.stream, jetstream.ConsumerConfig{
		Durable:       s.durable,
		Description:   "vigil history writer (InfluxDB)",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.ackWait(),
		MaxDeliver:    -1,
		MaxAckPending: 4 * s.h.cfg.BatchSize,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", s.durable, s.stream, err)
	}
	return c, nil
}

// run fetches and writes until ctx ends. Consumer and fetch failures are
// retried with backoff; it always returns nil.
func (s *historyStream) run(ctx context.Context, w lineWriter) error {
	var cons jetstream.Consumer
	delay := s.h.cfg.RetryMin
	unavailable := false
	pause := func(err error) {
		if !unavailable {
			s.log.Warn("history source unavailable; retrying", "err", err)
			unavailable = true
		}
		s.noteError(err)
		s.sleep(ctx, delay)
		delay = min(2*delay, s.h.cfg.RetryMax)
	}
	for ctx.Err() == nil {
		if cons == nil {
			c, err := s.consumer(ctx)
			if err != nil {
				pause(err)
				continue
			}
			cons = c
		}
		msgs, err := s.fetch(cons)
		if len(msgs) > 0 {
			s.process(ctx, w, msgs)
		}
		if err != nil {
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
				cons = nil
			}
			pause(fmt.Errorf("fetch from %s: %w", s.stream, err))
			continue
		}
		if unavailable {
			s.log.Info("history source available again")
			unavailable = false
		}
		delay = s.h.cfg.RetryMin
	}
	return nil
}

// fetch waits at most FlushInterval for up to BatchSize messages.
func (s *historyStream) fetch(cons jetstream.Consumer) ([]jetstream.Msg, error) {
	b, err := cons.Fetch(s.h.cfg.BatchSize, jetstream.FetchMaxWait(s.h.cfg.FlushInterval), jetstream.FetchMaxBytes(s.fetchBytes()))
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range b.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 && b.Error() == nil {
		s.mu.Lock()
		s.st.Pending = 0
		s.mu.Unlock()
	}
	return msgs, b.Error()
}

// process converts a fetch and writes it in parts of at most BatchBytes.
// What ctx's end leaves unwritten is returned to the stream (Nak).
func (s *historyStream) process(ctx context.Context, w lineWriter, msgs []jetstream.Msg) {
	s.arena, s.batch, s.touched = s.arena[:0], s.batch[:0], time.Now()
	malformed, empty := 0, 0
	for _, m := range msgs {
		start := len(s.arena)
		out, n, bad, err := s.conv.append(s.arena, m)
		malformed += bad
		switch {
		case err != nil:
			s.arena = out[:start]
			s.terminate(m, err)
		case n == 0: // nothing valid to write
			s.arena = out[:start]
			_ = m.Ack()
			empty++
		default:
			s.arena = out
			s.batch = append(s.batch, historyMsg{msg: m, start: start, end: len(out), lines: n})
		}
	}
	s.mu.Lock()
	s.st.Malformed += uint64(malformed)
	s.st.Messages += uint64(empty)
	s.st.InFlight = uint64(len(s.batch))
	if md, err := msgs[len(msgs)-1].Metadata(); err == nil {
		s.st.Pending = md.NumPending
	}
	s.mu.Unlock()

	limit := s.h.cfg.BatchBytes
	for i := 0; i < len(s.batch); {
		j := i + 1
		for j < len(s.batch) && s.batch[j].end-s.batch[i].start <= limit {
			j++
		}
		if !s.deliver(ctx, w, s.batch[i:j]) {
			break
		}
		i = j
	}
	s.nakUndone()
}

// deliver writes msgs and settles every one of them: acknowledged after
// InfluxDB accepted it, or terminated when InfluxDB refuses it as bad data
// (found by halving the batch). Retryable failures are retried with
// backoff. It returns false when ctx ended first.
func (s *historyStream) deliver(ctx context.Context, w lineWriter, msgs []historyMsg) bool {
	delay := s.h.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			return false
		}
		s.keepAlive()
		err := s.write(ctx, w, msgs)
		if err == nil {
			s.acknowledge(msgs)
			return true
		}
		if rejected(err) {
			if len(msgs) == 1 {
				s.terminate(msgs[0].msg, err)
				msgs[0].done = true
				s.addInFlight(-1)
				return true
			}
			mid := len(msgs) / 2
			return s.deliver(ctx, w, msgs[:mid]) && s.deliver(ctx, w, msgs[mid:])
		}
		s.retrying(err, len(msgs))
		if !s.sleep(ctx, delay) {
			return false
		}
		delay = min(2*delay, s.h.cfg.RetryMax)
	}
}

// write sends the lines of msgs (contiguous in the arena) in one request.
// A write under way when ctx ends is finished, within WriteTimeout.
func (s *historyStream) write(ctx context.Context, w lineWriter, msgs []historyMsg) error {
	body := string(s.arena[msgs[0].start:msgs[len(msgs)-1].end])
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.h.cfg.WriteTimeout)
	defer cancel()
	if err := w.WriteRecord(wctx, body); err != nil {
		return fmt.Errorf("write %d messages of %s to InfluxDB: %w", len(msgs), s.stream, err)
	}
	return nil
}

// rejected reports whether InfluxDB refused the data itself.
func rejected(err error) bool {
	var he *influxhttp.Error
	if !errors.As(err, &he) {
		return false
	}
	return writeRejected(he.StatusCode, he.Message+" "+he.Error())
}

func (s *historyStream) acknowledge(msgs []historyMsg) {
	points := 0
	for i := range msgs {
		// A lost ack only means a redelivery, which rewrites the same
		// points (idempotent in InfluxDB).
		_ = msgs[i].msg.Ack()
		msgs[i].done = true
		points += msgs[i].lines
	}
	now := time.Now()
	if !s.failingSince.IsZero() {
		s.log.Info("history write recovered", "down_for", now.Sub(s.failingSince).Round(time.Millisecond))
		s.failingSince = time.Time{}
	}
	s.mu.Lock()
	s.st.Messages += uint64(len(msgs))
	s.st.Points += uint64(points)
	s.st.Batches++
	s.st.InFlight -= uint64(len(msgs))
	s.st.LastWrite = now
	s.mu.Unlock()
}

// terminate drops a message for good: it can never be written.
func (s *historyStream) terminate(m jetstream.Msg, err error) {
	reason := err.Error()
	if len(reason) > 200 {
		reason = reason[:200]
	}
	_ = m.TermWithReason(reason)
	attrs := []any{"subject", m.Subject(), "err", err}
	if md, mdErr := m.Metadata(); mdErr == nil {
		attrs = append(attrs, "stream_seq", md.Sequence.Stream)
	}
	s.log.Warn("history message rejected", attrs...)
	s.mu.Lock()
	s.st.Rejected++
	s.mu.Unlock()
}

func (s *historyStream) addInFlight(d int) {
	s.mu.Lock()
	s.st.InFlight = uint64(int64(s.st.InFlight) + int64(d))
	s.mu.Unlock()
}

// retrying counts a failed write that will be retried.
func (s *historyStream) retrying(err error, n int) {
	if s.failingSince.IsZero() {
		s.failingSince = time.Now()
		s.log.Warn("history write failed; retrying", "messages", n, "err", err)
	} else {
		s.log.Debug("history write failed again", "messages", n, "err", err)
	}
	s.mu.Lock()
	s.st.Retries++
	s.mu.Unlock()
	s.noteError(err)
}

func (s *historyStream) noteError(err error) {
	s.mu.Lock()
	s.st.LastError, s.st.LastErrorAt = err.Error(), time.Now()
	s.mu.Unlock()
}

// keepAlive marks the unsettled messages of the fetch in progress when
// historyKeepAlive has passed since the last mark.
func (s *historyStream) keepAlive() {
	if time.Since(s.touched) < historyKeepAlive {
		return
	}
	for i := range s.batch {
		if !s.batch[i].done {
			_ = s.batch[i].msg.InProgress()
		}
	}
	s.touched = time.Now()
}

// nakUndone returns the unsettled messages of the fetch to the stream.
func (s *historyStream) nakUndone() {
	n := 0
	for i := range s.batch {
		if !s.batch[i].done {
			_ = s.batch[i].msg.Nak()
			n++
		}
	}
	if n > 0 {
		s.log.Info("history stopped with messages unwritten; left in the stream", "messages", n)
		s.addInFlight(-n)
	}
}

// sleep waits d, keeping held messages alive; false when ctx ended.
func (s *historyStream) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(historyKeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-tick.C:
			s.keepAlive()
		}
	}
}
