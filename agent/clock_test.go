//go:build linux

package agent

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestClockCollector(t *testing.T) {
	pts := collect(t, newCollector(t, "clock", Options{}))
	if len(pts) != 1 || pts[0].m != "clock" {
		t.Fatalf("points %v", pts)
	}
	p := pts[0]
	inRange(t, "synced", p.num(t, "synced"), 0, 1)
	inRange(t, "offset_seconds", p.num(t, "offset_seconds"), -3600, 3600)
	inRange(t, "max_error_seconds", p.num(t, "max_error_seconds"), 0, 1e6)
	// The same reading, taken directly, agrees on synchronisation.
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		t.Fatal(err)
	}
	_, synced, _ := clockFromTimex(state, tx.Status, 0, 0)
	if p.num(t, "synced") != float64(b01(synced)) {
		t.Fatalf("synced %v, adjtimex says %v", p.num(t, "synced"), synced)
	}
}

func TestClockFromTimex(t *testing.T) {
	off, synced, maxErr := clockFromTimex(unix.TIME_OK, 0, 1500, 250000)
	if off != 0.0015 || !synced || maxErr != 0.25 {
		t.Fatalf("µs: %v %v %v", off, synced, maxErr)
	}
	off, _, _ = clockFromTimex(unix.TIME_OK, unix.STA_NANO, -2_000_000, 0)
	if off != -0.002 {
		t.Fatalf("ns: %v", off)
	}
	if _, synced, _ := clockFromTimex(unix.TIME_ERROR, 0, 0, 0); synced {
		t.Fatal("TIME_ERROR synced")
	}
	if _, synced, _ := clockFromTimex(unix.TIME_OK, unix.STA_UNSYNC, 0, 0); synced {
		t.Fatal("STA_UNSYNC synced")
	}
}
