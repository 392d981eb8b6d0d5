package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-sre/vigil/internal/wire"
)

// fakeMsg is a jetstream.Msg with a payload and a stored time.
type fakeMsg struct {
	data   []byte
	stored time.Time
}

func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Timestamp: m.stored}, nil
}
func (m *fakeMsg) Data() []byte                     { return m.data }
func (m *fakeMsg) Headers() nats.Header             { return nil }
func (m *fakeMsg) Subject() string                  { return "vigil.telemetry.h" }
func (m *fakeMsg) Reply() string                    { return "" }
func (m *fakeMsg) Ack() error                       { return nil }
func (m *fakeMsg) DoubleAck(context.Context) error  { return nil }
func (m *fakeMsg) Nak() error                       { return nil }
func (m *fakeMsg) NakWithDelay(time.Duration) error { return nil }
func (m *fakeMsg) InProgress() error                { return nil }
func (m *fakeMsg) Term() error                      { return nil }
func (m *fakeMsg) TermWithReason(string) error      { return nil }

func TestTelemetryLinesConversion(t *testing.T) {
	stored := time.Unix(1700000000, 5)
	cases := []struct {
		name, in, want  string
		lines, malformd int
	}{
		{"clean batch is copied", "cpu,host=a u=1 10\ncpu,host=a u=2 20", "cpu,host=a u=1 10\ncpu,host=a u=2 20\n", 2, 0},
		{"comments and blanks kept verbatim", "# hi\n\ncpu u=1 10\n", "# hi\n\ncpu u=1 10\n", 1, 0},
		{"malformed line dropped", "cpu u=1 10\ncpu u=x 11\ncpu u=3 12\n", "cpu u=1 10\ncpu u=3 12\n", 2, 1},
		{"stored time for lines without one", "cpu u=1\ncpu u=2 20\n", "cpu u=1 1700000000000000005\ncpu u=2 20\n", 2, 0},
		{"unsigned becomes integer", "net rx=12u 1\n", "net rx=12i 1\n", 1, 0},
		{"huge unsigned becomes float", "net rx=18446744073709551615u 1\n", "net rx=1.8446744073709552e+19 1\n", 1, 0},
		{"CRLF re-encoded", "cpu u=1 10\r\ncpu u=2 20\r\n", "cpu u=1 10\ncpu u=2 20\n", 2, 0},
		{"escapes re-encoded", "m\\ x,k\\=1=a\\,b s=\"q\\\"t\",b=true,i=-3i\n", "m\\ x,k\\=1=a\\,b s=\"q\\\"t\",b=true,i=-3i 1700000000000000005\n", 1, 0},
		{"only garbage", "garbage\n", "", 0, 1},
		{"empty", "", "", 0, 0},
	}
	conv := newTelemetryLines()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prefix := []byte("prev\n")
			out, n, bad, err := conv.append(prefix, &fakeMsg{data: []byte(c.in), stored: stored})
			if err != nil {
				t.Fatal(err)
			}
			if got := string(out[len(prefix):]); got != c.want || n != c.lines || bad != c.malformd {
				t.Fatalf("got %q (%d lines, %d bad), want %q (%d, %d)", got, n, bad, c.want, c.lines, c.malformd)
			}
			if string(out[:len(prefix)]) != "prev\n" {
				t.Fatalf("prefix overwritten: %q", out)
			}
		})
	}
}

