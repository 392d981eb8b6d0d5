package agent

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vigil-sre/vigil/internal/natsembed"
)

// With a models section the agent runs the endpoint and publishes model, model_drift and
// model_ingest points in its normal batches, through JetStream.
func TestAgentPublishesModelDrift(t *testing.T) {
	srv := natsembed.StartT(t)
	createStream(t, srv.URL())
	cfg := natsConfig("ml-1", srv.URL())
	cfg.Models = &ModelsConfig{Listen: "127.0.0.1:0", WindowCount: 100, MinCount: 20, Reference: ModelReferenceConfig{First: 50}}
	a, _ := newTestAgent(t, cfg)
	stop := start(t, a)
	defer stop()
	waitFor(t, "model endpoint", func() bool { return a.models.Addr() != "" })
	var b strings.Builder
	for i := 0; i < 150; i++ {
		x := i % 10
		if i >= 50 {
			x += 20 // far outside the reference
		}
		fmt.Fprintf(&b, `{"model":"m1","version":"v1","features":{"x":%d},"prediction":%d}`+"\n", x, i%2)
	}
	postOK(t, a.models, b.String())
	var drift *decoded
	waitFor(t, "model_drift of x in the stream", func() bool {
		for _, msg := range readStream(t, srv.URL()) {
			for _, l := range decodeBatch(t, msg.Data) {
				if l.m == "model_drift" && l.tags["feature"] == "x" && l.tags["model"] == "m1" && l.tags["host"] == "ml-1" {
					if _, ok := l.vals["psi"]; ok {
						drift = &l
						return true
					}
				}
			}
		}
		return false
	})
	// The window: the 100 observations after the reference, all 20 above it.
	if drift.vals["ks"] != 1 || drift.vals["window_count"] != 100 || drift.vals["psi"] < 1 || drift.vals["wasserstein"] != 20 {
		t.Errorf("model_drift x: %v", drift.vals)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}
