package controller

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/internal/natsembed"
)

// TestLeaseKeyRevisions checks against the real server what the lines of
// terms (lease.go) rely on, in a bucket made by leaseBucketConfig: the
// key's expiry by the bucket's age limit writes no revision, also when
// the key expires while the server is down (the store keeps its last
// sequence over a restart), so a Create after an expiry takes the last
// write's revision + 1; a deletion takes a revision of its own.
func TestLeaseKeyRevisions(t *testing.T) {
	srv := natsembed.StartT(t)
	nc, err := nats.Connect(srv.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfg := LeaseConfig{Bucket: "LEASE_REVISIONS", Key: "leader", TTL: time.Second}
	kv, err := js.CreateOrUpdateKeyValue(ctx, leaseBucketConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	create := func(what string) uint64 {
		t.Helper()
		for {
			rev, err := kv.Create(ctx, cfg.Key, []byte(what))
			if err == nil {
				return rev
			}
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrKeyExists) {
				t.Fatalf("create (%s): %v", what, err)
			}
			time.Sleep(100 * time.Millisecond) // reconnecting after a restart
		}
	}
	expired := func(what string) {
		t.Helper()
		for {
			_, err := kv.Get(ctx, cfg.Key)
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("the key did not expire (%s): %v", what, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	r1 := create("first")
	expired("first")
	if r2 := create("after expiry"); r2 != r1+1 {
		t.Fatalf("create after the key expired: revision %d, want %d (did the expiry write one?)", r2, r1+1)
	}
	r2 := r1 + 1
	if err := kv.Delete(ctx, cfg.Key, jetstream.LastRevision(r2)); err != nil {
		t.Fatal(err)
	}
	r3 := create("after delete")
	if r3 != r2+2 {
		t.Fatalf("create after a deletion: revision %d, want %d", r3, r2+2)
	}

	srv.Stop()
	time.Sleep(2 * cfg.TTL) // the key's age passes the limit while the server is down
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	expired("across a restart")
	if r4 := create("after a restart"); r4 != r3+1 {
		t.Fatalf("create after the key expired while the server was down: revision %d, want %d", r4, r3+1)
	}
}
