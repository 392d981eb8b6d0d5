package agent

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/natsembed"
)

// spoolConfig is natsConfig with a disk spool in dir.
func spoolConfig(host, url, dir string) Config {
	c := natsConfig(host, url)
	c.Spool.Dir = dir
	return c
}

// While NATS is away, batches go to the disk spool (memory keeps at most
// the one in flight); once NATS is back they are sent in order, each once.
func TestSpoolOutageGoesToDiskAndReplaysInOrder(t *testing.T) {
	srv := natsembed.StartT(t)
	createStream(t, srv.URL())
	dir := t.TempDir()
	cfg := spoolConfig("h-spool", srv.URL(), dir)
	a, logs := newTestAgent(t, cfg)
	a.AddCollector(&counter{name: "c"})
	stop := start(t, a)
	waitFor(t, "3 acked batches", func() bool { return a.Stats().Acked >= 3 })

	srv.Stop()
	down := a.Stats().Seq
	waitFor(t, "8 ticks during the outage on disk", func() bool {
		st := a.Stats()
		return st.Seq >= down+8 && st.Spool.Batches >= 6
	})
	st := a.Stats()
	if st.Backlog > 1 || len(segFiles(t, dir)) == 0 {
		t.Fatalf("during outage: memory backlog %d (want ≤ 1), spool %+v", st.Backlog, st.Spool)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	lastDown := a.Stats().Seq
	waitFor(t, "spool and backlog drained", func() bool {
		st := a.Stats()
		return st.Backlog == 0 && st.Spool.Batches == 0 && st.Acked >= lastDown+2
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st = a.Stats()
	if st.Dropped != 0 || st.Spool.Corrupt != 0 {
		t.Fatalf("stats %+v", st)
	}
	checkStream(t, readStream(t, srv.URL()), cfg.Host, st.Run, st.Seq)
	if len(segFiles(t, dir)) != 0 {
		t.Errorf("segment files left after draining: %v", segFiles(t, dir))
	}
	if !strings.Contains(logs.String(), "keeping batches in the spool") && !strings.Contains(logs.String(), "nats disconnected") {
		t.Errorf("outage not logged:\n%s", logs)
	}
}

// A stopped agent keeps its unsent batches in the spool; the next agent
// (a new run) sends them first, under the first run's id and seq, with
// their original timestamps, then its own.
func TestSpoolSurvivesAgentRestart(t *testing.T) {
	srv := natsembed.StartT(t)
	createStream(t, srv.URL())
	srv.Stop()
	dir := t.TempDir()
	cfg := spoolConfig("h-restart", srv.URL(), dir)
	cfg.Publish.ShutdownGrace = 100 * time.Millisecond
	a1, _ := newTestAgent(t, cfg)
	a1.AddCollector(&counter{name: "c"})
	stop1 := start(t, a1)
	waitFor(t, "5 batches", func() bool { return a1.Stats().Seq >= 5 })
	if err := stop1(); err != nil {
		t.Fatal(err)
	}
	st1 := a1.Stats()
	if st1.Acked != 0 || st1.Spool.Batches != int(st1.Seq) || st1.Backlog != 0 {
		t.Fatalf("first agent after stop: %+v", st1)
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	a2, _ := newTestAgent(t, cfg)
	a2.AddCollector(&counter{name: "c"})
	stop2 := start(t, a2)
	waitFor(t, "the old run's batches and 3 new", func() bool {
		st := a2.Stats()
		return st.Spool.Batches == 0 && st.Acked >= st1.Seq+3
	})
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	st2 := a2.Stats()
	msgs := readStream(t, srv.URL())
	if uint64(len(msgs)) != st1.Seq+st2.Seq {
		t.Fatalf("stream holds %d, want %d + %d", len(msgs), st1.Seq, st2.Seq)
	}
	checkStream(t, msgs[:st1.Seq], cfg.Host, st1.Run, st1.Seq)
	checkStream(t, msgs[st1.Seq:], cfg.Host, st2.Run, st2.Seq)
	prev := int64(0)
	for i, m := range msgs[:st1.Seq] {
		lines := decodeBatch(t, m.Data)
		if lines[0].ns <= prev {
			t.Errorf("first run batch %d: time %d not after %d", i+1, lines[0].ns, prev)
		}
		prev = lines[0].ns
		for _, l := range lines {
			if l.m == "fake" && l.vals["n"] != float64(i+1) {
				t.Errorf("first run batch %d carries n=%v", i+1, l.vals["n"])
			}
		}
	}
	if first2 := decodeBatch(t, msgs[st1.Seq].Data)[0].ns; first2 <= prev {
		t.Errorf("second run starts at %d, before the first run's last %d", first2, prev)
	}
}

// The self metrics report the spool's depth and the heartbeat.
func TestSelfPointReportsSpoolAndHeartbeat(t *testing.T) {
	srv := natsembed.StartT(t)
	srv.Stop()
	cfg := spoolConfig("h-self", srv.URL(), t.TempDir())
	cfg.Publish.ShutdownGrace = 50 * time.Millisecond
	a, _ := newTestAgent(t, cfg)
	a.AddCollector(&counter{name: "c"})
	stop := start(t, a)
	waitFor(t, "4 batches", func() bool { return a.Stats().Spool.Batches >= 4 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	s, _ := openTestSpool(t, cfg.Spool.Dir, 1<<20, "x")
	defer s.close()
	bs := drain(t, s, -1)
	if len(bs) < 4 {
		t.Fatalf("%d batches in the spool", len(bs))
	}
	for i, b := range bs {
		var self, coll *decoded
		lines := decodeBatch(t, b.data)
		for j := range lines {
			switch lines[j].m {
			case "vigil_agent":
				self = &lines[j]
			case "vigil_agent_collector":
				coll = &lines[j]
			}
		}
		if self == nil || coll == nil {
			t.Fatalf("batch %d lacks self points: %s", i, b.data)
		}
		if self.vals["heartbeat_seq"] != float64(i+1) {
			t.Errorf("batch %d: heartbeat_seq %v", i, self.vals["heartbeat_seq"])
		}
		if i > 0 && self.vals["spool_batches"] != float64(i) {
			t.Errorf("batch %d: spool_batches %v, want %d (the earlier ones)", i, self.vals["spool_batches"], i)
		}
		if coll.tags["collector"] != "c" || coll.vals["runs"] != float64(i+1) || coll.vals["points"] != 1 {
			t.Errorf("batch %d: collector point %+v", i, coll)
		}
	}
	if b := bs[0]; b.run != a.Stats().Run || strconv.FormatUint(b.seq, 10) != "1" || b.host != cfg.Host {
		t.Errorf("spooled batch headers: run %q seq %d host %q", b.run, b.seq, b.host)
	}
}
