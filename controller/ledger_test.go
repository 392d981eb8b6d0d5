package controller

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/natsembed"
	"github.com/vigil-sre/vigil/rules"
)

// hookServer is a real local HTTP server recording webhook calls; the
// first fail calls answer 500.
type hookServer struct {
	*httptest.Server
	mu    sync.Mutex
	keys  []string
	first webhookBody
	fail  int
}

func newHookServer(t *testing.T, fail int) *hookServer {
	h := &hookServer{fail: fail}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.keys) == 0 {
			_ = json.Unmarshal(b, &h.first)
		}
		h.keys = append(h.keys, r.Header.Get("Idempotency-Key"))
		if len(h.keys) <= h.fail {
			http.Error(w, "not yet", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) calls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.keys...)
}

func hookRule(name, url string, params ...string) *rules.Rule {
	p := map[string]string{"url": url}
	for i := 0; i+1 < len(params); i += 2 {
		p[params[i]] = params[i+1]
	}
	return testRule(name, &rules.Action{Name: name, Kind: "webhook", Params: p, Timeout: 5 * time.Second}, 0, "")
}

func TestWebhookRetriesWithBackoffAndLedger(t *testing.T) {
	ns := natsembed.StartT(t)
	hook := newHookServer(t, 2)
	pub, stop := jsPublisher(t, ns.URL())
	defer stop()
	h := startDispatcher(t, ActionsConfig{Concurrency: 1, Safety: Safety{RetryBackoff: 20 * time.Millisecond}}, pub)
	in := testIntent(hookRule("notify", hook.URL, "retries", "2"), "web-1", "g/notify/web-1/1")
	in.PredictedFailure = time.Now().Add(time.Hour)
	h.d.Submit(in)
	evs := h.events(t, 2)
	wantEvent(t, evs[1], in.Key, "finished", OutcomeSuccess)
	want := []string{in.Key, in.Key + "#retry1", in.Key + "#retry2"}
	if got := hook.calls(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("calls %v, want %v", got, want)
	}
	if hook.first.Rule != "notify" || hook.first.Subject != "web-1" || hook.first.Values["v"] != 1 || hook.first.PredictedFailure == nil {
		t.Errorf("body %+v", hook.first)
	}
	e, err := h.d.ledger.get(context.Background(), in.Key)
	if err != nil || e == nil || e.State != "succeeded" || e.Attempts != 3 {
		t.Fatalf("ledger %+v %v", e, err)
	}
	var states []string
	for _, s := range e.History {
		states = append(states, s.State)
	}
	if got := strings.Join(states, ","); got != "pending,running,retrying,retrying,succeeded" {
		t.Errorf("history %s", got)
	}

	// Without retries a non-2xx answer is a failure, recorded as such.
	bad := newHookServer(t, 100)
	in2 := testIntent(hookRule("notify2", bad.URL), "web-1", "g/notify2/web-1/1")
	h.d.Submit(in2)
	evs = h.events(t, 2)
	wantEvent(t, evs[1], in2.Key, "finished", OutcomeFailure)
	if evs[1].ExitCode != 500 || !strings.Contains(evs[1].Error, "500") || len(bad.calls()) != 1 {
		t.Errorf("failure event %+v, calls %d", evs[1], len(bad.calls()))
	}
	if e, _ := h.d.ledger.get(context.Background(), in2.Key); e == nil || e.State != "failed" {
		t.Errorf("ledger %+v", e)
	}
}

func TestRateLimits(t *testing.T) {
	hook := newHookServer(t, 0)
	h := startDispatcher(t, ActionsConfig{Concurrency: 1, Safety: Safety{MaxPerMinute: 3, RuleMaxPerMinute: 2}}, nil)
	a, b := hookRule("a", hook.URL), hookRule("b", hook.URL)
	h.d.Submit(testIntent(a, "h1", "a1"))
	h.d.Submit(testIntent(a, "h2", "a2"))
	h.d.Submit(testIntent(a, "h3", "a3")) // rule a: 3rd in a minute
	h.d.Submit(testIntent(b, "h1", "b1"))
	h.d.Submit(testIntent(b, "h2", "b2")) // controller: 4th in a minute
	outcomes := map[string]string{}
	for _, ev := range h.events(t, 2+2+1+2+1) {
		if ev.State != "started" {
			outcomes[ev.Key] = ev.Outcome
		}
	}
	want := map[string]string{"a1": OutcomeSuccess, "a2": OutcomeSuccess, "a3": OutcomeRateLimited, "b1": OutcomeSuccess, "b2": OutcomeRateLimited}
	for k, v := range want {
		if outcomes[k] != v {
			t.Errorf("%s: outcome %q, want %q (all %v)", k, outcomes[k], v, outcomes)
		}
	}
	// A minute later the limit has room again.
	h.offset.Store(int64(61 * time.Second))
	h.d.Submit(testIntent(a, "h4", "a4"))
	wantEvent(t, h.events(t, 2)[1], "a4", "finished", OutcomeSuccess)
	if n := len(hook.calls()); n != 4 {
		t.Errorf("webhook called %d times, want 4", n)
	}
}

