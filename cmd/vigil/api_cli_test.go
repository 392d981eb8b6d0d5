package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/controller"
	"github.com/vigil-sre/vigil/internal/natsembed"
	"github.com/vigil-sre/vigil/rules"
)

// TestStatusActionsApprove drives a real controller through its API with
// the CLI: a manual-mode rule fires, `vigil actions` shows the action
// awaiting approval, `vigil approve` runs it, `vigil status` shows the host
// and the firing rule.
func TestStatusActionsApprove(t *testing.T) {
	ns := natsembed.StartT(t)
	set, err := rules.Parse("r.yaml", []byte(`groups:
  - name: g
    interval: 100ms
    rules:
      - name: hot
        expr: value("m.v") > 1
        mode: manual
        action: {kind: exec, program: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := controller.ParseConfig("c.yaml", []byte(fmt.Sprintf("nats: {url: %q}\napi: {listen: \"off\"}\n", ns.URL())))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	nc, err := controller.Connect(cfg.NATS, "t", log)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctl, err := controller.New(cfg, nc, set, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctl.Run(ctx) }()
	defer func() { cancel(); <-done }()
	srv := httptest.NewServer(ctl.Handler())
	defer srv.Close()

	js, _ := jetstream.New(nc)
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := js.Publish(ctx, "vigil.telemetry.web-1", []byte(fmt.Sprintf("m,host=web-1 v=5 %d\n", time.Now().UnixNano())))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // the controller creates the stream
	}

	cli := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		full := append([]string{args[0], "--api", srv.URL}, args[1:]...)
		code := run(full, &out, &errb)
		return out.String() + errb.String(), code
	}
	// `vigil actions --json` until the action awaits approval.
	var key string
	for key == "" {
		out, code := cli("actions", "--json")
		var recs []map[string]any
		if code == 0 && json.Unmarshal([]byte(out), &recs) == nil {
			for _, r := range recs {
				if r["state"] == "awaiting_approval" && r["host"] == "web-1" {
					key, _ = r["key"].(string)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no action awaiting approval: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, code := cli("approve", "--by", "alice", key); code != 0 || !strings.Contains(out, "approved: "+key) {
		t.Fatalf("approve: code %d: %s", code, out)
	}
	if out, code := cli("approve", "--by", "bob", key); code != 1 || !strings.Contains(out, "409") || !strings.Contains(out, "approved by alice") {
		t.Fatalf("second approve: code %d: %s, want a 409 error naming alice's approval", code, out)
	}
	for {
		out, _ := cli("actions")
		if strings.Contains(out, "finished") && strings.Contains(out, "success") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("approved action did not finish: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, code := cli("status")
	if code != 0 || !strings.Contains(out, "web-1") || !strings.Contains(out, "g/hot") || !strings.Contains(out, "firing") {
		t.Fatalf("status: code %d:\n%s", code, out)
	}
}
