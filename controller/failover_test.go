package controller_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/agent"
	"github.com/vigil-sre/vigil/controller"
	"github.com/vigil-sre/vigil/internal/route"
	"github.com/vigil-sre/vigil/internal/wire"
)

// failoverProg is the test binary as a member of a service (see
// testProgram):
//
//	serve NAME ADDR [warm]  answer NAME on every path; warm: 503 until
//	                        POST /ready
//	spawn PIDFILE           (start hook) start "serve $VIGIL_MEMBER" on
//	                        $VIGIL_ENDPOINT's address in its own session,
//	                        append its pid to PIDFILE, exit
//	ready                   (ready hook) POST $VIGIL_ENDPOINT/ready
func failoverProg(mode string, a []string) int {
	switch mode {
	case "serve":
		var ready atomic.Bool
		ready.Store(len(a) < 3 || a[2] != "warm")
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && r.URL.Path == "/ready" {
				ready.Store(true)
			}
			if !ready.Load() {
				http.Error(w, a[0]+" not ready", http.StatusServiceUnavailable)
				return
			}
			_, _ = io.WriteString(w, a[0])
		})
		fmt.Fprintln(os.Stderr, http.ListenAndServe(a[1], h))
		return 3
	case "spawn":
		self, _ := os.Executable()
		addr := strings.TrimPrefix(os.Getenv("VIGIL_ENDPOINT"), "http://")
		cmd := exec.Command(self, "serve", os.Getenv("VIGIL_MEMBER"), addr)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
		return appendLine(a[0], strconv.Itoa(cmd.Process.Pid))
	case "ready":
		resp, err := http.Post(os.Getenv("VIGIL_ENDPOINT")+"/ready", "text/plain", nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
		resp.Body.Close()
		return 0
	}
	return 2
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// member starts the test binary as a service member on addr; the returned
// function kills it (SIGKILL: a crash).
func member(t *testing.T, name, addr string, warm bool) func() {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"serve", name, addr}
	if warm {
		args = append(args, "warm")
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), "VIGIL_TEST_PROG=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	kill := func() { once.Do(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) }
	t.Cleanup(kill)
	eventually(t, name+" listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return kill
}

