package natsembed

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestStartStopRestartKeepsStreams(t *testing.T) {
	s := StartT(t)
	nc, err := nats.Connect(s.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.a", []byte("one")); err != nil {
		t.Fatal(err)
	}
	port := s.Port()
	s.Stop()
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if s.Port() != port {
		t.Fatalf("port changed across restart: %d -> %d", port, s.Port())
	}
	// The client reconnects by itself; the stream and its message survived.
	var info *jetstream.StreamInfo
	for ctx.Err() == nil {
		st, err := js.Stream(ctx, "T")
		if err == nil {
			info, err = st.Info(ctx)
			if err == nil {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if info == nil || info.State.Msgs != 1 {
		t.Fatalf("stream after restart: %+v", info)
	}
}
