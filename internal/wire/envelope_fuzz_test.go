package wire

import (
	"testing"
	"time"

	"github.com/nats-io/nkeys"
)

// fuzzSeed is a fixed user seed so that committed corpus entries stay
// valid envelopes of a trusted key.
const fuzzSeed = "SUAOTWLFCGDDFEQJ7NZ5KM6D3V3SZ3KNBHEKCUGRNEXSLS2GAHOF6FONSQ"

// FuzzOpen: Open never panics, and whatever it accepts is a complete
// command signed by the trusted key that re-verifies.
func FuzzOpen(f *testing.F) {
	kp, err := nkeys.FromSeed([]byte(fuzzSeed))
	if err != nil {
		f.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	good, err := Sign(testCommand(now), kp)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"payload":"e30=","key":"` + pub + `","sig":"AAAA"}`))
	f.Add([]byte(`{"payload":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, err := Open(data, []string{pub}, now)
		if err != nil {
			if RejectReason(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if cmd.Check() != nil || now.After(cmd.Expires.Add(ClockSkew)) {
			t.Fatalf("accepted an invalid command %+v", cmd)
		}
	})
}
