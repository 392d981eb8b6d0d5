//go:build linux

package agent

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-sre/vigil/internal/wire"
)

// clockCollector reports the kernel clock discipline's view of this host's
// clock (measurement clock), from adjtimex(2) in read-only mode: what NTP
// daemons (chrony, ntpd, systemd-timesyncd) told the kernel. No network,
// no privileges, one system call per tick.
//
// Fields: offset_seconds, the last measured offset from the time source
// (timex.offset, in µs or ns by STA_NANO); synced (1 when the kernel
// considers the clock synchronised: state is not TIME_ERROR and
// STA_UNSYNC is clear; 0 when no daemon disciplines the clock, in which
// case the offset means nothing); max_error_seconds, the kernel's bound on
// the clock's error (timex.maxerror). Skewed clocks break TLS, token
// expiry, distributed locks and the ordering of logs and metrics.
type clockCollector struct {
	fields []wire.Field
}

func init() {
	Register("clock", func(Options) (Collector, error) {
		return &clockCollector{fields: make([]wire.Field, 3)}, nil
	})
}

// Name implements Collector.
func (c *clockCollector) Name() string { return "clock" }

// Collect implements Collector.
func (c *clockCollector) Collect(_ context.Context, _ time.Time, emit Emit) error {
	var tx unix.Timex // Modes 0: read only
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return fmt.Errorf("adjtimex: %w", err)
	}
	offset, synced, maxErr := clockFromTimex(state, tx.Status, int64(tx.Offset), int64(tx.Maxerror))
	c.fields[0] = wire.F("offset_seconds", offset)
	c.fields[1] = wire.I("synced", b01(synced))
	c.fields[2] = wire.F("max_error_seconds", maxErr)
	emit("clock", nil, c.fields)
	return nil
}

// clockFromTimex interprets adjtimex's state and timex fields.
func clockFromTimex(state int, status int32, offset, maxErrorUS int64) (offsetS float64, synced bool, maxErrS float64) {
	unit := 1e-6
	if status&unix.STA_NANO != 0 {
		unit = 1e-9
	}
	synced = state != unix.TIME_ERROR && status&unix.STA_UNSYNC == 0
	return float64(offset) * unit, synced, float64(maxErrorUS) * 1e-6
}

var _ Collector = (*clockCollector)(nil)