// trafficAgent runs a real agent whose only job is the traffic switch for
// service on listen.
func trafficAgent(t *testing.T, natsURL, service, listen string) {
	t.Helper()
	acfg, err := agent.ParseConfig("agent.yaml", []byte(fmt.Sprintf(
		"host: edge-1\nnats: {url: %q}\ninterval: 1s\nself_metrics: false\ntraffic: [{listen: %q, service: %s}]\n", natsURL, listen, service)))
	if err != nil {
		t.Fatal(err)
	}
	acfg.DisableCollectors()
	ag, err := agent.New(acfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ag.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
}

// loadClient sends GET requests through the switch every interval, each
// on its own goroutine, and records who answered.
type loadClient struct {
	interval time.Duration
	mu       sync.Mutex
	ok       map[string]int
	failed   int
	lastFrom []string // answering member, in order of completion
	slowest  time.Duration
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startLoad(url string, interval time.Duration) *loadClient {
	lc := &loadClient{interval: interval, ok: map[string]int{}, stop: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second}
	lc.wg.Add(1)
	go func() {
		defer lc.wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-lc.stop:
				return
			case <-tick.C:
			}
			lc.wg.Add(1)
			go func() {
				defer lc.wg.Done()
				start := time.Now()
				resp, err := client.Get(url)
				var body []byte
				if err == nil {
					body, _ = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				lc.mu.Lock()
				defer lc.mu.Unlock()
				lc.slowest = max(lc.slowest, time.Since(start))
				if err != nil || resp.StatusCode != http.StatusOK {
					lc.failed++
					return
				}
				lc.ok[string(body)]++
				lc.lastFrom = append(lc.lastFrom, string(body))
			}()
		}
	}()
	return lc
}

func (lc *loadClient) count(member string) int {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.ok[member]
}

func (lc *loadClient) finish() {
	close(lc.stop)
	lc.wg.Wait()
}

// failoverEvents collects the failover action events (with their RTO).
func failoverEvents(t *testing.T, nc *nats.Conn) func() []*wire.Event {
	t.Helper()
	var mu sync.Mutex
	var evs []*wire.Event
	sub, err := nc.Subscribe(wire.EventsPrefix+wire.KindAction+".>", func(m *nats.Msg) {
		ev, err := wire.UnmarshalEvent(m.Data)
		if err == nil && ev.ActionKind == "failover" && ev.Action == "failover" {
			mu.Lock()
			evs = append(evs, ev)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return func() []*wire.Event {
		mu.Lock()
		defer mu.Unlock()
		return append([]*wire.Event(nil), evs...)
	}
}

func routeKV(t *testing.T, js jetstream.JetStream) jetstream.KeyValue {
	t.Helper()
	var kv jetstream.KeyValue
	eventually(t, "route bucket", func() bool {
		var err error
		kv, err = route.Open(context.Background(), js)
		return err == nil
	})
	return kv
}

func activeIs(t *testing.T, kv jetstream.KeyValue, service, member string) func() bool {
	return func() bool {
		e, err := route.Get(context.Background(), kv, service)
		return err == nil && e.State == route.StateActive && e.Active == member
	}
}

// checkHistory: every revision names at most one active member, epochs
// never go back, a fenced member is never active again, and each member
// became active exactly as often as want says.
func checkHistory(t *testing.T, kv jetstream.KeyValue, service string, want map[string]int) []route.Entry {
	t.Helper()
	hist, err := route.History(context.Background(), kv, service)
	if err != nil {
		t.Fatal(err)
	}
	became := map[string]int{}
	fencedAt := map[string]uint64{}
	prevActive, prevEpoch := "", uint64(0)
	for _, e := range hist {
		t.Logf("revision %d: epoch %d %s active=%q fenced=%q target=%q", e.Revision, e.Epoch, e.State, e.Active, e.Fenced, e.Target)
		if e.Epoch < prevEpoch {
			t.Errorf("revision %d: epoch went back from %d to %d", e.Revision, prevEpoch, e.Epoch)
		}
		if e.Fenced != "" {
			fencedAt[e.Fenced] = e.Epoch
		}
		if e.State == route.StateActive {
			if fe, ok := fencedAt[e.Active]; ok && fe >= e.Epoch {
				t.Errorf("revision %d: fenced member %s active at epoch %d", e.Revision, e.Active, e.Epoch)
			}
			if prevActive != "" && prevActive != e.Active && e.Epoch == prevEpoch {
				t.Errorf("revision %d: %s and %s both active at epoch %d", e.Revision, prevActive, e.Active, e.Epoch)
			}
			if e.Active != prevActive {
				became[e.Active]++
			}
		}
		prevActive, prevEpoch = e.Active, e.Epoch
	}
	for m, n := range want {
		if became[m] != n {
			t.Errorf("%s became active %d times, want %d", m, became[m], n)
		}
	}
	return hist
}

const svcYAML = `services:
  - name: llm
    health: {path: /healthz, interval: 100ms, timeout: 250ms, failures: 3}
    members:
%s`

func rtoOf(t *testing.T, ev *wire.Event) float64 {
	t.Helper()
	rto, ok := ev.Values["rto_seconds"]
	if !ok || rto <= 0 || ev.Outcome != controller.OutcomeSuccess || rto != ev.DurationSeconds {
		t.Fatalf("failover event without a valid RTO: %+v", ev)
	}
	return rto
}

// TestFailoverHotStandbyUnderLoad: two real server processes behind the
// agent's traffic switch, a client sending a request every 10 ms; the
// primary is killed. Acceptance: failed requests × 10 ms ≤ 1 s, and the
// RTO of the hot standby is recorded.
func TestFailoverHotStandbyUnderLoad(t *testing.T) {
	env := startNATSEnv(t)
	addrA, addrB, listen := freeAddr(t), freeAddr(t), freeAddr(t)
	killA := member(t, "a", addrA, false)
	member(t, "b", addrB, false)
	events := failoverEvents(t, env.nc)
	cfg := ctlConfig(t, env.srv.URL(), fmt.Sprintf(svcYAML,
		"      - {name: a, host: h1, endpoint: http://"+addrA+", role: primary}\n"+
			"      - {name: b, host: h2, endpoint: http://"+addrB+", standby: hot}\n"))
	startCtl(t, cfg, env.nc, nil)
	kv := routeKV(t, env.js)
	eventually(t, "route a", activeIs(t, kv, "llm", "a"))
	trafficAgent(t, env.srv.URL(), "llm", listen)

	const every = 10 * time.Millisecond
	lc := startLoad("http://"+listen+"/v1/generate", every)
	eventually(t, "traffic through a", func() bool { return lc.count("a") >= 20 })
	killed := time.Now()
	killA()
	eventually(t, "traffic through b", func() bool { return lc.count("b") >= 50 })
	lc.finish()

	failedFor := time.Duration(lc.failed) * every
	t.Logf("requests: a %d, b %d, failed %d (= %s of failed requests at one per %s); slowest request %s; b serving %s after the kill",
		lc.ok["a"], lc.ok["b"], lc.failed, failedFor, every, lc.slowest.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	if failedFor > time.Second {
		t.Errorf("%d failed requests = %s of failures, want at most 1s", lc.failed, failedFor)
	}
	tail := lc.lastFrom[len(lc.lastFrom)-20:]
	for _, m := range tail {
		if m != "b" {
			t.Fatalf("after the failover a request was answered by %q", m)
		}
	}
	eventually(t, "failover event", func() bool { return len(events()) == 1 })
	ev := events()[0]
	t.Logf("hot standby RTO (fault detected -> route switched): %.3fs", rtoOf(t, ev))
	if ev.Labels["standby"] != "hot" || ev.Labels["to"] != "b" || ev.Values["verified"] != 1 || ev.Host != "h2" {
		t.Errorf("event %+v", ev)
	}
	checkHistory(t, kv, "llm", map[string]int{"a": 1, "b": 1})
}

// TestFailoverWarmThenCold: the primary dies, the warm standby is readied
// (hook) and promoted; then it dies and the cold standby is started (hook)
// and promoted. Both RTOs are recorded and reported.
func TestFailoverWarmThenCold(t *testing.T) {
	env := startNATSEnv(t)
	addrA, addrW, addrC, listen := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	killA := member(t, "a", addrA, false)
	killW := member(t, "w", addrW, true)
	pidfile := filepath.Join(t.TempDir(), "spawned")
	t.Cleanup(func() { killPids(pidfile) })
	t.Setenv("VIGIL_TEST_PROG", "1") // for the hooks, through pass_env
	self, _ := os.Executable()
	events := failoverEvents(t, env.nc)
	cfg := ctlConfig(t, env.srv.URL(), fmt.Sprintf(svcYAML,
		"      - {name: a, host: h1, endpoint: http://"+addrA+", role: primary}\n"+
			"      - {name: w, host: h2, endpoint: http://"+addrW+", standby: warm}\n"+
			"      - {name: c, host: h3, endpoint: http://"+addrC+", standby: cold}\n")+
		fmt.Sprintf("    hooks:\n      ready: {program: %q, args: [ready]}\n      start: {program: %q, args: [spawn, %q]}\n", self, self, pidfile)+
		"actions: {pass_env: [VIGIL_TEST_PROG, PATH]}\n")
	startCtl(t, cfg, env.nc, nil)
	kv := routeKV(t, env.js)
	eventually(t, "route a", activeIs(t, kv, "llm", "a"))
	trafficAgent(t, env.srv.URL(), "llm", listen)
	lc := startLoad("http://"+listen+"/", 10*time.Millisecond)
	eventually(t, "traffic through a", func() bool { return lc.count("a") >= 10 })

	killA()
	eventually(t, "traffic through w", func() bool { return lc.count("w") >= 10 })
	// The failover to w ends with its verification; killing w before that
	// (traffic flows as soon as the route switches) would fail it.
	eventually(t, "first failover event", func() bool { return len(events()) >= 1 })
	killW()
	eventually(t, "traffic through c", func() bool { return lc.count("c") >= 10 })
	lc.finish()
	t.Logf("requests: a %d, w %d, c %d, failed %d", lc.ok["a"], lc.ok["w"], lc.ok["c"], lc.failed)

	eventually(t, "two failover events", func() bool { return len(events()) == 2 })
	for i, want := range []string{"warm", "cold"} {
		ev := events()[i]
		if ev.Labels["standby"] != want {
			t.Fatalf("failover %d promoted a %s standby, want %s: %+v", i+1, ev.Labels["standby"], want, ev)
		}
		t.Logf("%s standby RTO (fault detected -> route switched, readying included): %.3fs", want, rtoOf(t, ev))
	}
	checkHistory(t, kv, "llm", map[string]int{"a": 1, "w": 1, "c": 1})
}

func killPids(file string) {
	data, _ := os.ReadFile(file)
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// TestFailoverControllerRestartMidway: the controller stops right after
// fencing the old primary (its context is cancelled there); a restarted
// controller completes the failover exactly once, and no revision of the
// route table ever has two members active.
func TestFailoverControllerRestartMidway(t *testing.T) {
	env := startNATSEnv(t)
	addrA, addrB := freeAddr(t), freeAddr(t)
	killA := member(t, "a", addrA, false)
	member(t, "b", addrB, false)
	events := failoverEvents(t, env.nc)
	cfg := func() *controller.Config {
		return ctlConfig(t, env.srv.URL(), fmt.Sprintf(svcYAML,
			"      - {name: a, host: h1, endpoint: http://"+addrA+", role: primary}\n"+
				"      - {name: b, host: h2, endpoint: http://"+addrB+", standby: hot}\n"))
	}
	var first *runningCtl
	var once sync.Once
	stopped := make(chan struct{})
	t.Cleanup(func() { controller.SetFailoverStageHook(nil) })
	controller.SetFailoverStageHook(func(service, stage string) {
		if stage == "fenced" {
			once.Do(func() { first.cancel(); close(stopped) })
		}
	})
	first = startCtl(t, cfg(), env.nc, nil)
	kv := routeKV(t, env.js)
	eventually(t, "route a", activeIs(t, kv, "llm", "a"))
	killA()
	select {
	case <-stopped:
	case <-time.After(15 * time.Second):
		t.Fatal("the failover never reached the fence")
	}
	first.stop(t)
	e, err := route.Get(context.Background(), kv, "llm")
	if err != nil || e.State != route.StateFenced || e.Target != "b" || e.Epoch != 2 {
		t.Fatalf("after the first controller stopped: %+v, %v", e, err)
	}
	startCtl(t, cfg(), env.nc, nil)
	eventually(t, "route b", activeIs(t, kv, "llm", "b"))
	time.Sleep(500 * time.Millisecond) // room for a wrong second completion
	hist := checkHistory(t, kv, "llm", map[string]int{"a": 1, "b": 1})
	if len(hist) != 3 || hist[2].Epoch != 2 {
		t.Errorf("history has %d revisions (want 3: a, fenced, b at epoch 2)", len(hist))
	}
	eventually(t, "failover event", func() bool { return len(events()) >= 1 })
	time.Sleep(200 * time.Millisecond)
	evs := events()
	if len(evs) != 1 || evs[0].Labels["resumed"] != "true" {
		t.Fatalf("want exactly one failover event, from the resuming controller: %d %+v", len(evs), evs)
	}
	t.Logf("RTO across the controller restart: %.3fs", rtoOf(t, evs[0]))
}

// TestFailoverManualModeAndAPI: in manual mode a dead primary only puts a
// failover up for approval; `approve` runs it (through the dispatcher and
// the failover action kind). POST /api/v1/failover fails back on demand.
func TestFailoverManualModeAndAPI(t *testing.T) {
	env := startNATSEnv(t)
	addrA, addrB := freeAddr(t), freeAddr(t)
	killA := member(t, "a", addrA, false)
	member(t, "b", addrB, false)
	cfg := ctlConfig(t, env.srv.URL(), fmt.Sprintf(svcYAML,
		"      - {name: a, host: h1, endpoint: http://"+addrA+", role: primary}\n"+
			"      - {name: b, host: h2, endpoint: http://"+addrB+", standby: hot}\n")+"    mode: manual\n")
	rc := startCtl(t, cfg, env.nc, nil)
	kv := routeKV(t, env.js)
	eventually(t, "route a", activeIs(t, kv, "llm", "a"))
	killA()
	key := "failover/llm/epoch-1"
	eventually(t, "failover awaiting approval", func() bool {
		return strings.Contains(rc.get(t, "/api/v1/actions").Body.String(), `"state": "awaiting_approval"`)
	})
	time.Sleep(300 * time.Millisecond)
	if !activeIs(t, kv, "llm", "a")() {
		t.Fatal("manual mode failed over without approval")
	}
	post := func(path, body string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		rc.h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
		return rec
	}
	if rec := post("/api/v1/actions/approve", `{"key": "`+key+`", "by": "alice"}`); rec.Code != http.StatusOK {
		t.Fatalf("approve: %d %s", rec.Code, rec.Body)
	}
	eventually(t, "route b", activeIs(t, kv, "llm", "b"))
	// a is back; an operator fails back through the API
	member(t, "a", addrA, false)
	if rec := post("/api/v1/failover", `{"service": "llm", "to": "nope", "by": "alice"}`); rec.Code != http.StatusBadRequest {
		t.Fatalf("failover to an unknown member: %d %s", rec.Code, rec.Body)
	}
	rec := post("/api/v1/failover", `{"service": "llm", "to": "a", "by": "alice"}`)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"verified": true`) {
		t.Fatalf("failover API: %d %s", rec.Code, rec.Body)
	}
	if !activeIs(t, kv, "llm", "a")() {
		t.Fatal("API failover did not switch back to a")
	}
	routes := rc.get(t, "/api/v1/routes").Body.String()
	if !strings.Contains(routes, `"epoch": 3`) {
		t.Errorf("routes: %s", routes)
	}
	checkHistory(t, kv, "llm", map[string]int{"a": 2, "b": 1})
}

func TestServicesConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"services:\n  - name: x\n    members:\n      - {name: a, endpoint: http://h:1, role: primary}\n", "at least one standby"},
		{"services:\n  - name: x\n    members:\n      - {name: a, endpoint: http://h:1}\n      - {name: b, endpoint: http://h:2}\n", "exactly one primary"},
		{"services:\n  - name: x\n    members:\n      - {name: a, endpoint: http://h:1, role: primary}\n      - {name: b, endpoint: http://h:2, standby: cold}\n", "needs hooks.start"},
		{"services:\n  - name: x\n    members:\n      - {name: a, endpoint: h1, role: primary}\n      - {name: b, endpoint: http://h:2}\n", "http(s) URL"},
		{"services:\n  - name: x\n    mode: sometimes\n    members:\n      - {name: a, endpoint: http://h:1, role: primary}\n      - {name: b, endpoint: http://h:2}\n", "use auto or manual"},
		{"services:\n  - name: x y\n    members:\n      - {name: a, endpoint: http://h:1, role: primary}\n      - {name: b, endpoint: http://h:2}\n", "service name"},
	} {
		_, err := controller.ParseConfig("c.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "c.yaml:") {
			t.Errorf("%s: err %v, want %q with a position", tc.yaml, err, tc.want)
		}
	}
}
