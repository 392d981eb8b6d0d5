package wire

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzDecode checks that Decode never panics, that its counts and errors
// are consistent, and that every point it accepts survives a re-encoding
// through Batch and a second decoding unchanged (up to the encoder's tag
// order: sorted by key, the last of duplicate keys kept).
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		telegrafSample,
		"cpu,host=a used=1.2.3\nm f=1i,g=2u,h=t,s=\"x\\\"y\" 12\r\n# c\n\n",
		`my\ m\,x,t\=k=v\ w\,x\=y f\=k=-1.5e-3,s="a\\b\c" -7`,
		"a s=\"x\ny\",f=1 7\nb f=2\n",
		"m s=\"abc\nm f=1 12\n",
		`C:\dir,p=C:\Win\\,q=a\\\,b x\y=1`,
		"m,a=1,a=2,b=0 f=1e999,g=NaN,h=.5,i=1.",
		"  m  f=1   2  \r\n\tm f=F,g=TRUE\n",
		"m f=9223372036854775807i,g=-9223372036854775808i,h=18446744073709551615u",
		"m,=x f=1\nm,t f=1\nm f\nm =1\nm f=\nm f=1,\nm f=1 x\nm f=1 1 2\nm",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var d Decoder
		var pts []point
		ok, bad, errs := d.Decode(in, func(p *PointView) { pts = append(pts, ownPoint(p)) })
		checkCounts(t, in, ok, bad, errs, len(pts))
		ok2, bad2, _ := d.Decode(in, nil) // a reused decoder agrees with itself
		if ok2 != ok || bad2 != bad {
			t.Fatalf("second decode: ok %d bad %d, first %d %d", ok2, bad2, ok, bad)
		}
		var b Batch
		d2 := Decoder{MaxLineBytes: 1 << 30}
		for _, p := range pts {
			b.Reset()
			var ts time.Time
			if p.HasTime {
				ts = time.Unix(0, p.Time)
			}
			if !b.Point(p.M, p.Tags, p.Fields, ts) {
				t.Fatalf("Point refused decoded point %+v", p)
			}
			got, bad, errs := decodeAll(t, &d2, string(b.Bytes()))
			if bad != 0 || len(got) != 1 {
				t.Fatalf("re-encoded %+v as %q: %d points, errors %v", p, b.Bytes(), len(got), errs)
			}
			if want := encoderOrder(p); !samePoint(got[0], want) {
				t.Fatalf("round trip via %q\n got %+v\nwant %+v", b.Bytes(), got[0], want)
			}
		}
	})
}

func checkCounts(t *testing.T, in []byte, ok, bad int, errs []*LineError, visited int) {
	t.Helper()
	if ok != visited || ok < 0 || bad < 0 || ok+bad > bytes.Count(in, newline)+1 {
		t.Fatalf("ok %d bad %d visited %d for %d lines", ok, bad, visited, bytes.Count(in, newline)+1)
	}
	if len(errs) != min(bad, maxLineErrors) {
		t.Fatalf("%d errors for %d bad lines", len(errs), bad)
	}
	last := 0
	for _, e := range errs {
		if e.Line <= last || e.Col < 1 || e.Msg == "" || len(e.Excerpt) > 64 {
			t.Fatalf("bad error %+v after line %d", e, last)
		}
		last = e.Line
	}
}

// encoderOrder is p as Batch writes it: tags stably sorted by key, the last
// of equal keys kept.
func encoderOrder(p point) point {
	tags := slices.Clone(p.Tags)
	slices.SortStableFunc(tags, compareTags)
	var out []Tag
	for i, tg := range tags {
		if i+1 < len(tags) && tags[i+1].Key == tg.Key {
			continue
		}
		out = append(out, tg)
	}
	p.Tags = out
	return p
}

