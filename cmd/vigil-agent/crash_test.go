package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/internal/natsembed"
	"github.com/vigil-sre/vigil/internal/wire"
)

// The real binary, killed with SIGKILL while NATS is away, loses nothing
// it spooled: the next start re-sends the killed run's batches (seq 1..k,
// under that run's id) before its own.
func TestKilledAgentResendsSpoolAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "vigil-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	srv := natsembed.StartT(t)
	js := streamClient(t, srv.URL())
	srv.Stop()
	cfg := filepath.Join(dir, "agent.yaml")
	yaml := fmt.Sprintf("host: crash-1\ninterval: 100ms\njitter: 0s\nstate_dir: %s\nnats: {url: %q, reconnect_wait: 100ms}\n"+
		"publish: {shutdown_grace: 5s}\ncollectors: {disk: {enabled: false}}\n", filepath.Join(dir, "state"), srv.URL())
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var log1, log2 bytes.Buffer
	first := startAgent(t, bin, cfg, &log1)
	time.Sleep(2 * time.Second) // ~20 batches into the spool
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	second := startAgent(t, bin, cfg, &log2)
	deadline := time.Now().Add(20 * time.Second)
	for streamMsgs(t, js) < 25 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.Wait(); err != nil {
		t.Fatalf("second agent: %v\n%s", err, log2.String())
	}

	runs, seqs := readRuns(t, js)
	if len(runs) != 2 {
		t.Fatalf("runs in the stream: %v\nfirst:\n%s\nsecond:\n%s", runs, log1.String(), log2.String())
	}
	for i, r := range runs {
		s := seqs[r]
		for j, seq := range s {
			if seq != uint64(j+1) {
				t.Fatalf("run %d (%s): seqs %v, want 1..%d each once", i+1, r, s, len(s))
			}
		}
	}
	if k := len(seqs[runs[0]]); k < 10 {
		t.Errorf("only %d batches of the killed run re-sent", k)
	}
	if !strings.Contains(log2.String(), "batches of earlier runs to re-send") {
		t.Errorf("second agent did not report the spool:\n%s", log2.String())
	}
	t.Logf("killed run: %d batches re-sent; new run: %d", len(seqs[runs[0]]), len(seqs[runs[1]]))
}

func startAgent(t *testing.T, bin, cfg string, log *bytes.Buffer) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "-config", cfg)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd
}

func streamClient(t *testing.T, url string) jetstream.Stream {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: wire.TelemetryStream, Subjects: []string{wire.TelemetryWildcard},
		Storage: jetstream.FileStorage, Duplicates: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func streamMsgs(t *testing.T, s jetstream.Stream) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := s.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.Msgs
}

// readRuns returns the runs in the order they appear and each run's seqs.
func readRuns(t *testing.T, s jetstream.Stream) ([]string, map[string][]uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var runs []string
	seqs := map[string][]uint64{}
	for n := info.State.FirstSeq; info.State.Msgs > 0 && n <= info.State.LastSeq; n++ {
		m, err := s.GetMsg(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		run := m.Header.Get(wire.HeaderRun)
		seq, _ := strconv.ParseUint(m.Header.Get(wire.HeaderSeq), 10, 64)
		if m.Header.Get(wire.HeaderMsgID) != wire.MsgID("crash-1", run, seq) {
			t.Fatalf("message %d: Nats-Msg-Id %q", n, m.Header.Get(wire.HeaderMsgID))
		}
		if _, ok := seqs[run]; !ok {
			runs = append(runs, run)
		}
		seqs[run] = append(seqs[run], seq)
	}
	return runs, seqs
}
