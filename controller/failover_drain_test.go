package controller_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/vigil-sre/vigil/agent"
	"github.com/vigil-sre/vigil/internal/route"
	"github.com/vigil-sre/vigil/internal/wire"
)

// answerLog records who answered each request through the switch, when.
type answerLog struct {
	mu     sync.Mutex
	at     []time.Time
	from   []string
	failed int
}

// share is the fraction of answers from member in [from, to).
func (l *answerLog) share(member string, from, to time.Time) (float64, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, got := 0, 0
	for i, at := range l.at {
		if at.Before(from) || !at.Before(to) {
			continue
		}
		n++
		if l.from[i] == member {
			got++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return float64(got) / float64(n), n
}

// TestDrainInStepsWithRouteHook: traffic moves from a to b in steps
// (25/50/75/100, route weights) through the agent's traffic switch; the
// share answered by b rises through the steps, no request fails, the
// drain ends with the failover proper, and hooks.route sees every step
// and the switch.
func TestDrainInStepsWithRouteHook(t *testing.T) {
	env := startNATSEnv(t)
	addrA, addrB, listen := freeAddr(t), freeAddr(t), freeAddr(t)
	member(t, "a", addrA, false)
	member(t, "b", addrB, false)
	hookLog := filepath.Join(t.TempDir(), "route-hook")
	self, _ := os.Executable()
	t.Setenv("VIGIL_TEST_PROG", "1")
	cfg := ctlConfig(t, env.srv.URL(), fmt.Sprintf(svcYAML,
		"      - {name: a, host: h1, endpoint: http://"+addrA+", role: primary}\n"+
			"      - {name: b, host: h2, endpoint: http://"+addrB+", standby: hot}\n")+
		fmt.Sprintf("    hooks:\n      route: {program: %q, args: [envlog, %q]}\n", self, hookLog)+
		"actions: {pass_env: [VIGIL_TEST_PROG, PATH]}\n")
	rc := startCtl(t, cfg, env.nc, nil)
	kv := routeKV(t, env.js)
	eventually(t, "route a", activeIs(t, kv, "llm", "a"))
	trafficAgent(t, env.srv.URL(), "llm", listen)
	eventually(t, "traffic switch serving", func() bool {
		resp, err := http.Get("http://" + listen + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})

	// when each weight took effect, from the route table itself
	var stepMu sync.Mutex
	stepAt := map[int]time.Time{} // share of b -> first seen
	wctx, wcancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = route.Watch(wctx, kv, "llm", func(e route.Entry) {
			stepMu.Lock()
			defer stepMu.Unlock()
			w, ok := e.Weights["b"]
			if e.Active == "b" {
				w, ok = 101, true // switched
			}
			if _, seen := stepAt[w]; ok && !seen {
				stepAt[w] = time.Now()
			}
		})
	}()
	defer func() { wcancel(); wg.Wait() }()

	var log answerLog
	stop := make(chan struct{})
	var lwg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for range 4 {
		lwg.Add(1)
		go func() {
			defer lwg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get("http://" + listen + "/")
				var body []byte
				if err == nil {
					body, _ = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				log.mu.Lock()
				if err != nil || resp.StatusCode != http.StatusOK {
					log.failed++
					if log.failed <= 3 {
						t.Logf("failed request at %s: %v %s", time.Now().Format("15:04:05.000"), err, body)
					}
				} else {
					log.at, log.from = append(log.at, time.Now()), append(log.from, string(body))
				}
				log.mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	rec := httptest.NewRecorder()
	rc.h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/drain",
		strings.NewReader(`{"service": "llm", "from": "a", "to": "b", "steps": [25, 50, 75, 100], "pause": "1200ms", "by": "alice"}`)))
	took := time.Since(start)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	lwg.Wait()
	end := time.Now()
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"verified": true`) || strings.Contains(rec.Body.String(), "error") {
		t.Fatalf("drain: %d %s", rec.Code, rec.Body)
	}
	if !activeIs(t, kv, "llm", "b")() {
		t.Fatal("after the drain b is not active")
	}
	stepMu.Lock()
	bounds := []struct {
		w        int
		min, max float64
	}{{0, 0, 0}, {25, 0.10, 0.40}, {50, 0.35, 0.65}, {75, 0.60, 0.90}, {100, 1, 1}, {101, 1, 1}}
	at := map[int]time.Time{0: start.Add(-300 * time.Millisecond)}
	for w, tm := range stepAt {
		at[w] = tm
	}
	stepMu.Unlock()
	for i, b := range bounds {
		from, ok := at[b.w]
		if !ok {
			t.Fatalf("weight %d never appeared in the route table (seen %v)", b.w, at)
		}
		to := end
		if i+1 < len(bounds) {
			to = at[bounds[i+1].w]
		}
		from = from.Add(50 * time.Millisecond) // the switch's watch lags the write a little
		got, n := log.share("b", from, to)
		t.Logf("b's weight %3d: share %.3f of %d answers in %s", min(b.w, 100), got, n, to.Sub(from).Round(time.Millisecond))
		if b.w == 100 || b.w == 101 {
			if n > 0 && got != 1 {
				t.Errorf("weight %d: a still answered (share of b %.3f)", b.w, got)
			}
			continue
		}
		if n < 20 || got < b.min || got > b.max {
			t.Errorf("weight %d: share of b %.3f over %d answers, want %.2f..%.2f", b.w, got, n, b.min, b.max)
		}
	}
	if log.failed != 0 {
		t.Errorf("%d requests failed during the drain", log.failed)
	}
	t.Logf("drain of 4 steps took %s; %d answers, %d failed", took.Round(time.Millisecond), len(log.at), log.failed)

	data, err := os.ReadFile(hookLog)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	want := []string{
		"VIGIL_ENDPOINT=http://" + addrA + " VIGIL_EPOCH=1 VIGIL_MEMBER=a VIGIL_PREVIOUS=a VIGIL_SERVICE=llm VIGIL_WEIGHTS=a=75,b=25",
		"VIGIL_ENDPOINT=http://" + addrA + " VIGIL_EPOCH=1 VIGIL_MEMBER=a VIGIL_PREVIOUS=a VIGIL_SERVICE=llm VIGIL_WEIGHTS=a=50,b=50",
		"VIGIL_ENDPOINT=http://" + addrA + " VIGIL_EPOCH=1 VIGIL_MEMBER=a VIGIL_PREVIOUS=a VIGIL_SERVICE=llm VIGIL_WEIGHTS=a=25,b=75",
		"VIGIL_ENDPOINT=http://" + addrA + " VIGIL_EPOCH=1 VIGIL_MEMBER=a VIGIL_PREVIOUS=a VIGIL_SERVICE=llm VIGIL_WEIGHTS=a=0,b=100",
		"VIGIL_ENDPOINT=http://" + addrB + " VIGIL_EPOCH=2 VIGIL_MEMBER=b VIGIL_PREVIOUS=a VIGIL_SERVICE=llm",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("route hook saw:\n%s\nwant:\n%s", data, strings.Join(want, "\n"))
	}
	checkHistory(t, kv, "llm", map[string]int{"a": 1, "b": 1})
}

// TestRouteHookFailureDoesNotBlock: a failing hooks.route is recorded in
// the failover event; the switch stands and the failover succeeds.
func TestRouteHookFailureDoesNotBlock(t *testing.T) {
	env := startNATSEnv(t)
	addrA, addrB := freeAddr(t), freeAddr(t)
	killA := member(t, "a", addrA, false)
	member(t, "b", addrB, false)
	self, _ := os.Executable()
	t.Setenv("VIGIL_TEST_PROG", "1")
	events := failoverEvents(t, env.nc)
	cfg := ctlConfig(t, env.srv.URL(), fmt.Sprintf(svcYAML,
		"      - {name: a, host: h1, endpoint: http://"+addrA+", role: primary}\n"+
			"      - {name: b, host: h2, endpoint: http://"+addrB+", standby: hot}\n")+
		fmt.Sprintf("    hooks:\n      route: {program: %q, args: [exit, \"4\", \"\", dns update refused]}\n", self)+
		"actions: {pass_env: [VIGIL_TEST_PROG, PATH]}\n")
	startCtl(t, cfg, env.nc, nil)
	kv := routeKV(t, env.js)
	eventually(t, "route a", activeIs(t, kv, "llm", "a"))
	killA()
	eventually(t, "route b", activeIs(t, kv, "llm", "b"))
	eventually(t, "failover event", func() bool { return len(events()) == 1 })
	ev := events()[0]
	if ev.Outcome != "success" || !strings.Contains(ev.Labels["route_hook_error"], "dns update refused") || ev.Values["verified"] != 1 {
		t.Fatalf("event: %+v", ev)
	}
}

// startHostAction is the agent's host action that starts a cold member:
// the test binary serving the member's name on its endpoint.
type startHostAction struct {
	t    *testing.T
	mu   sync.Mutex
	cmds []wire.Command
}

func (a *startHostAction) Name() string     { return "start_llm" }
func (a *startHostAction) Params() []string { return []string{"member", "endpoint"} }
func (a *startHostAction) Run(_ context.Context, cmd *wire.Command, progress func(float64, string)) (map[string]string, error) {
	a.mu.Lock()
	a.cmds = append(a.cmds, *cmd)
	a.mu.Unlock()
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	c := exec.Command(self, "serve", cmd.Params["member"], strings.TrimPrefix(cmd.Params["endpoint"], "http://"))
	c.Env = append(os.Environ(), "VIGIL_TEST_PROG=1")
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		return nil, err
	}
	a.t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	progress(1, "started")
	return map[string]string{"pid": fmt.Sprint(c.Process.Pid)}, nil
}

// TestColdStandbyStartedByAgent: `start: {via: agent}`: the controller
// sends a signed command (service, new epoch) to the cold standby's host
// agent, whose host action starts it; the promotion completes and its
// RTO is recorded.
func TestColdStandbyStartedByAgent(t *testing.T) {
	env := startNATSEnv(t)
	addrA, addrC := freeAddr(t), freeAddr(t)
	killA := member(t, "a", addrA, false)
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	seedFile := filepath.Join(t.TempDir(), "ctl.seed")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	acfg, err := agent.ParseConfig("agent.yaml", []byte(fmt.Sprintf(
		"host: h3\nnats: {url: %q}\ninterval: 1s\nself_metrics: false\nstate_dir: %q\nexecutor: {trusted_keys: [%s]}\n", env.srv.URL(), t.TempDir(), pub)))
	if err != nil {
		t.Fatal(err)
	}
	acfg.DisableCollectors()
	ag, err := agent.New(acfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	act := &startHostAction{t: t}
	if err := ag.HostActions().Add(act); err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(context.Background())
	adone := make(chan error, 1)
	go func() { adone <- ag.Run(actx) }()
	t.Cleanup(func() {
		acancel()
		if err := <-adone; err != nil {
			t.Errorf("agent: %v", err)
		}
	})

	events := failoverEvents(t, env.nc)
	cfg := ctlConfig(t, env.srv.URL(), fmt.Sprintf(svcYAML,
		"      - {name: a, host: h1, endpoint: http://"+addrA+", role: primary}\n"+
			"      - {name: c, host: h3, endpoint: http://"+addrC+", standby: cold}\n")+
		"    start: {via: agent, action: start_llm, timeout: 20s}\n"+
		fmt.Sprintf("actions: {signing: {seed_file: %q}}\n", seedFile))
	startCtl(t, cfg, env.nc, nil)
	kv := routeKV(t, env.js)
	eventually(t, "route a", activeIs(t, kv, "llm", "a"))
	killA()
	eventually(t, "route c", activeIs(t, kv, "llm", "c"))
	eventually(t, "failover event", func() bool { return len(events()) == 1 })
	ev := events()[0]
	rto := rtoOf(t, ev)
	if ev.Labels["standby"] != "cold" || ev.Labels["to"] != "c" || ev.Values["verified"] != 1 {
		t.Fatalf("event %+v", ev)
	}
	act.mu.Lock()
	cmds := append([]wire.Command(nil), act.cmds...)
	act.mu.Unlock()
	if len(cmds) != 1 || cmds[0].Service != "llm" || cmds[0].Epoch != 2 || cmds[0].Params["member"] != "c" || cmds[0].ID != "failover/llm/epoch-2/start/c" {
		t.Fatalf("host action ran %d times: %+v", len(cmds), cmds)
	}
	if st := ag.ExecutorStats(); len(st.Rejected) != 0 || st.Ran != 1 {
		t.Errorf("executor rejected commands: %+v", st)
	}
	t.Logf("cold standby started by its agent: RTO (fault detected -> route switched) %.3fs", rto)
	checkHistory(t, kv, "llm", map[string]int{"a": 1, "c": 1})
}
