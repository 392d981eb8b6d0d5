package agent

import (
	"net"
	"os"
	"strings"
	"testing"
)

// procNetDev lists the interfaces of /proc/net/dev.
func procNetDev(t *testing.T) []string {
	raw, err := os.ReadFile("/proc/net/dev")
	if err != nil {
		t.Skip("no /proc/net/dev")
	}
	var names []string
	for _, l := range strings.Split(string(raw), "\n")[2:] {
		if name, _, ok := strings.Cut(l, ":"); ok {
			names = append(names, strings.TrimSpace(name))
		}
	}
	return names
}

func TestNetCollector(t *testing.T) {
	ifaces := procNetDev(t)
	pts := collect(t, newCollector(t, "net", Options{}))
	seen := map[string]bool{}
	for _, p := range pts {
		if p.m != "net" {
			t.Fatalf("measurement %q", p.m)
		}
		name := p.tags["interface"]
		seen[name] = true
		for _, f := range []string{"bytes_sent", "bytes_recv", "packets_sent", "packets_recv", "err_in", "err_out", "drop_in", "drop_out"} {
			inRange(t, name+" "+f, p.num(t, f), 0, 1<<62)
		}
	}
	if seen["lo"] {
		t.Error("lo is reported although ignored by default")
	}
	for _, n := range ifaces {
		if n != "lo" && !seen[n] {
			t.Errorf("interface %s missing (got %v)", n, seen)
		}
	}
}

func TestNetCollectorLoopbackCounts(t *testing.T) {
	c := newCollector(t, "net", Options{IgnoreInterfaces: []string{}})
	lo := func() point {
		for _, p := range collect(t, c) {
			if p.tags["interface"] == "lo" {
				return p
			}
		}
		t.Skip("no lo interface")
		return point{}
	}
	before := lo().num(t, "bytes_recv")
	// Send some bytes over loopback.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			buf := make([]byte, 1<<16)
			for {
				if _, err := c.Read(buf); err != nil {
					c.Close()
					return
				}
			}
		}
	}()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(make([]byte, 100_000)); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if after := lo().num(t, "bytes_recv"); after < before+100_000 {
		t.Errorf("lo bytes_recv %v -> %v after sending 100000 bytes", before, after)
	}
}