// TestRoundTrip encodes random points (fixed seed) with awkward names,
// values and times, decodes the batches and compares with what Point
// promises to write.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var b Batch
	var d Decoder
	lines, skipped := 0, 0
	for batch := 0; batch < 40; batch++ {
		b.Reset()
		var want []point
		wantSkipped := 0
		for i := 0; i < 50; i++ {
			m, tags, fields, ts := randomPoint(rng)
			exp, ok, sk := expected(m, tags, fields, ts)
			wantSkipped += sk
			if got := b.Point(m, tags, fields, ts); got != ok {
				t.Fatalf("Point(%q, %q, %+v, %v) = %v, want %v", m, tags, fields, ts, got, ok)
			}
			if ok {
				want = append(want, exp)
			}
		}
		got, bad, errs := decodeAll(t, &d, string(b.Bytes()))
		if bad != 0 || len(got) != len(want) || b.Len() != len(want) || b.Skipped() != wantSkipped {
			t.Fatalf("batch %d: bad %d %v, got %d points, want %d, Len %d, Skipped %d want %d",
				batch, bad, errs, len(got), len(want), b.Len(), b.Skipped(), wantSkipped)
		}
		for i := range got {
			if !samePoint(got[i], want[i]) {
				t.Fatalf("batch %d point %d\n got %+v\nwant %+v\nline %q", batch, i, got[i], want[i], b.Bytes())
			}
		}
		lines += len(got)
		skipped += wantSkipped
	}
	if lines < 1000 || skipped == 0 {
		t.Fatalf("generator too tame: %d lines, %d skipped", lines, skipped)
	}
}

const alphabet = "abcXYZ019_-., =\\\"#\t\r\né"

func randomString(rng *rand.Rand, maxLen int) string {
	var sb strings.Builder
	for n := rng.IntN(maxLen + 1); n > 0; n-- {
		if rng.IntN(3) == 0 { // mostly plain letters, often specials
			sb.WriteByte(alphabet[rng.IntN(len(alphabet))])
		} else {
			sb.WriteByte(byte('a' + rng.IntN(26)))
		}
	}
	return sb.String()
}

func randomPoint(rng *rand.Rand) (string, []Tag, []Field, time.Time) {
	m := randomString(rng, 10)
	var tags []Tag
	for n := rng.IntN(20); n > 0; n-- {
		tags = append(tags, Tag{randomString(rng, 2), randomString(rng, 8)})
	}
	var fields []Field
	for n := rng.IntN(6); n > 0; n-- {
		k := randomString(rng, 6)
		switch rng.IntN(6) {
		case 0:
			fields = append(fields, F(k, randomFloat(rng)))
		case 1:
			fields = append(fields, I(k, int64(rng.Uint64())))
		case 2:
			fields = append(fields, U(k, rng.Uint64()>>rng.IntN(64)))
		case 3:
			fields = append(fields, B(k, rng.IntN(2) == 0))
		case 4:
			fields = append(fields, S(k, randomString(rng, 12)))
		default:
			fields = append(fields, F(k, rng.NormFloat64()*100))
		}
	}
	var ts time.Time
	if rng.IntN(10) > 0 {
		ts = time.Unix(0, int64(rng.Uint64()))
	}
	return m, tags, fields, ts
}

func randomFloat(rng *rand.Rand) float64 {
	special := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1),
		math.MaxFloat64, math.SmallestNonzeroFloat64, -1e-300, 1e21, 1e-6, 123456789.125}
	if rng.IntN(3) == 0 {
		return special[rng.IntN(len(special))]
	}
	return math.Float64frombits(rng.Uint64()) // any bits, NaNs included
}

// expected is what Point promises to write: sorted tags without empty ones,
// the last of equal keys; finite fields with keys; newlines in names as
// spaces. ok is false when no line is written; skipped counts NaN/Inf
// fields of points with a valid measurement.
func expected(m string, tags []Tag, fields []Field, ts time.Time) (p point, ok bool, skipped int) {
	nl := func(s string) string { return strings.ReplaceAll(s, "\n", " ") }
	p = point{M: nl(m), HasTime: !ts.IsZero()}
	if p.HasTime {
		p.Time = ts.UnixNano()
	}
	var kept []Tag
	for _, tg := range tags {
		if tg.Key != "" && tg.Value != "" {
			kept = append(kept, tg)
		}
	}
	for _, tg := range encoderOrder(point{Tags: kept}).Tags {
		p.Tags = append(p.Tags, Tag{nl(tg.Key), nl(tg.Value)})
	}
	for _, f := range fields {
		switch {
		case f.Key == "":
		case f.Kind == FieldFloat && (math.IsNaN(f.Float) || math.IsInf(f.Float, 0)):
			skipped++
		default:
			f.Key = nl(f.Key)
			p.Fields = append(p.Fields, f)
		}
	}
	if m == "" || m[0] == '#' || m[0] == '\t' {
		return p, false, 0 // refused before looking at fields
	}
	return p, len(p.Fields) > 0, skipped
}

