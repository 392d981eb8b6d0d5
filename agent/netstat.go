package agent

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// netstatCollector reports TCP and UDP protocol counters (measurement
// netstat), from /proc/net/snmp (following HOST_PROC; the agent's network
// namespace, as with the net collector).
//
// Fields, counters since boot: tcp_retrans_segs (segments retransmitted:
// its rate over tcp_out_segs is the retransmission ratio, the classic sign
// of packet loss or an overloaded peer), tcp_out_segs, tcp_in_segs,
// tcp_in_errs (bad segments received), tcp_active_opens,
// tcp_passive_opens, tcp_attempt_fails (failed connection attempts),
// tcp_estab_resets (established connections reset), tcp_out_rsts,
// udp_in_datagrams, udp_in_errors, udp_no_ports, udp_rcvbuf_errors and
// udp_sndbuf_errors (datagrams dropped for full socket buffers); and the
// gauge tcp_curr_estab (connections now established).
//
// The file pairs a header line ("Tcp: RtoAlgorithm ... RetransSegs ...")
// with a value line; columns are found by name, so kernels that add
// columns are read alike. Cost: one pread per tick (the file is kept open), no allocation.
type netstatCollector struct {
	file   procFile
	fields []wire.Field
	cols   [32][]byte
	vals   [32][]byte
}

// netstatFields maps /proc/net/snmp columns to field names.
var netstatFields = []struct{ proto, col, field string }{
	{"Tcp", "RetransSegs", "tcp_retrans_segs"},
	{"Tcp", "OutSegs", "tcp_out_segs"},
	{"Tcp", "InSegs", "tcp_in_segs"},
	{"Tcp", "InErrs", "tcp_in_errs"},
	{"Tcp", "ActiveOpens", "tcp_active_opens"},
	{"Tcp", "PassiveOpens", "tcp_passive_opens"},
	{"Tcp", "AttemptFails", "tcp_attempt_fails"},
	{"Tcp", "EstabResets", "tcp_estab_resets"},
	{"Tcp", "OutRsts", "tcp_out_rsts"},
	{"Tcp", "CurrEstab", "tcp_curr_estab"},
	{"Udp", "InDatagrams", "udp_in_datagrams"},
	{"Udp", "InErrors", "udp_in_errors"},
	{"Udp", "NoPorts", "udp_no_ports"},
	{"Udp", "RcvbufErrors", "udp_rcvbuf_errors"},
	{"Udp", "SndbufErrors", "udp_sndbuf_errors"},
}

func init() {
	Register("netstat", func(Options) (Collector, error) {
		return &netstatCollector{file: procFile{path: hostProc("net", "snmp")}, fields: make([]wire.Field, 0, len(netstatFields))}, nil
	})
}

// Name implements Collector.
func (c *netstatCollector) Name() string { return "netstat" }

// Collect implements Collector.
func (c *netstatCollector) Collect(_ context.Context, _ time.Time, emit Emit) error {
	b, err := c.file.read()
	if err != nil {
		return fmt.Errorf("netstat: %w", err)
	}
	c.fields = c.parse(b, c.fields[:0])
	if len(c.fields) == 0 {
		return fmt.Errorf("netstat: %s: no Tcp or Udp counters", c.file.path)
	}
	emit("netstat", nil, c.fields)
	return nil
}

// Close closes /proc/net/snmp.
func (c *netstatCollector) Close() error { return c.file.close() }

// parse appends the fields found in the content of /proc/net/snmp.
func (c *netstatCollector) parse(b []byte, out []wire.Field) []wire.Field {
	for len(b) > 0 {
		var head, vals []byte
		head, b = nextLine(b)
		vals, b = nextLine(b)
		proto, hrest, ok1 := bytes.Cut(head, []byte(": "))
		vproto, vrest, ok2 := bytes.Cut(vals, []byte(": "))
		if !ok1 || !ok2 || !bytes.Equal(proto, vproto) {
			continue
		}
		nc := fieldsN(hrest, c.cols[:])
		nv := fieldsN(vrest, c.vals[:])
		for _, f := range netstatFields {
			if string(proto) != f.proto {
				continue
			}
			for i := 0; i < nc && i < nv; i++ {
				if string(c.cols[i]) != f.col {
					continue
				}
				if v, ok := parseInt(c.vals[i]); ok {
					out = append(out, wire.I(f.field, v))
				}
				break
			}
		}
	}
	return out
}

// parseInt parses a decimal integer that may be negative (some snmp
// columns, e.g. MaxConn, are -1).
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	u, ok := parseUint(b)
	if !ok || u > 1<<63-1 {
		return 0, false
	}
	if neg {
		return -int64(u), true
	}
	return int64(u), true
}

var _ Collector = (*netstatCollector)(nil)
