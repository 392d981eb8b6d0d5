package agent

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

func testBatch(seq uint64, size int) batch {
	data := []byte(fmt.Sprintf("m,host=h v=%di %d\n", seq, 1_700_000_000_000_000_000+int64(seq)))
	for len(data) < size {
		data = append(data, fmt.Sprintf("pad,host=h v=%di %d\n", seq, 1_700_000_000_000_000_000+int64(seq))...)
	}
	return batch{seq: seq, data: data, created: time.Unix(0, 1_700_000_000_000_000_000+int64(seq))}
}

func openTestSpool(t *testing.T, dir string, maxBytes int64, run string) (*spool, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	s, err := openSpool(dir, maxBytes, run, "h", slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s, logs
}

// drain peeks and acknowledges up to n batches (all for n < 0).
func drain(t *testing.T, s *spool, n int) []batch {
	t.Helper()
	var out []batch
	for n != 0 {
		b, ref, ok := s.peek()
		if !ok {
			break
		}
		out = append(out, b)
		s.ack(ref)
		n--
	}
	return out
}

func seqList(bs []batch) string {
	var parts []string
	for _, b := range bs {
		parts = append(parts, fmt.Sprint(b.seq))
	}
	return strings.Join(parts, ",")
}

func seqRange(from, to uint64) string {
	var parts []string
	for s := from; s <= to; s++ {
		parts = append(parts, fmt.Sprint(s))
	}
	return strings.Join(parts, ",")
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, segPrefix+"*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

func TestSpoolRecordRoundTrip(t *testing.T) {
	b := testBatch(42, 100)
	rec := appendRecord(nil, &b, "run123", "web-1")
	if len(rec) != recordSize(&b, "run123", "web-1") {
		t.Fatalf("size %d, recordSize %d", len(rec), recordSize(&b, "run123", "web-1"))
	}
	got, n, err := decodeRecord(append(rec, "trailing"...))
	if err != nil || n != len(rec) {
		t.Fatalf("decode: %v, n %d of %d", err, n, len(rec))
	}
	if got.seq != 42 || got.run != "run123" || got.host != "web-1" || !got.created.Equal(b.created) || !bytes.Equal(got.data, b.data) {
		t.Fatalf("decoded %+v", got)
	}
	for cut := 1; cut < len(rec); cut += 7 {
		if _, _, err := decodeRecord(rec[:cut]); err != errRecShort {
			t.Fatalf("cut at %d: %v, want errRecShort", cut, err)
		}
	}
	for _, i := range []int{0, 5, 9, 14, 30, len(rec) - 1} { // magic, length, crc, body
		bad := bytes.Clone(rec)
		bad[i] ^= 0x40
		if _, _, err := decodeRecord(bad); err == nil {
			t.Fatalf("flipped byte %d: decoded", i)
		}
	}
}

func TestSpoolFIFOAcrossSegmentsAndRestart(t *testing.T) {
	dir := t.TempDir()
	s, _ := openTestSpool(t, dir, 1<<20, "run1") // 64 KiB segments
	for seq := uint64(1); seq <= 100; seq++ {
		b := testBatch(seq, 2000)
		if err := s.put(&b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.sync(); err != nil {
		t.Fatal(err)
	}
	if segs := segFiles(t, dir); len(segs) < 3 {
		t.Fatalf("%d segment files for 200 KB, want several", len(segs))
	}
	first := drain(t, s, 30)
	if seqList(first) != seqRange(1, 30) || first[0].run != "run1" || first[0].host != "h" {
		t.Fatalf("first 30: %s (run %q host %q)", seqList(first), first[0].run, first[0].host)
	}
	if st := s.Stats(); st.Batches != 70 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	// A restart re-sends only what was not acknowledged, in order, with the
	// first run's id; new batches of the second run come after.
	s2, logs := openTestSpool(t, dir, 1<<20, "run2")
	defer s2.close()
	if st := s2.Stats(); st.Batches != 70 || st.Corrupt != 0 {
		t.Fatalf("reopened: %+v", st)
	}
	nb := testBatch(1, 100)
	if err := s2.put(&nb); err != nil {
		t.Fatal(err)
	}
	rest := drain(t, s2, -1)
	if seqList(rest) != seqRange(31, 100)+",1" || rest[0].run != "run1" || rest[70].run != "run2" {
		t.Fatalf("after restart: %s", seqList(rest))
	}
	want := testBatch(55, 2000)
	if b := rest[55-31]; !bytes.Equal(b.data, want.data) || !b.created.Equal(want.created) {
		t.Fatalf("batch 55 changed on disk: %+v", b)
	}
	if !strings.Contains(logs.String(), "batches of earlier runs") {
		t.Errorf("no log of the batches found:\n%s", logs)
	}
	if st := s2.Stats(); st.Batches != 0 || st.Bytes != 0 || len(segFiles(t, dir)) != 0 {
		t.Fatalf("drained spool: %+v, files %v", st, segFiles(t, dir))
	}
}

func TestSpoolDropsOldestWhenFull(t *testing.T) {
	dir := t.TempDir()
	s, logs := openTestSpool(t, dir, 1<<20, "r")
	defer s.close()
	const n = 1000 // 2 MB into 1 MiB
	for seq := uint64(1); seq <= n; seq++ {
		b := testBatch(seq, 2000)
		if err := s.put(&b); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.Bytes > 1<<20 {
			t.Fatalf("spool holds %d bytes > max", st.Bytes)
		}
	}
	st := s.Stats()
	if st.Dropped == 0 || uint64(st.Batches)+st.Dropped != n {
		t.Fatalf("stats %+v: kept + dropped != %d", st, n)
	}
	kept := drain(t, s, -1)
	first := uint64(n) - uint64(len(kept)) + 1
	if seqList(kept) != seqRange(first, n) {
		t.Fatalf("kept %s, want the newest %d..%d", seqList(kept), first, n)
	}
	if !strings.Contains(logs.String(), "spool full: dropped the oldest batches") {
		t.Fatalf("drop not logged:\n%s", logs)
	}
	var on int64
	for _, f := range segFiles(t, dir) {
		fi, _ := os.Stat(f)
		on += fi.Size()
	}
	if on > 1<<20 {
		t.Fatalf("%d bytes on disk", on)
	}
}

// A crash leaves the last record cut short; a disk may damage another.
// Both are skipped and counted; every other batch is re-sent in order.
func TestSpoolSkipsDamagedAndCutShortRecords(t *testing.T) {
	dir := t.TempDir()
	s, _ := openTestSpool(t, dir, 1<<20, "r")
	for seq := uint64(1); seq <= 10; seq++ {
		b := testBatch(seq, 500)
		if err := s.put(&b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.sync(); err != nil {
		t.Fatal(err)
	}
	// "Crash": the process dies; only the lock goes (the kernel drops it).
	s.closeWriter()
	s.lock.Close()
	segs := segFiles(t, dir)
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	spans, _ := scanRecords(data)
	data[spans[3].off+40] ^= 0xff                // damage batch 4's body
	data = data[:len(data)-int(spans[9].size)/2] // batch 10 cut short
	if err := os.WriteFile(segs[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	s2, logs := openTestSpool(t, dir, 1<<20, "r2")
	defer s2.close()
	st := s2.Stats()
	if st.Batches != 8 || st.Corrupt != 2 || st.Dropped != 2 {
		t.Fatalf("stats %+v", st)
	}
	if got := seqList(drain(t, s2, -1)); got != "1,2,3,5,6,7,8,9" {
		t.Fatalf("re-sent %s", got)
	}
	if !strings.Contains(logs.String(), "damaged or cut-short records skipped") {
		t.Fatalf("not logged:\n%s", logs)
	}
}

func TestSpoolIsLocked(t *testing.T) {
	dir := t.TempDir()
	s, _ := openTestSpool(t, dir, 1<<20, "a")
	if _, err := openSpool(dir, 1<<20, "b", "h", slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "in use by another agent") {
		t.Fatalf("second open: %v", err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	s2, _ := openTestSpool(t, dir, 1<<20, "b")
	s2.close()
}

// A batch dropped while it is being published (spool full) is not
// acknowledged twice, and the next one is sent.
func TestSpoolAckAfterDrop(t *testing.T) {
	s, _ := openTestSpool(t, t.TempDir(), 1<<20, "r")
	defer s.close()
	b := testBatch(1, 2000)
	if err := s.put(&b); err != nil {
		t.Fatal(err)
	}
	_, ref, ok := s.peek()
	if !ok {
		t.Fatal("empty")
	}
	for seq := uint64(2); seq <= 800; seq++ { // forces the first segment out
		b := testBatch(seq, 2000)
		if err := s.put(&b); err != nil {
			t.Fatal(err)
		}
	}
	before := s.Stats()
	s.ack(ref) // of a dropped batch: nothing happens
	if after := s.Stats(); after.Batches != before.Batches {
		t.Fatalf("ack of a dropped batch removed one: %+v -> %+v", before, after)
	}
	next, _, _ := s.peek()
	if next.seq == 1 || uint64(before.Batches)+before.Dropped != 800 {
		t.Fatalf("next %d, stats %+v", next.seq, before)
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"1048576": 1 << 20, "256MiB": 256 << 20, "1 GiB": 1 << 30, "500MB": 500e6, "64kib": 64 << 10, "10B": 10} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "12XB", "-5", "1.5GiB", "99999999999GiB"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// FuzzSpoolScan: whatever a segment file holds, scanning never panics and
// returns only records that are in bounds, in order, not overlapping, and
// that encode back to exactly their bytes.
func FuzzSpoolScan(f *testing.F) {
	var valid []byte
	for seq := uint64(1); seq <= 3; seq++ {
		b := testBatch(seq, 40)
		valid = appendRecord(valid, &b, "run", "host")
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add(append([]byte("garbageVSR1"), valid...))
	f.Add([]byte("VSR1\xff\xff\xff\xff"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		spans, corrupt := scanRecords(data)
		end := int64(0)
		for _, sp := range spans {
			if sp.off < end || sp.off+int64(sp.size) > int64(len(data)) || sp.size < recHeader {
				t.Fatalf("span %+v out of order or bounds (end %d, len %d)", sp, end, len(data))
			}
			end = sp.off + int64(sp.size)
			raw := data[sp.off:end]
			b, n, err := decodeRecord(raw)
			if err != nil || n != len(raw) {
				t.Fatalf("span %+v does not decode: %v", sp, err)
			}
			if again := appendRecord(nil, &b, b.run, b.host); !bytes.Equal(again, raw) {
				t.Fatalf("record does not re-encode to its bytes")
			}
		}
		if corrupt < 0 || (len(spans) == 0 && len(data) > 0 && corrupt == 0) {
			t.Fatalf("%d bytes, no records, corrupt %d", len(data), corrupt)
		}
	})
}

// The example documents the delivery sections with their defaults.
func TestExampleDeliverySections(t *testing.T) {
	c, err := ParseConfig("example.yaml", ExampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	if c.StateDir != "/var/lib/vigil-agent" || c.SpoolDir() != "/var/lib/vigil-agent/spool" || c.Spool.MaxBytes != DefaultSpoolBytes {
		t.Errorf("state_dir %q spool %q max %d", c.StateDir, c.SpoolDir(), c.Spool.MaxBytes)
	}
	if c.MetricsAddr() != "127.0.0.1:9465" || c.NATS.TLS.InsecureSkipVerify {
		t.Errorf("metrics %q tls %+v", c.MetricsAddr(), c.NATS.TLS)
	}
	for _, key := range []string{"nkey_seed:", "tls:", "insecure_skip_verify: false", "max_bytes: 256MiB", "listen: 127.0.0.1:9465"} {
		if !bytes.Contains(ExampleConfig, []byte(key)) {
			t.Errorf("example.yaml does not document %q", key)
		}
	}
}

// BenchmarkSpoolPutSyncPeekAck: one 8 KB batch through the spool as during
// an outage (write, fsync, read back, acknowledge).
func BenchmarkSpoolPutSyncPeekAck(b *testing.B) {
	s, err := openSpool(b.TempDir(), 64<<20, "run", "h", slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	bt := testBatch(1, 8000)
	b.SetBytes(int64(len(bt.data)))
	b.ReportAllocs()
	for b.Loop() {
		bt.seq++
		if err := s.put(&bt); err != nil {
			b.Fatal(err)
		}
		if err := s.sync(); err != nil {
			b.Fatal(err)
		}
		got, ref, ok := s.peek()
		if !ok || got.seq != bt.seq {
			b.Fatalf("peek %v %d", ok, got.seq)
		}
		s.ack(ref)
	}
}
