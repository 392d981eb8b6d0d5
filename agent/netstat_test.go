package agent

import (
	"net"
	"testing"
)

func TestNetstatCollector(t *testing.T) {
	c := newCollector(t, "netstat", Options{})
	before := collect(t, c)
	if len(before) != 1 || before[0].m != "netstat" {
		t.Fatalf("points %v", before)
	}
	for _, f := range netstatFields {
		before[0].num(t, f.field)
	}
	// Three real connections are three active opens (at least: others may
	// connect meanwhile).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for range 3 {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
	after := collect(t, c)
	if d := after[0].num(t, "tcp_active_opens") - before[0].num(t, "tcp_active_opens"); d < 3 {
		t.Fatalf("tcp_active_opens grew by %v after 3 connections", d)
	}
}

const snmpSample = `Ip: Forwarding DefaultTTL InReceives
Ip: 1 64 1000
Icmp: InMsgs InErrors
Icmp: 5 0
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 4242 17 3 9 12 100000 90000 321 2 44 0
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 500 6 7 400 8 9 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 0 0 0 0 0 0 0
`

func TestNetstatParse(t *testing.T) {
	c := &netstatCollector{}
	got := map[string]int64{}
	for _, f := range c.parse([]byte(snmpSample), nil) {
		got[f.Key] = f.Int
	}
	want := map[string]int64{
		"tcp_retrans_segs": 321, "tcp_out_segs": 90000, "tcp_in_segs": 100000, "tcp_in_errs": 2,
		"tcp_active_opens": 4242, "tcp_passive_opens": 17, "tcp_attempt_fails": 3, "tcp_estab_resets": 9,
		"tcp_out_rsts": 44, "tcp_curr_estab": 12, "udp_in_datagrams": 500, "udp_in_errors": 7,
		"udp_no_ports": 6, "udp_rcvbuf_errors": 8, "udp_sndbuf_errors": 9,
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
	if f := c.parse([]byte("Tcp: A B\nUdp: 1 2\n"), nil); len(f) != 0 {
		t.Fatalf("mismatched lines parsed: %v", f)
	}
}

func FuzzNetstatParse(f *testing.F) {
	f.Add([]byte(snmpSample))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := &netstatCollector{}
		if n := len(c.parse(b, nil)); n > 16*len(b) {
			t.Fatalf("%d fields from %d bytes", n, len(b))
		}
	})
}
