package agent

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// tickAt runs c once at tick time now and returns its points.
func tickAt(t *testing.T, c Collector, now time.Time) []point {
	t.Helper()
	var pts []point
	emit := func(m string, tags []wire.Tag, fields []wire.Field) {
		p := point{m: m, tags: map[string]string{}, fields: map[string]wire.Field{}}
		for _, tg := range tags {
			p.tags[tg.Key] = tg.Value
		}
		for _, f := range fields {
			if _, dup := p.fields[f.Key]; dup {
				t.Errorf("%s: field %q emitted twice", m, f.Key)
			}
			p.fields[f.Key] = f
		}
		pts = append(pts, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Collect(ctx, now, emit); err != nil {
		t.Fatalf("%s: Collect: %v", c.Name(), err)
	}
	return pts
}

// discardLog is a logger that drops everything.
func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func itoa(n int) string { return strconv.Itoa(n) }
