package controller_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/controller"
	"github.com/vigil-sre/vigil/internal/natsembed"
	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

// lapseRules is a rule file: rule quiet never fires; with flag, rule
// flag_set fires on every host whose app.flag is positive (no action).
func lapseRules(t *testing.T, path string, flag bool) {
	t.Helper()
	src := `groups:
  - name: lapse
    interval: 200ms
    rules:
      - name: quiet
        expr: value("app.flag") > 100
`
	if flag {
		src += `      - name: flag_set
        expr: value("app.flag") > 0
`
	}
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startLapseCtl runs a controller named name with the rule file path,
// a 2 s lease, connected to url with the controller's own Connect
// (reconnecting forever).
func startLapseCtl(t *testing.T, name, url, path string) *runningCtl {
	t.Helper()
	cfg, err := controller.ParseConfig(name+".yaml", []byte(fmt.Sprintf(
		"name: %s\nnats: {url: %q}\napi: {listen: \"off\"}\ndetectors: {anomaly: ewma}\nlease: {ttl: 2s}\nrules: [%q]\n", name, url, path)))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := controller.Connect(cfg.NATS, name, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	set, err := rules.LoadFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	return startCtl(t, cfg, nc, set)
}

func (rc *runningCtl) reload(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rc.c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
}

// ruleEvents returns the events of rule in the events stream.
func ruleEvents(t *testing.T, url, rule string) []*wire.Event {
	t.Helper()
	return streamEvents(t, url, func(ev *wire.Event) bool { return ev.Kind == wire.KindRule && ev.Rule == rule })
}

// streamEvents returns the events in the events stream for which keep holds.
func streamEvents(t *testing.T, url string, keep func(*wire.Event) bool) []*wire.Event {
	t.Helper()
	js, err := jetstream.New(connectNATS(t, url))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, wire.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*wire.Event
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("event %d: %v", seq, err)
		}
		ev, err := wire.UnmarshalEvent(m.Data)
		if err != nil {
			t.Fatalf("event %d: %v", seq, err)
		}
		if keep(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// TestLoneLeaderKeepsEventsThroughOutage: a lone controller whose NATS
// goes away for longer than the lease TTL steps down, keeps the rule
// event it makes meanwhile (a rule loaded during the outage fires on a
// host it knows), and publishes it exactly once when NATS is back and it
// leads again on the next revision of the lease key.
func TestLoneLeaderKeepsEventsThroughOutage(t *testing.T) {
	ns := natsembed.StartT(t)
	path := filepath.Join(t.TempDir(), "rules.yaml")
	lapseRules(t, path, false)
	a := startLapseCtl(t, "ctl-lone", ns.URL(), path)
	eventually(t, "ctl-lone leads", func() bool { return a.leader(t).Leader })
	e1 := a.leader(t).Epoch
	env := &natsEnv{srv: ns, nc: connectNATS(t, ns.URL())}
	var err error
	if env.js, err = jetstream.New(env.nc); err != nil {
		t.Fatal(err)
	}
	env.publish(t, "h1", "", 0, "app,host=h1 flag=1\n")
	eventually(t, "ctl-lone knows h1", func() bool { return a.status(t).hostSeries("h1") > 0 })

	ns.Stop()
	down := time.Now()
	eventually(t, "ctl-lone steps down", func() bool { return !a.leader(t).Leader })
	lapseRules(t, path, true)
	a.reload(t)
	eventually(t, "flag_set fires on h1", func() bool { return a.status(t).ruleState("flag_set", "h1") == "firing" })
	if n := a.metric(t, "vigil_follower_events_kept"); n < 1 {
		t.Fatalf("vigil_follower_events_kept = %v during the outage, want ≥ 1", n)
	}
	if d := time.Until(down.Add(3 * time.Second)); d > 0 {
		time.Sleep(d) // the outage outlasts the lease TTL (2s): the key expires
	}
	if err := ns.Restart(); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	eventually(t, "ctl-lone leads again", func() bool { return a.leader(t).Leader })
	if e2 := a.leader(t).Epoch; e2 <= e1 {
		t.Fatalf("epoch %d after the outage, %d before", e2, e1)
	}
	eventually(t, "kept events published", func() bool { return a.metric(t, "vigil_follower_events_resumed_total") >= 1 })
	eventually(t, "flag_set's event in the stream", func() bool { return len(ruleEvents(t, ns.URL(), "flag_set")) >= 1 })
	a.stop(t) // drains the publisher: nothing more can come
	evs := ruleEvents(t, ns.URL(), "flag_set")
	if len(evs) != 1 || evs[0].Host != "h1" || evs[0].State != "firing" {
		t.Fatalf("flag_set events in the stream: %+v, want one firing on h1", evs)
	}
	if at := evs[0].Time; !at.After(down) || !at.Before(up) {
		t.Errorf("flag_set's event at %v: not made during the outage (%v to %v)", at, down, up)
	}
	m := a.metrics(t)
	if m["vigil_follower_events_discarded_total"] != 0 || m["vigil_follower_events_overflow_total"] != 0 || m["vigil_follower_events_kept"] != 0 {
		t.Errorf("kept events discarded %v, overflowed %v, still kept %v: want 0, 0, 0",
			m["vigil_follower_events_discarded_total"], m["vigil_follower_events_overflow_total"], m["vigil_follower_events_kept"])
	}
	if m["vigil_follower_events_resumed_total"] != m["vigil_follower_events_total"] {
		t.Errorf("%v events made while following, %v published after: want all", m["vigil_follower_events_total"], m["vigil_follower_events_resumed_total"])
	}
}

// TestLapseEventsDiscardedAfterTakeover: a controller cut off from NATS
// (through a proxy) steps down and keeps the event it makes; meanwhile a
// second controller takes the lease over and later stops (deleting the
// key). When the first reconnects and leads again, the lease key has been
// written by another, so the kept event is discarded and counted, and
// never reaches the events stream.
func TestLapseEventsDiscardedAfterTakeover(t *testing.T) {
	env := startNATSEnv(t)
	px := startProxy(t, env.srv.URL())
	path := filepath.Join(t.TempDir(), "rules.yaml")
	lapseRules(t, path, false)
	a := startLapseCtl(t, "ctl-a", px.url(), path)
	eventually(t, "ctl-a leads", func() bool { return a.leader(t).Leader })
	env.publish(t, "h1", "", 0, "app,host=h1 flag=1\n")
	eventually(t, "ctl-a knows h1", func() bool { return a.status(t).hostSeries("h1") > 0 })

	px.cut()
	eventually(t, "ctl-a steps down", func() bool { return !a.leader(t).Leader })
	bPath := filepath.Join(t.TempDir(), "rules.yaml")
	lapseRules(t, bPath, false)
	b := startLapseCtl(t, "ctl-b", env.srv.URL(), bPath)
	eventually(t, "ctl-b takes over", func() bool { return b.leader(t).Leader })
	lapseRules(t, path, true)
	a.reload(t)
	eventually(t, "ctl-a's flag_set fires on h1", func() bool { return a.status(t).ruleState("flag_set", "h1") == "firing" })
	if n := a.metric(t, "vigil_follower_events_kept"); n < 1 {
		t.Fatalf("vigil_follower_events_kept = %v while cut off, want ≥ 1", n)
	}
	b.stop(t)

	px.restore()
	eventually(t, "ctl-a leads again", func() bool { return a.leader(t).Leader })
	eventually(t, "kept events discarded", func() bool { return a.metric(t, "vigil_follower_events_kept") == 0 })
	a.stop(t)
	m := a.metrics(t)
	if m["vigil_follower_events_discarded_total"] < 1 || m["vigil_follower_events_resumed_total"] != 0 {
		t.Fatalf("kept events discarded %v, published %v: want ≥ 1 and 0",
			m["vigil_follower_events_discarded_total"], m["vigil_follower_events_resumed_total"])
	}
	if evs := ruleEvents(t, env.srv.URL(), "flag_set"); len(evs) != 0 {
		t.Fatalf("flag_set events in the stream: %+v, want none", evs)
	}
}

// proxy forwards TCP connections to a NATS server until cut, which closes
// them and refuses new ones until restore.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns []net.Conn
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, natsURL string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := natsURL[len("nats://"):]
	p := &proxy{ln: ln, target: u}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { _ = ln.Close(); p.cut(); p.wg.Wait() })
	return p
}

func (p *proxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns = append(p.conns, c, s)
		p.wg.Add(2)
		go p.pipe(c, s)
		go p.pipe(s, c)
		p.mu.Unlock()
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *proxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}
