package controller

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/detectors"
	"github.com/vigil-sre/vigil/internal/wire"
)

// newIngestController is a controller for ingestion alone (no NATS): its
// events stay in c.pub.ch.
func newIngestController(t testing.TB, yaml string, parallel int) *Controller {
	t.Helper()
	cfg, err := ParseConfig("c.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	newFc, err := cfg.Detectors.newForecaster()
	if err != nil {
		t.Fatal(err)
	}
	newDet := func() detectors.Detector { d, _ := detectors.NewDetector(cfg.Detectors.Anomaly); return d }
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := &Controller{cfg: cfg, log: log, now: time.Now, store: newStore(newDet, newFc, cfg.Forecasts),
		pub: newPublisher(nil, log, 1<<20), badLog: map[string]time.Time{}, seqs: map[string]*seqState{}}
	c.store.anomalyHold = cfg.Detectors.AnomalyHold
	c.visitFn = c.visit
	c.parallel = parallel
	return c
}

// parallelTestBatches are batches of several hosts with spikes, level
// shifts, series that reach a forecast level, counters with resets, bad
// values, samples out of order and series sampled twice in one batch.
func parallelTestBatches() [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	var out [][]byte
	for tick := 0; tick < 400; tick++ {
		for h := 0; h < 6; h++ {
			var sb strings.Builder
			ts := t0 + int64(tick)*int64(10*time.Second) + int64(h)
			for l := 0; l < 30; l++ {
				v := 50 + 5*rng.NormFloat64()
				if (tick+l*7)%97 == 0 {
					v += 80 // spike
				}
				if tick > 250 && l%5 == 0 {
					v += 40 // level shift
				}
				fmt.Fprintf(&sb, "cpu,host=h%d,cpu=c%d a=%.3f,b=%.3f,c=%di,d=%q %d\n",
					h, l, v, 0.5*v+rng.Float64(), tick*(l+1)%(50+l), "text", ts)
			}
			fill := float64(tick)/4 + float64(h*10) + rng.Float64() // reaches 100 at about tick 400-4h·10
			fmt.Fprintf(&sb, "disk,host=h%d,path=/ used_percent=%.3f %d\n", h, fill, ts)
			fmt.Fprintf(&sb, "net,host=h%d bytes=%di %d\n", h, tick*1000%30000, ts) // counter with resets
			if tick%13 == 0 {
				// the same series twice, one of them out of order, and a bad value
				fmt.Fprintf(&sb, "cpu,host=h%d,cpu=c3 a=200 %d\n", h, ts+1)
				fmt.Fprintf(&sb, "cpu,host=h%d,cpu=c4 a=1 %d\n", h, ts-int64(time.Minute))
				fmt.Fprintf(&sb, "cpu,host=h%d,cpu=c5 a=NaN %d\n", h, ts)
			}
			out = append(out, []byte(sb.String()))
		}
	}
	return out
}

// ackedMsg is a telemetry message without NATS that counts its
// acknowledgements.
type ackedMsg struct {
	fakeMsg
	acked *int
}

func (m *ackedMsg) Ack() error { *m.acked++; return nil }

func drainEvents(c *Controller) []wire.Event {
	var evs []wire.Event
	for len(c.pub.ch) > 0 {
		ev := <-c.pub.ch
		ev.ID = ""
		evs = append(evs, *ev)
	}
	return evs
}

// TestParallelIngestMatchesSerial: queueing the model updates of a batch
// and sharing them out over goroutines changes nothing that ingestion
// produces: the same events in the same order, the same counters, the
// same series state as a controller that handles each line in full before
// the next (fed the batches line by line, on one goroutine).
func TestParallelIngestMatchesSerial(t *testing.T) {
	const forecast = "forecasts:\n  - {series: disk.used_percent, level: 100, horizon: 1h, min_confidence: 0.5}\n"
	batches := parallelTestBatches()
	for _, det := range []string{"ewma", "vigil"} {
		t.Run(det, func(t *testing.T) {
			yaml := "detectors: {anomaly: " + det + "}\n" + forecast
			serial, par := newIngestController(t, yaml, 1), newIngestController(t, yaml, 4)
			var evS, evP []wire.Event
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			par.now = func() time.Time { return now }
			acked := 0
			for i, bt := range batches {
				serial.msgNow, serial.msgHost = now, "h" // fakeMsg's subject
				for _, line := range strings.SplitAfter(string(bt), "\n") {
					serial.decodeBatch([]byte(line))
				}
				// as the owner's loop does: a group of messages, then finishBatches
				par.handle(&ackedMsg{fakeMsg: fakeMsg{data: bt}, acked: &acked})
				if i%13 == 12 || i%5 == 4 {
					par.finishBatches()
				}
				if i%50 == 49 {
					par.finishBatches()
					serial.updateForecasts(now)
					par.updateForecasts(now)
				}
				evS, evP = append(evS, drainEvents(serial)...), append(evP, drainEvents(par)...)
				now = now.Add(10 * time.Second / 6)
			}
			par.finishBatches()
			evP = append(evP, drainEvents(par)...)
			if acked != len(batches) || len(par.unacked) != 0 {
				t.Errorf("%d of %d messages acknowledged, %d left", acked, len(batches), len(par.unacked))
			}
			kinds := map[string]int{}
			for _, ev := range evS {
				kinds[ev.Kind+"/"+ev.State]++
			}
			t.Logf("%d events: %v", len(evS), kinds)
			if kinds[wire.KindAnomaly+"/anomalous"] == 0 || kinds[wire.KindForecast+"/crossed"] == 0 {
				t.Fatalf("the input should make anomaly and crossing events, got %v", kinds)
			}
			if len(evS) != len(evP) {
				t.Fatalf("serial made %d events, parallel %d", len(evS), len(evP))
			}
			for i := range evS {
				if fmt.Sprint(evS[i]) != fmt.Sprint(evP[i]) {
					t.Fatalf("event %d differs:\nserial   %+v\nparallel %+v", i, evS[i], evP[i])
				}
			}
			for _, n := range []struct {
				name string
				s, p uint64
			}{{"samples", serial.stats.Samples.Load(), par.stats.Samples.Load()},
				{"anomalies", serial.stats.Anomalies.Load(), par.stats.Anomalies.Load()},
				{"non-numeric", serial.stats.NonNumeric.Load(), par.stats.NonNumeric.Load()}} {
				if n.s != n.p || n.s == 0 {
					t.Errorf("%s: serial %d, parallel %d", n.name, n.s, n.p)
				}
			}
			for _, name := range serial.store.names {
				hs, hp := serial.store.hosts[name], par.store.hosts[name]
				for i, s := range hs.ordered {
					p := hp.ordered[i]
					if s.score != p.score || s.last != p.last || s.lastT != p.lastT || s.hold.Value() != p.hold.Value() || s.queued || p.queued {
						t.Fatalf("%s %s{%s}: serial %+v %v, parallel %+v %v", name, s.name(), s.tagString, s.score, s.last, p.score, p.last)
					}
				}
			}
		})
	}
}
