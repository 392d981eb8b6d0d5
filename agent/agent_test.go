package agent

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// counter emits fake,src=<name> n=<call number>.
type counter struct {
	name  string
	calls atomic.Int64
}

func (c *counter) Name() string { return c.name }
func (c *counter) Collect(_ context.Context, _ time.Time, emit Emit) error {
	n := c.calls.Add(1)
	emit("fake", []wire.Tag{{Key: "src", Value: c.name}}, []wire.Field{wire.I("n", n)})
	return nil
}

// funcCollector runs f.
type funcCollector struct {
	name string
	f    func(ctx context.Context, emit Emit) error
}

func (c *funcCollector) Name() string { return c.name }
func (c *funcCollector) Collect(ctx context.Context, _ time.Time, emit Emit) error {
	return c.f(ctx, emit)
}

// syncBuffer is a log sink safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testConfig: host h, the given interval, no jitter, no built-in collectors.
func testConfig(host string, interval time.Duration) Config {
	zero := time.Duration(0)
	c := Config{Host: host, Interval: interval, Jitter: &zero}
	c.DisableCollectors()
	return c
}

func newTestAgent(t *testing.T, cfg Config) (*Agent, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	a, err := New(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return a, logs
}

// queued returns the batches waiting in the agent's backlog.
func queued(a *Agent) []batch {
	q := a.pub.q
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []batch
	for i := 0; i < q.n; i++ {
		out = append(out, q.buf[(q.head+i)%len(q.buf)])
	}
	return out
}

// decoded is one line of a batch.
type decoded struct {
	m    string
	tags map[string]string
	vals map[string]float64
	ns   int64
}

func decodeBatch(t *testing.T, data []byte) []decoded {
	t.Helper()
	var d wire.Decoder
	var out []decoded
	_, bad, errs := d.Decode(data, func(p *wire.PointView) {
		l := decoded{m: string(p.Measurement), tags: map[string]string{}, vals: map[string]float64{}, ns: p.Time}
		for _, tg := range p.Tags {
			l.tags[string(tg.Key)] = string(tg.Value)
		}
		for i := range p.Fields {
			if v, ok := p.Fields[i].Number(); ok {
				l.vals[string(p.Fields[i].Key)] = v
			}
		}
		out = append(out, l)
	})
	if bad > 0 {
		t.Fatalf("malformed batch: %v\n%s", errs, data)
	}
	return out
}

func TestTickIsolatesCollectors(t *testing.T) {
	cfg := testConfig("h1", 40*time.Millisecond) // collector timeout 20ms
	a, logs := newTestAgent(t, cfg)
	release := make(chan struct{})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	script := []error{errors.New("boom A"), errors.New("boom A"), errors.New("boom A"), nil, errors.New("boom B")}
	calls := 0
	good := &counter{name: "good"}
	a.AddCollector(good)
	a.AddCollector(&funcCollector{"panicky", func(context.Context, Emit) error { panic("oops") }})
	a.AddCollector(&funcCollector{"hang", func(_ context.Context, emit Emit) error {
		<-release // ignores its context
		emit("hang", nil, []wire.Field{wire.I("x", 1)})
		return nil
	}})
	a.AddCollector(&funcCollector{"flaky", func(_ context.Context, emit Emit) error {
		err := script[calls%len(script)]
		calls++
		emit("flaky", nil, []wire.Field{wire.I("x", 1)})
		return err
	}})

	base := time.Unix(1_700_000_000, 0)
	for i := 0; i < 5; i++ {
		a.tick(context.Background(), base.Add(time.Duration(i)*time.Second))
	}
	checkIsolatedBatches(t, queued(a), base)

	st := a.Stats()
	if c := st.Collectors["panicky"]; c.Panics != 5 || c.Errors != 5 || !strings.Contains(c.LastError, "panic: oops") {
		t.Errorf("panicky stats %+v", c)
	}
	if c := st.Collectors["hang"]; c.Timeouts != 1 || c.Skipped != 4 || c.Errors != 5 {
		t.Errorf("hang stats %+v", c)
	}
	if c := st.Collectors["flaky"]; c.Errors != 4 || c.Runs != 5 || c.LastError != "boom B" {
		t.Errorf("flaky stats %+v", c)
	}
	if c := st.Collectors["good"]; c.Errors != 0 || c.Runs != 5 || c.Points != 1 {
		t.Errorf("good stats %+v", c)
	}

	// Logged: the first error of each collector, then changes only.
	out := logs.String()
	count := func(s string) int { return strings.Count(out, s) }
	if n := count("collector=flaky"); n != 3 { // boom A, recovered, boom B
		t.Errorf("flaky logged %d times:\n%s", n, out)
	}
	if !strings.Contains(out, `msg="collector recovered" host=h1 run=`+a.run+` collector=flaky`) {
		t.Errorf("no recovery logged:\n%s", out)
	}
	if n := count("collector=panicky"); n != 1 {
		t.Errorf("panicky logged %d times:\n%s", n, out)
	}
	if n := count("collector=hang"); n != 2 { // timed out, then still going
		t.Errorf("hang logged %d times:\n%s", n, out)
	}

	// Once the hung run ends, the collector runs again.
	close(release)
	hang := a.runners[2]
	waitFor(t, "the hung run to end", func() bool { return len(hang.done) == 1 })
	a.tick(context.Background(), base.Add(10*time.Second))
	last := queued(a)[5]
	found := false
	for _, l := range decodeBatch(t, last.data) {
		found = found || l.m == "hang"
	}
	if !found {
		t.Errorf("hang collector did not recover:\n%s", last.data)
	}
}

// checkIsolatedBatches: five batches, numbered 1..5, every line with the
// host tag and the tick's time, the good collector's count, the flaky one's
// points, nothing from the panicking or hanging one.
func checkIsolatedBatches(t *testing.T, bs []batch, base time.Time) {
	t.Helper()
	if len(bs) != 5 {
		t.Fatalf("%d batches after 5 ticks", len(bs))
	}
	for i, b := range bs {
		if b.seq != uint64(i+1) {
			t.Errorf("batch %d has seq %d", i, b.seq)
		}
		lines := decodeBatch(t, b.data)
		var n float64
		ms := map[string]bool{}
		for _, l := range lines {
			ms[l.m] = true
			if l.tags["host"] != "h1" {
				t.Errorf("line without host tag: %+v", l)
			}
			if want := base.Add(time.Duration(i) * time.Second).UnixNano(); l.ns != want {
				t.Errorf("batch %d: time %d, want the tick's %d", i, l.ns, want)
			}
			if l.m == "fake" {
				n = l.vals["n"]
			}
		}
		if n != float64(i+1) {
			t.Errorf("batch %d: good collector's n = %v", i, n)
		}
		if ms["hang"] || ms["panicky"] || !ms["flaky"] || !ms["vigil_agent"] {
			t.Errorf("batch %d has measurements %v", i, ms)
		}
	}
}

func TestTickDropsOldestWhenBacklogFull(t *testing.T) {
	cfg := testConfig("h2", time.Second)
	cfg.Publish.MaxPendingBatches = 2
	a, logs := newTestAgent(t, cfg)
	a.AddCollector(&counter{name: "c"})
	for i := 0; i < 5; i++ {
		a.tick(context.Background(), time.Unix(int64(1000+i), 0))
	}
	st := a.Stats()
	if st.Dropped != 3 || st.Backlog != 2 || st.Seq != 5 {
		t.Fatalf("stats %+v", st)
	}
	bs := queued(a)
	if bs[0].seq != 4 || bs[1].seq != 5 {
		t.Fatalf("kept seqs %d, %d", bs[0].seq, bs[1].seq)
	}
	// The self metrics of the last batch report the drops.
	for _, l := range decodeBatch(t, bs[1].data) {
		if l.m == "vigil_agent" && (l.vals["dropped"] != 2 || l.vals["backlog"] != 2) {
			t.Errorf("vigil_agent point %v", l.vals)
		}
	}
	if n := strings.Count(logs.String(), "backlog full"); n != 1 {
		t.Errorf("drop logged %d times", n)
	}
}

func TestTickWithoutPointsUsesNoSeq(t *testing.T) {
	cfg := testConfig("h3", time.Second)
	f := false
	cfg.SelfMetrics = &f
	a, _ := newTestAgent(t, cfg)
	a.tick(context.Background(), time.Unix(1000, 0))
	a.AddCollector(&counter{name: "c"})
	a.tick(context.Background(), time.Unix(1001, 0))
	if st := a.Stats(); st.Seq != 1 || st.Ticks != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHostTagWins(t *testing.T) {
	a, _ := newTestAgent(t, testConfig("real", time.Second))
	a.AddCollector(&funcCollector{"spoof", func(_ context.Context, emit Emit) error {
		emit("m", []wire.Tag{{Key: "host", Value: "fake"}, {Key: "a", Value: "b"}}, []wire.Field{wire.F("v", 1)})
		return nil
	}})
	a.tick(context.Background(), time.Unix(1000, 0))
	for _, l := range decodeBatch(t, queued(a)[0].data) {
		if l.tags["host"] != "real" {
			t.Fatalf("host tag %q", l.tags["host"])
		}
	}
}

func TestRandJitter(t *testing.T) {
	a, _ := newTestAgent(t, testConfig("h", time.Second))
	a.jitter = 100 * time.Millisecond
	seen := map[time.Duration]bool{}
	for i := 0; i < 200; i++ {
		j := a.randJitter()
		if j < 0 || j >= a.jitter {
			t.Fatalf("jitter %v outside [0, %v)", j, a.jitter)
		}
		seen[j] = true
	}
	if len(seen) < 100 {
		t.Fatalf("jitter is hardly random: %d distinct values", len(seen))
	}
	if _, err := hex.DecodeString(a.run); err != nil || len(a.run) != 12 {
		t.Fatalf("run id %q", a.run)
	}
	b, _ := newTestAgent(t, testConfig("h", time.Second))
	if b.run == a.run {
		t.Fatalf("two agents share run id %q", a.run)
	}
}

func TestGlobalTags(t *testing.T) {
	cfg := testConfig("real", time.Second)
	cfg.Tags = map[string]string{"role": "gpu-serving", "zone": "eu-1", "a": "global"}
	a, _ := newTestAgent(t, cfg)
	a.AddCollector(&funcCollector{"c", func(_ context.Context, emit Emit) error {
		emit("m", []wire.Tag{{Key: "a", Value: "own"}}, []wire.Field{wire.F("v", 1)})
		return nil
	}})
	a.tick(context.Background(), time.Unix(1000, 0))
	lines := decodeBatch(t, queued(a)[0].data)
	if len(lines) == 0 {
		t.Fatal("no lines")
	}
	for _, l := range lines {
		if l.tags["role"] != "gpu-serving" || l.tags["zone"] != "eu-1" || l.tags["host"] != "real" {
			t.Fatalf("tags %v, want role, zone and host on every line", l.tags)
		}
		if l.m == "m" && l.tags["a"] != "own" {
			t.Fatalf("collector's own tag lost to the global one: %v", l.tags)
		}
	}
}

func TestGlobalTagsValidation(t *testing.T) {
	_, err := ParseConfig("a.yaml", []byte("host: h\ntags:\n  host: x\n  role: \"\"\n"))
	if err == nil || !strings.Contains(err.Error(), "a.yaml:3:3") || !strings.Contains(err.Error(), `a.yaml:4:9: tag role has an empty value`) {
		t.Fatalf("error %v", err)
	}
}
