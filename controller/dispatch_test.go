package controller

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/internal/natsembed"
	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

// dispHarness runs a dispatcher with a clock the test can move forward.
// Without NATS its events are read straight from the publisher's queue.
type dispHarness struct {
	d      *dispatcher
	pub    *publisher
	offset atomic.Int64 // nanoseconds added to the wall clock
	cancel context.CancelFunc
	done   chan struct{}
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startDispatcher(t *testing.T, cfg ActionsConfig, pub *publisher, setup ...func(*dispatcher)) *dispHarness {
	t.Helper()
	if pub == nil {
		pub = newPublisher(nil, discardLog(), 1024)
	}
	if cfg.MaxOutput == 0 {
		cfg.MaxOutput = 4096
	}
	h := &dispHarness{pub: pub, done: make(chan struct{})}
	h.d = newDispatcher(cfg, pub, discardLog(), func() time.Time { return time.Now().Add(time.Duration(h.offset.Load())) })
	for _, f := range setup {
		f(h.d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { defer close(h.done); _ = h.d.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

// stop ends Run, which returns only after every running action finished.
func (h *dispHarness) stop() {
	h.cancel()
	<-h.done
}

// events reads n events from the publisher's queue.
func (h *dispHarness) events(t *testing.T, n int) []*wire.Event {
	t.Helper()
	var out []*wire.Event
	timeout := time.After(15 * time.Second)
	for len(out) < n {
		select {
		case ev := <-h.pub.ch:
			out = append(out, ev)
		case <-timeout:
			t.Fatalf("got %d events, want %d: %s", len(out), n, describeEvents(out))
		}
	}
	return out
}

// noMoreEvents checks that nothing else was published.
func (h *dispHarness) noMoreEvents(t *testing.T) {
	t.Helper()
	select {
	case ev := <-h.pub.ch:
		t.Errorf("unexpected event %s", describeEvents([]*wire.Event{ev}))
	default:
	}
}

func describeEvents(evs []*wire.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString("[" + ev.Key + " " + ev.State + " " + ev.Outcome + " " + ev.Error + "] ")
	}
	return b.String()
}

func wantEvent(t *testing.T, ev *wire.Event, key, phase, outcome string) {
	t.Helper()
	if ev.Kind != wire.KindAction || ev.Key != key || ev.State != phase || ev.Outcome != outcome {
		t.Errorf("event %s, want key %s, state %s, outcome %q", describeEvents([]*wire.Event{ev}), key, phase, outcome)
	}
}

func testRule(name string, action *rules.Action, cooldown time.Duration, mode string) *rules.Rule {
	if mode == "" {
		mode = rules.ModeAuto
	}
	return &rules.Rule{Name: name, Group: "g", Severity: rules.SeverityCritical, Mode: mode, Cooldown: cooldown, Action: action}
}

func execSpec(prog string, args ...string) *rules.Action {
	return &rules.Action{Name: "act", Kind: "exec", Program: prog, Args: args, Timeout: 20 * time.Second}
}

func testIntent(r *rules.Rule, subject, key string) rules.Intent {
	return rules.Intent{Key: key, Rule: r, Subject: subject, At: time.Now(), Values: map[string]float64{"v": 1}}
}

// logLines reads the action log written by testProgram's "log" mode; a
// missing file is no lines.
func logLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func TestDispatchSameKeyRunsOnce(t *testing.T) {
	log := filepath.Join(t.TempDir(), "actions.log")
	h := startDispatcher(t, ActionsConfig{Concurrency: 2}, nil)
	r := testRule("r", execSpec(testProg(t), "log", log), 0, "") // no cooldown: only the key de-duplicates
	h.d.Submit(testIntent(r, "web-1", "k1"))
	evs := h.events(t, 2)
	wantEvent(t, evs[0], "k1", "started", "")
	wantEvent(t, evs[1], "k1", "finished", OutcomeSuccess)
	h.d.Submit(testIntent(r, "web-1", "k1"))
	wantEvent(t, h.events(t, 1)[0], "k1", "skipped", OutcomeDup)
	h.stop()
	h.noMoreEvents(t)
	if got := logLines(t, log); len(got) != 1 || got[0] != "k1 web-1 r" {
		t.Errorf("action log %q, want one run for k1", got)
	}
	if s, k := h.d.started.Load(), h.d.skipped.Load(); s != 1 || k != 1 {
		t.Errorf("started %d skipped %d, want 1 and 1", s, k)
	}
}

func TestDispatchCooldownPerRuleAndSubject(t *testing.T) {
	log := filepath.Join(t.TempDir(), "actions.log")
	h := startDispatcher(t, ActionsConfig{Concurrency: 2}, nil)
	r := testRule("r", execSpec(testProg(t), "log", log), time.Hour, "")

	h.d.Submit(testIntent(r, "web-1", "k1"))
	evs := h.events(t, 2)
	wantEvent(t, evs[1], "k1", "finished", OutcomeSuccess)

	h.d.Submit(testIntent(r, "web-1", "k2")) // a new firing inside the cooldown
	ev := h.events(t, 1)[0]
	wantEvent(t, ev, "k2", "skipped", OutcomeCooldown)
	if !strings.Contains(ev.Error, "cooldown until") {
		t.Errorf("cooldown event error %q", ev.Error)
	}

	h.d.Submit(testIntent(r, "web-2", "k3")) // another subject has its own cooldown
	wantEvent(t, h.events(t, 2)[1], "k3", "finished", OutcomeSuccess)

	h.offset.Store(int64(time.Hour + time.Second))
	h.d.Submit(testIntent(r, "web-1", "k4")) // after the cooldown
	wantEvent(t, h.events(t, 2)[1], "k4", "finished", OutcomeSuccess)

	h.stop()
	got := logLines(t, log)
	want := []string{"k1 web-1 r", "k3 web-2 r", "k4 web-1 r"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("action runs %q, want %q", got, want)
	}
}

func TestDispatchDryRunNeverExecutes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   string
		global bool
	}{{"rule mode dry_run", rules.ModeDryRun, false}, {"actions.dry_run", rules.ModeAuto, true}} {
		t.Run(tc.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "actions.log")
			h := startDispatcher(t, ActionsConfig{Concurrency: 2, DryRun: tc.global}, nil)
			r := testRule("r", execSpec(testProg(t), "log", log), 0, tc.mode)
			h.d.Submit(testIntent(r, "web-1", "k1"))
			h.d.Submit(testIntent(r, "web-1", "k2"))
			evs := h.events(t, 2)
			wantEvent(t, evs[0], "k1", "skipped", OutcomeDryRun)
			wantEvent(t, evs[1], "k2", "skipped", OutcomeDryRun)
			h.stop() // waits for anything it might have started
			h.noMoreEvents(t)
			if _, err := os.Stat(log); !os.IsNotExist(err) {
				t.Errorf("the action ran in dry-run mode: %q", logLines(t, log))
			}
			if n := h.d.started.Load(); n != 0 {
				t.Errorf("started = %d in dry-run mode", n)
			}
		})
	}
}

