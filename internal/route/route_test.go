package route_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/internal/natsembed"
	"github.com/vigil-sre/vigil/internal/route"
)

func bucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	srv := natsembed.StartT(t)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := route.Ensure(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// Many writers race to fence the same entry: exactly one wins, the others
// get ErrConflict, and the history never names two active members.
func TestFenceIsCompareAndSwap(t *testing.T) {
	kv := bucket(t)
	ctx := context.Background()
	now := time.Now()
	e, err := route.Init(ctx, kv, "llm", route.Target{Member: "a", Endpoint: "http://a"}, "test", now)
	if err != nil || e.Epoch != 1 || e.Active != "a" {
		t.Fatalf("Init = %+v, %v", e, err)
	}
	again, err := route.Init(ctx, kv, "llm", route.Target{Member: "b", Endpoint: "http://b"}, "test", now)
	if err != nil || again.Active != "a" {
		t.Fatalf("second Init changed the route: %+v, %v", again, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			to := route.Target{Member: []string{"b", "c"}[i%2], Endpoint: "http://x"}
			_, err := route.Fence(ctx, kv, "llm", "a", to, 1, now, "w", "test", now)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, route.ErrConflict):
				conflicts++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || conflicts != 7 {
		t.Fatalf("wins %d conflicts %d, want 1 and 7", wins, conflicts)
	}
	f, err := route.Get(ctx, kv, "llm")
	if err != nil || f.State != route.StateFenced || f.Epoch != 2 || f.Fenced != "a" {
		t.Fatalf("after fence: %+v, %v", f, err)
	}
	// a switch to another member than the target is refused
	if _, err := route.Switch(ctx, kv, "llm", "zzz", 2, "w", now); !errors.Is(err, route.ErrConflict) {
		t.Fatalf("switch to a non-target: %v", err)
	}
	s1, err := route.Switch(ctx, kv, "llm", f.Target, 2, "w", now)
	if err != nil || s1.Active != f.Target || s1.State != route.StateActive {
		t.Fatalf("switch: %+v, %v", s1, err)
	}
	s2, err := route.Switch(ctx, kv, "llm", f.Target, 2, "w2", now)
	if !errors.Is(err, route.ErrSwitched) || s2.Revision != s1.Revision {
		t.Fatalf("repeated switch wrote again: %+v, %v", s2, err)
	}
	// the old primary cannot be fenced again at the old epoch
	if _, err := route.Fence(ctx, kv, "llm", "a", route.Target{Member: "b", Endpoint: "http://b"}, 1, now, "w", "x", now); !errors.Is(err, route.ErrConflict) {
		t.Fatalf("stale fence: %v", err)
	}
	hist, err := route.History(ctx, kv, "llm")
	if err != nil || len(hist) != 3 {
		t.Fatalf("history %d entries, %v", len(hist), err)
	}
}

func TestWatchFollowsPromotion(t *testing.T) {
	kv := bucket(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := route.Init(ctx, kv, "svc", route.Target{Member: "a", Endpoint: "http://a"}, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	got := make(chan route.Entry, 10)
	done := make(chan error, 1)
	go func() { done <- route.Watch(ctx, kv, "svc", func(e route.Entry) { got <- e }) }()
	first := <-got
	if first.Active != "a" {
		t.Fatalf("first = %+v", first)
	}
	p, err := route.Promote(ctx, kv, "svc", "a", route.Target{Member: "b", Endpoint: "http://b"}, 1)
	if err != nil || p.Active != "b" || p.Epoch != 2 {
		t.Fatalf("Promote = %+v, %v", p, err)
	}
	for _, want := range []string{route.StateFenced, route.StateActive} {
		select {
		case e := <-got:
			if e.State != want || e.Epoch != 2 {
				t.Fatalf("watched %+v, want state %s at epoch 2", e, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no update")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestDecodeRejectsTwoRoles(t *testing.T) {
	for _, bad := range []string{
		`{"service":"s","active":"a","endpoint":"http://a","state":"active","fenced":"a","epoch":2}`,
		`{"service":"s","active":"a","state":"fenced","epoch":2}`,
		`{"service":"s","state":"active","epoch":2}`,
		`{"service":"s","state":"weird"}`,
		`not json`,
	} {
		if _, err := route.Decode([]byte(bad), 1); err == nil {
			t.Errorf("Decode(%s) accepted", bad)
		}
	}
}