func TestRuleFilesAcceptHostAndWebhook(t *testing.T) {
	good := `groups:
  - name: g
    rules:
      - name: backup_before_full
        expr: value("disk.used_percent") > 90
        action: {kind: host, params: {action: backup, policy: data, retries: "2"}}
      - name: page
        expr: value("disk.used_percent") > 95
        action: {kind: webhook, params: {url: "https://hooks.example/vigil"}}
`
	if _, err := rules.Parse("good.yaml", []byte(good)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ action, want string }{
		{`{kind: host, params: {policy: data}}`, "params.action"},
		{`{kind: host, params: {action: backup, retries: lots}}`, "retries"},
		{`{kind: webhook, params: {url: "ftp://x"}}`, "http or https"},
		{`{kind: webhook, params: {url: "https://x", method: GET}}`, `no parameter "method"`},
	} {
		src := "groups:\n  - name: g\n    rules:\n      - name: r\n        expr: value(\"x\") > 1\n        action: " + c.action + "\n"
		_, err := rules.Parse("bad.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.yaml:") {
			t.Errorf("%s: error %v, want it to name %q and the file", c.action, err, c.want)
		}
	}
}

func TestSafetyConfig(t *testing.T) {
	c, err := ParseConfig("c.yaml", []byte("actions:\n  retries: 2\n  retry_backoff: 1s\n  max_per_minute: 10\n  rule_max_per_minute: 2\n  ledger: MY_LEDGER\n  signing: {seed_file: /etc/vigil/controller.nk}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Actions.Safety
	if s.Retries != 2 || s.RetryBackoff != time.Second || s.MaxPerMinute != 10 || s.RuleMaxPerMinute != 2 || s.bucket() != "MY_LEDGER" || s.Signing.SeedFile != "/etc/vigil/controller.nk" {
		t.Fatalf("parsed %+v", s)
	}
	if got := []time.Duration{s.retryBackoff(1), s.retryBackoff(2), s.retryBackoff(3), s.retryBackoff(20)}; got[0] != time.Second || got[1] != 2*time.Second || got[2] != 4*time.Second || got[3] != 10*time.Minute {
		t.Errorf("backoff %v", got)
	}
	_, err = ParseConfig("c.yaml", []byte("actions:\n  retries: -1\n"))
	if err == nil || !strings.Contains(err.Error(), "c.yaml:2") || !strings.Contains(err.Error(), "retries -1") {
		t.Fatalf("negative retries: %v", err)
	}
}

// A denied or expired approval leaves the key settled as skipped in the
// ledger, not awaiting_approval forever.
func TestLedgerSettlesDeniedAndExpiredApprovals(t *testing.T) {
	ns := natsembed.StartT(t)
	pub, stop := jsPublisher(t, ns.URL())
	defer stop()
	h := startDispatcher(t, ActionsConfig{Concurrency: 1, ApprovalTimeout: time.Hour}, pub)
	r := testRule("r", execSpec("true"), 0, "manual")
	h.d.Submit(testIntent(r, "web-1", "g/r/web-1/1"))
	h.d.Submit(testIntent(r, "web-2", "g/r/web-2/1"))
	h.events(t, 2) // both awaiting approval
	state := func(key string) string {
		e, err := h.d.ledger.get(context.Background(), key)
		if err != nil || e == nil {
			t.Fatalf("ledger %s: %v %v", key, e, err)
		}
		return e.State
	}
	if s := state("g/r/web-1/1"); s != "awaiting_approval" {
		t.Fatalf("state %q, want awaiting_approval", s)
	}
	if _, err := h.d.Decide(context.Background(), "g/r/web-1/1", "bob", "", false); err != nil {
		t.Fatal(err)
	}
	h.offset.Store(int64(2 * time.Hour))
	h.events(t, 2) // denied, expired: the ledger is written right after the event
	deadline := time.Now().Add(10 * time.Second)
	for {
		s1, s2 := state("g/r/web-1/1"), state("g/r/web-2/1")
		if s1 == "skipped" && s2 == "skipped" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ledger states %q and %q, want skipped for the denied and the expired", s1, s2)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