type span struct{ start, end int64 }

// readSpans parses the start/end lines testProgram's "slow" mode writes.
func readSpans(t *testing.T, path string) map[string]*span {
	t.Helper()
	out := map[string]*span{}
	for _, line := range logLines(t, path) {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("bad line %q", line)
		}
		ns, _ := strconv.ParseInt(f[2], 10, 64)
		s := out[f[1]]
		if s == nil {
			s = &span{}
			out[f[1]] = s
		}
		if f[0] == "start" {
			s.start = ns
		} else {
			s.end = ns
		}
	}
	return out
}

func TestDispatchConcurrencyLimit(t *testing.T) {
	// Each action writes its start, waits until two actions have started
	// (or the wait ran out) and writes its end. With concurrency 1 the
	// second cannot start while the first runs; with 2 both run at once.
	for _, tc := range []struct {
		conc    int
		wait    string
		overlap bool
	}{{1, "300ms", false}, {2, "10s", true}} {
		t.Run("concurrency "+strconv.Itoa(tc.conc), func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "spans")
			prog := testProg(t)
			h := startDispatcher(t, ActionsConfig{Concurrency: tc.conc}, nil)
			for _, name := range []string{"a", "b"} {
				r := testRule("r_"+name, execSpec(prog, "slow", file, name, "2", tc.wait), 0, "")
				h.d.Submit(testIntent(r, "web-1", "k"+name))
			}
			evs := h.events(t, 4)
			h.stop()
			spans := readSpans(t, file)
			a, b := spans["a"], spans["b"]
			if a == nil || b == nil || a.end == 0 || b.end == 0 {
				t.Fatalf("spans %v: both actions must have run to the end", spans)
			}
			overlap := a.start < b.end && b.start < a.end
			if overlap != tc.overlap {
				t.Errorf("a %v b %v: overlap %v, want %v", *a, *b, overlap, tc.overlap)
			}
			if !tc.overlap { // events: one action's start and end, then the other's
				if evs[0].State != "started" || evs[1].State != "finished" || evs[0].Key != evs[1].Key ||
					evs[2].State != "started" || evs[3].State != "finished" {
					t.Errorf("events out of order for concurrency 1: %s", describeEvents(evs))
				}
			}
		})
	}
}

func TestDispatchQueueFullAndUnknownKind(t *testing.T) {
	pub := newPublisher(nil, discardLog(), 16)
	d := newDispatcher(ActionsConfig{Concurrency: 1, MaxOutput: 100}, pub, discardLog(), time.Now)
	r := testRule("r", &rules.Action{Name: "a", Kind: "teleport"}, 0, "")
	for i := 0; i < cap(d.in); i++ { // nobody runs the dispatcher: the queue fills
		if !d.Submit(testIntent(r, "web-1", "k"+strconv.Itoa(i))) {
			t.Fatalf("Submit %d refused before the queue was full", i)
		}
	}
	if d.Submit(testIntent(r, "web-1", "overflow")) {
		t.Fatal("Submit accepted an intent into a full queue")
	}
	ev := <-pub.ch
	wantEvent(t, ev, "overflow", "skipped", OutcomeRejected)
	if d.overflow.Load() != 1 || !strings.Contains(ev.Error, "queue full") {
		t.Errorf("overflow %d, error %q", d.overflow.Load(), ev.Error)
	}

	// An action kind nobody registered is rejected, not run.
	d.dispatch(context.Background(), <-d.in)
	ev = <-pub.ch
	wantEvent(t, ev, "k0", "skipped", OutcomeRejected)
	if !strings.Contains(ev.Error, `unknown kind "teleport"`) {
		t.Errorf("rejection error %q", ev.Error)
	}
}

