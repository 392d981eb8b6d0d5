package agent

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/route"
)

func answer(name string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, name+":"+r.URL.Path+":"+string(b))
	}))
}

func get(t *testing.T, h http.Handler, body string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(body)))
	return rec.Code, rec.Body.String()
}

// The switch follows newer epochs only, never routes to a fenced member,
// and retries a request (with its body) on the new member when the old
// one is gone.
func TestTrafficSwitchEpochsAndRetry(t *testing.T) {
	a, b := answer("a"), answer("b")
	defer b.Close()
	s := newTrafficSwitch(TrafficConfig{Listen: "127.0.0.1:0", Service: "svc", SwitchWait: 500 * time.Millisecond}, slog.New(slog.DiscardHandler))
	if code, _ := get(t, s, ""); code != http.StatusServiceUnavailable {
		t.Fatalf("no route: %d", code)
	}
	s.apply(route.Entry{Service: "svc", Active: "a", Endpoint: a.URL, Epoch: 1, State: route.StateActive})
	if code, body := get(t, s, "hello"); code != 200 || body != "a:/x:hello" {
		t.Fatalf("via a: %d %q", code, body)
	}
	// a dies; a request in flight waits for the route to switch, then is
	// retried on b with its body
	a.Close()
	go func() {
		time.Sleep(100 * time.Millisecond)
		s.apply(route.Entry{Service: "svc", Epoch: 2, State: route.StateFenced, Fenced: "a", Target: "b"})
		s.apply(route.Entry{Service: "svc", Active: "b", Endpoint: b.URL, Epoch: 2, State: route.StateActive, Fenced: "a"})
	}()
	if code, body := get(t, s, "again"); code != 200 || body != "b:/x:again" {
		t.Fatalf("retried: %d %q", code, body)
	}
	// a stale entry (older epoch) and an entry naming the fenced member are refused
	s.apply(route.Entry{Service: "svc", Active: "a", Endpoint: a.URL, Epoch: 1, State: route.StateActive})
	s.apply(route.Entry{Service: "svc", Active: "a", Endpoint: a.URL, Epoch: 2, State: route.StateActive})
	if code, body := get(t, s, ""); code != 200 || !strings.HasPrefix(body, "b:") {
		t.Fatalf("after stale entries: %d %q", code, body)
	}
	if s.switches.Load() != 2 || s.retries.Load() != 1 || s.stale.Load() != 2 || s.errors.Load() != 1 || s.requests.Load() != 4 {
		t.Fatalf("counters: switches %d retries %d stale %d errors %d requests %d",
			s.switches.Load(), s.retries.Load(), s.stale.Load(), s.errors.Load(), s.requests.Load())
	}
}

func TestTrafficConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"traffic: [{listen: nope, service: s}]\n", "traffic[0]"},
		{"traffic: [{listen: \"127.0.0.1:1\", service: \"a b\"}]\n", "service name"},
		{"traffic: [{listen: \"127.0.0.1:1\", service: s, bogus: 1}]\n", "bogus"},
	} {
		_, err := ParseConfig("a.yaml", []byte("host: h\n"+tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
