package wire

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"
)

func testKey(t testing.TB) (nkeys.KeyPair, string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	return kp, pub
}

func testCommand(now time.Time) *Command {
	return &Command{ID: "g/r/web-1/1", Host: "web-1", Action: "backup", Params: map[string]string{"policy": "data"},
		Nonce: "n1", Issued: now, Expires: now.Add(time.Minute)}
}

func TestEnvelopeSignOpen(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	kp, pub := testKey(t)
	other, otherPub := testKey(t)
	data, err := Sign(testCommand(now), kp)
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := Open(data, []string{otherPub, pub}, now.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if cmd.ID != "g/r/web-1/1" || cmd.Params["policy"] != "data" || !cmd.Expires.Equal(now.Add(time.Minute)) {
		t.Fatalf("opened %+v", cmd)
	}

	forged, _ := Sign(testCommand(now), other) // signed by a key not trusted
	tampered := func() []byte {
		var env Envelope
		_ = json.Unmarshal(data, &env)
		env.Payload = []byte(strings.Replace(string(env.Payload), `"backup"`, `"restore"`, 1))
		b, _ := json.Marshal(env)
		return b
	}()
	cases := []struct {
		name, reason string
		data         []byte
		now          time.Time
	}{
		{"untrusted", RejectUntrustedKey, forged, now},
		{"tampered", RejectBadSignature, tampered, now},
		{"expired", RejectExpired, data, now.Add(time.Minute + ClockSkew + time.Second)},
		{"future", RejectNotYetValid, data, now.Add(-ClockSkew - time.Second)},
		{"too large", RejectTooLarge, make([]byte, MaxEnvelopeBytes+1), now},
		{"unknown field", RejectMalformed, []byte(`{"payload":"e30=","key":"x","sig":"eA==","extra":1}`), now},
		{"trailing", RejectMalformed, append(append([]byte{}, data...), '}'), now},
		{"empty", RejectMalformed, []byte(`{}`), now},
	}
	for _, c := range cases {
		_, err := Open(c.data, []string{pub}, c.now)
		if got := RejectReason(err); got != c.reason {
			t.Errorf("%s: reason %q (err %v), want %q", c.name, got, err, c.reason)
		}
	}
	// Within the skew both ways is accepted.
	if _, err := Open(data, []string{pub}, now.Add(time.Minute+ClockSkew-time.Second)); err != nil {
		t.Errorf("within skew after expiry: %v", err)
	}
}

func TestEnvelopeInvalidCommand(t *testing.T) {
	now := time.Now()
	kp, pub := testKey(t)
	c := testCommand(now)
	c.Nonce = ""
	if _, err := Sign(c, kp); err == nil || !strings.Contains(err.Error(), "nonce") {
		t.Fatalf("sign without nonce: %v", err)
	}
	// A signed payload with an unknown field is refused even if signed.
	payload := []byte(`{"id":"a","host":"h","action":"x","nonce":"n","issued":"2026-01-01T00:00:00Z","expires":"2026-01-01T00:01:00Z","program":"/bin/sh"}`)
	sig, _ := kp.Sign(payload)
	b, _ := json.Marshal(Envelope{Payload: payload, Key: pub, Sig: sig})
	_, err := Open(b, []string{pub}, time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC))
	if RejectReason(err) != RejectMalformed || !strings.Contains(err.Error(), "program") {
		t.Fatalf("unknown command field: %v", err)
	}
}

func TestCommandProgressSubject(t *testing.T) {
	if got := CommandProgressSubject("web-1.eu", "g/r/x"); got != "vigil.cmd.progress.web-1_eu.g_r_x" {
		t.Fatal(got)
	}
}

func BenchmarkOpen(b *testing.B) {
	now := time.Now()
	kp, pub := testKey(b)
	data, err := Sign(testCommand(now), kp)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(data, []string{pub}, now); err != nil {
			b.Fatal(err)
		}
	}
}