// benchBatch is 200 lines as an agent writes them: host and one or two
// more tags, five fields of mixed kinds, a nanosecond timestamp.
func benchBatch() []byte {
	var b Batch
	rng := rand.New(rand.NewPCG(3, 4))
	t0 := time.Unix(1700000000, 0)
	for i := 0; i < 200; i++ {
		host := Tag{"host", "gpu-node-" + string(rune('a'+i%7))}
		ts := t0.Add(time.Duration(i) * time.Millisecond)
		switch i % 4 {
		case 0:
			b.Point("cpu", []Tag{{"cpu", "cpu-total"}, host}, []Field{F("usage_user", rng.Float64()*100),
				F("usage_system", rng.Float64()*10), F("usage_idle", rng.Float64()*100), F("usage_iowait", rng.Float64()),
				F("load1", rng.Float64()*8)}, ts)
		case 1:
			b.Point("mem", []Tag{host}, []Field{I("used", rng.Int64N(1<<36)), I("available", rng.Int64N(1<<36)),
				F("used_percent", rng.Float64()*100), I("swap_used", rng.Int64N(1<<30)), F("pressure", rng.Float64())}, ts)
		case 2:
			b.Point("disk", []Tag{{"device", "nvme0n1p2"}, host, {"path", "/var/lib/models"}}, []Field{
				U("free", rng.Uint64()>>20), U("used", rng.Uint64()>>20), F("used_percent", rng.Float64()*100),
				I("inodes_used", rng.Int64N(1<<24)), F("io_util", rng.Float64())}, ts)
		default:
			b.Point("model", []Tag{host, {"model", "resnet 50,v2"}}, []Field{F("latency_p99_ms", rng.Float64()*300),
				F("error_rate", rng.Float64()/100), I("requests", rng.Int64N(1e6)), F("drift_psi", rng.Float64()),
				B("healthy", rng.IntN(10) > 0)}, ts)
		}
	}
	return slices.Clone(b.Bytes())
}

func BenchmarkDecode(b *testing.B) {
	for _, bc := range []struct {
		name  string
		batch []byte
	}{
		{"agent200", benchBatch()},
		{"telegraf200", bytes.Repeat([]byte(telegrafSample), 20)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var d Decoder
			var sum float64
			visit := func(p *PointView) {
				for i := range p.Fields {
					v, _ := p.Fields[i].Number()
					sum += v
				}
			}
			lines, _, _ := d.Decode(bc.batch, visit)
			b.SetBytes(int64(len(bc.batch)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if ok, bad, _ := d.Decode(bc.batch, visit); ok != lines || bad != 0 {
					b.Fatalf("ok %d bad %d", ok, bad)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*lines), "ns/line")
			if sum == 0 {
				b.Fatal("nothing decoded")
			}
		})
	}
}

func BenchmarkBatchPoint(b *testing.B) {
	fields := []Field{F("latency_p99_ms", 123.456), F("error_rate", 0.0012), I("requests", 98765),
		F("drift_psi", 0.087), B("healthy", true)}
	for _, bc := range []struct {
		name string
		tags []Tag
	}{
		{"sorted3", []Tag{{"host", "gpu-node-7"}, {"model", "resnet 50,v2"}, {"zone", "eu-1"}}},
		{"unsorted3", []Tag{{"zone", "eu-1"}, {"host", "gpu-node-7"}, {"model", "resnet 50,v2"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var batch Batch
			ts := time.Unix(1700000000, 0)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if i%200 == 0 {
					batch.Reset()
				}
				batch.Point("model", bc.tags, fields, ts)
			}
		})
	}
}

func TestSteadyStateDoesNotAllocate(t *testing.T) {
	batch := append(benchBatch(), "m,t=a\\ b s=\"x\\\"y\",f=1 1\n"...)
	var d Decoder
	d.Decode(batch, nil)
	if n := testing.AllocsPerRun(20, func() { d.Decode(batch, func(*PointView) {}) }); n != 0 {
		t.Errorf("Decode: %v allocations per batch in steady state", n)
	}
	var b Batch
	tags := make([]Tag, 20)
	for i := range tags {
		tags[i] = Tag{string(rune('z' - i)), "v"}
	}
	fields := []Field{F("a", 1), I("b", 2), S("c", `q"`), F("d", math.NaN())}
	ts := time.Unix(1, 0)
	b.Point("m", tags, fields, ts)
	if n := testing.AllocsPerRun(100, func() { b.Reset(); b.Point("m", tags, fields, ts) }); n != 0 {
		t.Errorf("Batch.Point: %v allocations per point in steady state", n)
	}
}