func TestEventLines(t *testing.T) {
	ev := &wire.Event{ID: "x", Kind: wire.KindAction, Time: time.Unix(0, 42), Action: "backup", Outcome: "success"}
	data, _ := ev.Marshal()
	out, n, bad, err := newEventLines().append(nil, &fakeMsg{data: data})
	if err != nil || n != 1 || bad != 0 {
		t.Fatalf("n=%d bad=%d err=%v", n, bad, err)
	}
	want := string(ev.AppendLine(nil)) + "\n"
	if string(out) != want {
		t.Fatalf("got %q, want %q", out, want)
	}
	for _, in := range []string{"{", `{"kind":"nope","time":"2026-01-01T00:00:00Z"}`, `{"kind":"rule"}`} {
		if _, _, _, err := newEventLines().append(nil, &fakeMsg{data: []byte(in)}); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestWriteRejected(t *testing.T) {
	cases := []struct {
		status int
		msg    string
		want   bool
	}{
		{400, "unable to parse 'm v=x 1': invalid boolean", true},
		{400, `partial write: field type conflict: input field "v" dropped=1`, true},
		{422, "failure writing points: partial write: points beyond retention policy dropped=1", true},
		{413, "", true},
		{0, "dial tcp 127.0.0.1:1: connection refused", false},
		{404, `database not found: "vigil"`, false},
		{401, "unauthorized", false},
		{400, `bucket name "" is missing a slash`, false},
		{429, "too many requests", false},
		{500, "timeout", false},
		{503, "unavailable", false},
	}
	for _, c := range cases {
		if got := writeRejected(c.status, c.msg); got != c.want {
			t.Errorf("writeRejected(%d, %q) = %v, want %v", c.status, c.msg, got, c.want)
		}
	}
}

func TestHistoryConfigDefaultsAndDisabled(t *testing.T) {
	c := HistoryConfig{RetryMin: time.Second, RetryMax: time.Millisecond}.WithDefaults()
	if c.Bucket != "vigil/autogen" || !*c.Telemetry || c.BatchSize != 500 || c.FlushInterval != time.Second ||
		c.Consumer != "vigil-history" || c.RetryMax != time.Second || c.BatchBytes != 8<<20 {
		t.Fatalf("defaults: %+v", c)
	}
	if _, err := NewHistory(HistoryConfig{}, nil, nil); err == nil {
		t.Fatal("nil JetStream accepted")
	}
	var js jetstream.JetStream = fakeJS{}
	h, err := NewHistory(HistoryConfig{}, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.Enabled() || h.Stats().Enabled {
		t.Fatal("enabled without URL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := h.Run(ctx); err != nil {
		t.Fatalf("disabled Run: %v", err)
	}
	if ctx.Err() == nil {
		t.Fatal("disabled Run returned before its context ended")
	}
}

// fakeJS satisfies jetstream.JetStream for constructor tests only.
type fakeJS struct{ jetstream.JetStream }

func BenchmarkTelemetryLines(b *testing.B) {
	var clean, rewrite strings.Builder
	for i := range 100 {
		fmt.Fprintf(&clean, "cpu,host=web-1,cpu=cpu%d usage_user=%d.5,usage_system=1.25,ctx=%di %d\n", i, i, i*7, 1700000000000000000+i)
		fmt.Fprintf(&rewrite, "cpu,host=web-1,cpu=cpu%d usage_user=%d.5,usage_system=1.25,ctx=%du\n", i, i, i*7)
	}
	for _, bc := range []struct{ name, data string }{{"verbatim", clean.String()}, {"rewrite", rewrite.String()}} {
		b.Run(bc.name, func(b *testing.B) {
			conv := newTelemetryLines()
			m := &fakeMsg{data: []byte(bc.data), stored: time.Unix(1700000000, 0)}
			buf := make([]byte, 0, 2*len(bc.data))
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.data)))
			for b.Loop() {
				out, n, _, _ := conv.append(buf[:0], m)
				if n != 100 {
					b.Fatal(n)
				}
				buf = out
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/line")
		})
	}
}

func BenchmarkEventLines(b *testing.B) {
	ev := &wire.Event{ID: "abc", Kind: wire.KindRule, Time: time.Unix(1700000000, 0), Host: "web-1", Rule: "cpu_high",
		Group: "node", Severity: "critical", State: "firing", Values: map[string]float64{"cpu": 97.5}}
	data, _ := ev.Marshal()
	m := &fakeMsg{data: data}
	conv := newEventLines()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf, _, _, _ = conv.append(buf[:0], m)
	}
}