// TestDispatchEventsInStream runs the real publisher on an embedded NATS
// and reads the action events back from the events stream.
func TestDispatchEventsInStream(t *testing.T) {
	ns := natsembed.StartT(t)
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := EnsureStreams(ctx, js, StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	pub := newPublisher(js, discardLog(), 1024)
	pubCtx, stopPub := context.WithCancel(context.Background())
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); _ = pub.Run(pubCtx) }()
	t.Cleanup(func() { stopPub(); <-pubDone })

	prog := testProg(t)
	h := startDispatcher(t, ActionsConfig{Concurrency: 1}, pub)
	ok := testRule("protect", execSpec(prog, "exit", "0", "done", ""), time.Hour, "")
	bad := testRule("broken", execSpec(prog, "exit", "4", "", "no space"), time.Hour, "")
	predicted := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	in := testIntent(ok, "web-1", "k1")
	in.PredictedFailure = predicted
	h.d.Submit(in)
	h.d.Submit(in)                                   // duplicate
	h.d.Submit(testIntent(ok, "web-1", "k2"))        // cooldown
	h.d.Submit(testIntent(bad, "web-2", "k3"))       // fails
	h.d.Submit(testIntent(ok, "db-1", "k4"))         // another host: runs
	const want = 2 + 1 + 1 + 2 + 2                   // started+finished, dup, cooldown, ...
	stream, err := js.Stream(ctx, wire.EventsStream) // events arrive asynchronously
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	var n uint64
	for time.Now().Before(deadline) {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n = info.State.Msgs; n >= want {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n != want {
		t.Fatalf("events in stream: %d, want %d", n, want)
	}
	byKeyPhase := map[string]*wire.Event{}
	for seq := uint64(1); seq <= want; seq++ {
		raw, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := wire.UnmarshalEvent(raw.Data)
		if err != nil {
			t.Fatalf("event %d: %v", seq, err)
		}
		if raw.Subject != "vigil.events.action."+ev.Host {
			t.Errorf("subject %q for host %q", raw.Subject, ev.Host)
		}
		k := ev.Key + "/" + ev.State + "/" + ev.Outcome
		if byKeyPhase[k] != nil {
			t.Errorf("event %s twice", k)
		}
		byKeyPhase[k] = ev
	}
	for _, k := range []string{"k1/started/", "k1/finished/success", "k1/skipped/duplicate", "k2/skipped/cooldown",
		"k3/started/", "k3/finished/failure", "k4/started/", "k4/finished/success"} {
		if byKeyPhase[k] == nil {
			t.Errorf("no event %s; have %v", k, keys(byKeyPhase))
		}
	}
	if t.Failed() {
		return
	}
	fin := byKeyPhase["k1/finished/success"]
	if fin.Rule != "protect" || fin.Group != "g" || fin.Action != "act" || fin.ActionKind != "exec" ||
		fin.Host != "web-1" || fin.Severity != "critical" || fin.Output != "done" {
		t.Errorf("finished event %+v", fin)
	}
	if fin.DurationSeconds <= 0 {
		t.Errorf("duration_seconds %v, want > 0", fin.DurationSeconds)
	}
	// lead = predicted failure - end of the action: just under an hour.
	if lead := fin.LeadSeconds; lead <= 3500 || lead > 3600 {
		t.Errorf("lead_seconds %v, want just under 3600", lead)
	}
	if !fin.PredictedAt.Equal(predicted) || !byKeyPhase["k1/started/"].PredictedAt.Equal(predicted) {
		t.Errorf("predicted_at %v / %v, want %v", fin.PredictedAt, byKeyPhase["k1/started/"].PredictedAt, predicted)
	}
	if byKeyPhase["k4/finished/success"].LeadSeconds != 0 {
		t.Errorf("lead_seconds set without a predicted failure")
	}
	failed := byKeyPhase["k3/finished/failure"]
	if failed.ExitCode != 4 || !strings.Contains(failed.Error, "exit status 4") || !strings.Contains(failed.Output, "no space") {
		t.Errorf("failed event: exit %d error %q output %q", failed.ExitCode, failed.Error, failed.Output)
	}
	for _, k := range []string{"k1/skipped/duplicate", "k2/skipped/cooldown"} {
		if byKeyPhase[k].Error == "" {
			t.Errorf("%s: no reason given", k)
		}
	}
	if s, f := h.d.succeeded.Load(), h.d.failed.Load(); s != 2 || f != 1 {
		t.Errorf("succeeded %d failed %d, want 2 and 1", s, f)
	}
}

func keys(m map[string]*wire.Event) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
