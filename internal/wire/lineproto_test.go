package wire

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// point is an owned copy of a PointView (or the input of Batch.Point).
type point struct {
	M       string
	Tags    []Tag
	Fields  []Field
	Time    int64
	HasTime bool
}

func ownPoint(p *PointView) point {
	o := point{M: string(p.Measurement), Time: p.Time, HasTime: p.HasTime}
	for _, t := range p.Tags {
		o.Tags = append(o.Tags, Tag{string(t.Key), string(t.Value)})
	}
	for _, f := range p.Fields {
		o.Fields = append(o.Fields, Field{Key: string(f.Key), Kind: f.Kind, Float: f.Float,
			Int: f.Int, Uint: f.Uint, Bool: f.Bool, Str: string(f.Str)})
	}
	return o
}

// samePoint compares two points, floats by their bits.
func samePoint(a, b point) bool {
	if a.M != b.M || a.Time != b.Time || a.HasTime != b.HasTime || len(a.Fields) != len(b.Fields) ||
		len(a.Tags) != len(b.Tags) {
		return false
	}
	for i := range a.Tags {
		if a.Tags[i] != b.Tags[i] {
			return false
		}
	}
	for i := range a.Fields {
		x, y := a.Fields[i], b.Fields[i]
		if math.Float64bits(x.Float) != math.Float64bits(y.Float) {
			return false
		}
		x.Float, y.Float = 0, 0
		if x != y {
			return false
		}
	}
	return true
}

func decodeAll(t testing.TB, d *Decoder, in string) ([]point, int, []*LineError) {
	t.Helper()
	var pts []point
	ok, bad, errs := d.Decode([]byte(in), func(p *PointView) { pts = append(pts, ownPoint(p)) })
	if ok != len(pts) {
		t.Fatalf("ok = %d, visited %d", ok, len(pts))
	}
	return pts, bad, errs
}

func TestBatchPoint(t *testing.T) {
	ts := time.Unix(1700000000, 123)
	cases := []struct {
		name    string
		m       string
		tags    []Tag
		fields  []Field
		t       time.Time
		want    string // "" = no line
		skipped int
	}{
		{"basic", "cpu", []Tag{{"host", "web-1"}}, []Field{F("usage", 1.5)}, ts,
			"cpu,host=web-1 usage=1.5 1700000000000000123\n", 0},
		{"tags sorted, empty and duplicate dropped", "m",
			[]Tag{{"z", "1"}, {"a", "x"}, {"", "k"}, {"e", ""}, {"a", "y"}, {"b", "2"}, {"a", ""}},
			[]Field{I("n", 1)}, ts, "m,a=y,b=2,z=1 n=1i 1700000000000000123\n", 0},
		{"every kind", "m", nil,
			[]Field{F("f", -0.25), I("i", math.MinInt64), U("u", math.MaxUint64), B("t", true), B("f2", false), S("s", "x")},
			ts, `m f=-0.25,i=-9223372036854775808i,u=18446744073709551615u,t=true,f2=false,s="x" 1700000000000000123` + "\n", 0},
		{"float forms", "m", nil,
			[]Field{F("a", 123456789), F("b", 1e21), F("c", 1e-7), F("d", math.Copysign(0, -1)), F("e", 0.000001), F("g", 5e-324)},
			time.Time{}, "m a=123456789,b=1e+21,c=1e-07,d=-0,e=0.000001,g=5e-324\n", 0},
		{"escapes", "my cpu,x=y", []Tag{{"a b", "c,d=e"}, {"k=", "v w"}},
			[]Field{F("f=1", 2), F("g h,i", 3)}, ts,
			`my\ cpu\,x=y,a\ b=c\,d\=e,k\==v\ w f\=1=2,g\ h\,i=3 1700000000000000123` + "\n", 0},
		{"backslashes", `C:\dir`, []Tag{{"path", `C:\Windows\`}, {"q", `a\,b`}, {"r", `a\\b`}},
			[]Field{F(`x\`, 1)}, time.Time{},
			`C:\dir,path=C:\Windows\\,q=a\\\,b,r=a\\\b x\\=1` + "\n", 0},
		{"string escapes", "m", nil, []Field{S("s", "say \"hi\"\\ \nbye")}, time.Time{},
			"m s=\"say \\\"hi\\\"\\\\ \nbye\"\n", 0},
		{"newline in names", "a\nb", []Tag{{"t", "x\ny"}}, []Field{F("k\n", 1)}, time.Time{},
			`a\ b,t=x\ y k\ =1` + "\n", 0},
		{"nan and inf skipped", "m", nil,
			[]Field{F("a", math.NaN()), F("b", 2), F("c", math.Inf(1)), F("d", math.Inf(-1))}, time.Time{}, "m b=2\n", 3},
		{"no finite field", "m", []Tag{{"h", "a"}}, []Field{F("a", math.NaN()), F("b", math.Inf(1))}, ts, "", 2},
		{"no field", "m", nil, nil, ts, "", 0},
		{"empty field key and bad kind", "m", nil, []Field{F("", 1), {Key: "z"}, I("ok", 1)}, time.Time{}, "m ok=1i\n", 0},
		{"empty measurement", "", nil, []Field{F("a", 1)}, ts, "", 0},
		{"comment-like measurement", "#m", nil, []Field{F("a", 1)}, ts, "", 0},
		{"tab measurement", "\tm", nil, []Field{F("a", 1)}, ts, "", 0},
		{"time out of range", "m", nil, []Field{F("a", 1)}, time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), "", 0},
		{"negative time", "m", nil, []Field{F("a", 1)}, time.Unix(-1, 0), "m a=1 -1000000000\n", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b Batch
			b.Point("prev", nil, []Field{I("x", 1)}, time.Time{})
			prev := string(b.Bytes())
			got := b.Point(c.m, c.tags, c.fields, c.t)
			if got != (c.want != "") {
				t.Errorf("Point returned %v", got)
			}
			if s := strings.TrimPrefix(string(b.Bytes()), prev); s != c.want {
				t.Errorf("line\n got %q\nwant %q", s, c.want)
			}
			wantLen := 1
			if c.want != "" {
				wantLen = 2
			}
			if b.Len() != wantLen {
				t.Errorf("Len = %d, want %d", b.Len(), wantLen)
			}
			if b.Skipped() != c.skipped {
				t.Errorf("Skipped = %d, want %d", b.Skipped(), c.skipped)
			}
		})
	}
}

func TestBatchResetAndUnsortedInputKept(t *testing.T) {
	var b Batch
	tags := []Tag{{"z", "1"}, {"a", "2"}}
	b.Point("m", tags, []Field{F("x", math.NaN()), F("y", 1)}, time.Time{})
	b.Point("m", tags, []Field{F("y", 2)}, time.Time{})
	if b.Len() != 2 || b.Skipped() != 1 || string(b.Bytes()) != "m,a=2,z=1 y=1\nm,a=2,z=1 y=2\n" {
		t.Fatalf("Len %d Skipped %d Bytes %q", b.Len(), b.Skipped(), b.Bytes())
	}
	if tags[0].Key != "z" {
		t.Errorf("Point reordered the caller's tags: %v", tags)
	}
	b.Reset()
	if b.Len() != 0 || b.Skipped() != 0 || len(b.Bytes()) != 0 {
		t.Fatalf("after Reset: Len %d Skipped %d Bytes %q", b.Len(), b.Skipped(), b.Bytes())
	}
}

func TestDecode(t *testing.T) {
	f := func(k string, v float64) Field { return F(k, v) }
	cases := []struct {
		name string
		in   string
		want []point
	}{
		{"every kind", `m f=1.5,g=-2,h=1e3,i=12i,j=-7i,u=12u,s="str",b=t 1700000000000000000`,
			[]point{{M: "m", Fields: []Field{f("f", 1.5), f("g", -2), f("h", 1000), I("i", 12), I("j", -7), U("u", 12),
				S("s", "str"), B("b", true)}, Time: 1700000000000000000, HasTime: true}}},
		{"booleans", "m a=t,b=T,c=true,d=True,e=TRUE,f=f,g=F,h=false,i=False,j=FALSE",
			[]point{{M: "m", Fields: []Field{B("a", true), B("b", true), B("c", true), B("d", true), B("e", true),
				B("f", false), B("g", false), B("h", false), B("i", false), B("j", false)}}}},
		{"float forms", "m a=.5,b=1.,c=1E-3,d=1e+3,e=-0,f=1e-400,g=007",
			[]point{{M: "m", Fields: []Field{f("a", 0.5), f("b", 1), f("c", 0.001), f("d", 1000), f("e", math.Copysign(0, -1)),
				f("f", 0), f("g", 7)}}}},
		{"integer limits", "m a=-9223372036854775808i,b=9223372036854775807i,c=18446744073709551615u,d=0u",
			[]point{{M: "m", Fields: []Field{I("a", math.MinInt64), I("b", math.MaxInt64), U("c", math.MaxUint64), U("d", 0)}}}},
		{"escapes", `my\ cpu\,x\=y,ta\ g\,=v\,a\=l\ ,b=x=y f\=k\ =1`,
			[]point{{M: "my cpu,x=y", Tags: []Tag{{"ta g,", "v,a=l "}, {"b", "x=y"}}, Fields: []Field{f("f=k ", 1)}}}},
		{"backslashes", `C:\dir,p=C:\Win\\,q=a\\\,b,r=\\\\ x\y=1`,
			[]point{{M: `C:\dir`, Tags: []Tag{{"p", `C:\Win\`}, {"q", `a\,b`}, {"r", `\\`}}, Fields: []Field{f(`x\y`, 1)}}}},
		{"string escapes", `m s="a\"b\\c\d, e=f",t="",u="\\"`,
			[]point{{M: "m", Fields: []Field{S("s", `a"b\c\d, e=f`), S("t", ""), S("u", `\`)}}}},
		{"comments, blanks, CRLF, spacing", "# header\r\n\r\n   \n\t# indented comment\na f=1 5\r\n  b  f=2   6  \r\nc f=3 \n",
			[]point{{M: "a", Fields: []Field{f("f", 1)}, Time: 5, HasTime: true},
				{M: "b", Fields: []Field{f("f", 2)}, Time: 6, HasTime: true}, {M: "c", Fields: []Field{f("f", 3)}}}},
		{"negative timestamp, no final newline", "m f=1i -5", []point{{M: "m", Fields: []Field{I("f", 1)}, Time: -5, HasTime: true}}},
		{"string with newlines", "a s=\"x\ny\r\nz\",f=1 7\nb f=2\n",
			[]point{{M: "a", Fields: []Field{S("s", "x\ny\r\nz"), f("f", 1)}, Time: 7, HasTime: true}, {M: "b", Fields: []Field{f("f", 2)}}}},
		{"utf-8 and odd bytes pass through", "m\xff,t=é\x00 k=\"\xfe\"", []point{{M: "m\xff", Tags: []Tag{{"t", "é\x00"}}, Fields: []Field{S("k", "\xfe")}}}},
	}
	var d Decoder
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, bad, errs := decodeAll(t, &d, c.in)
			if bad != 0 {
				t.Fatalf("bad = %d: %v", bad, errs)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d points %+v, want %d", len(got), got, len(c.want))
			}
			for i := range got {
				if !samePoint(got[i], c.want[i]) {
					t.Errorf("point %d\n got %+v\nwant %+v", i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		in        string
		line, col int
		msg       string
	}{
		{"cpu,host=a used=1.2.3", 1, 17, `invalid float value "1.2.3" for field "used"`},
		{"cpu", 1, 4, "missing fields"},
		{"cpu,host=a  ", 1, 11, "missing fields"},
		{",a=b f=1", 1, 1, "missing measurement"},
		{"cpu,host= f=1", 1, 10, `empty value for tag "host"`},
		{"cpu,=a f=1", 1, 5, "empty tag key"},
		{"cpu,host f=1", 1, 9, `missing '=' after tag key "host"`},
		{"cpu f", 1, 6, `missing '=' after field key "f"`},
		{"cpu f=", 1, 7, `missing value for field "f"`},
		{"cpu f=1,", 1, 9, "empty field key"},
		{"cpu =1", 1, 5, "empty field key"},
		{"cpu f=1 abc", 1, 9, `invalid timestamp "abc"`},
		{"cpu f=1 1.5", 1, 9, `invalid timestamp "1.5"`},
		{"cpu f=1 9223372036854775808", 1, 9, `timestamp "9223372036854775808" out of range`},
		{"cpu f=1 1 2", 1, 11, "unexpected text after timestamp"},
		{"cpu f=1e999", 1, 7, `float value "1e999" for field "f" is not finite`},
		{"cpu a=1,f=-1e400", 1, 11, `float value "-1e400" for field "f" is not finite`},
		{"cpu f=NaN", 1, 7, `invalid float value "NaN" for field "f"`},
		{"cpu f=+Inf", 1, 7, `invalid float value "+Inf" for field "f"`},
		{"cpu f=1e", 1, 7, `invalid float value "1e" for field "f"`},
		{"cpu f=.", 1, 7, `invalid float value "." for field "f"`},
		{"cpu f=tru", 1, 7, `invalid boolean value "tru" for field "f"`},
		{"cpu f=1.5i", 1, 7, `invalid integer value "1.5i" for field "f"`},
		{"cpu f=i", 1, 7, `invalid integer value "i" for field "f"`},
		{"cpu f=9223372036854775808i", 1, 7, `integer value "9223372036854775808i" out of range for field "f"`},
		{"cpu f=-1u", 1, 7, `invalid unsigned value "-1u" for field "f"`},
		{"cpu f=18446744073709551616u", 1, 7, `unsigned value "18446744073709551616u" out of range for field "f"`},
		{`cpu a=1,s="abc`, 1, 11, `unterminated string value for field "s"`},
		{`cpu s="abc\"`, 1, 7, `unterminated string value for field "s"`},
		{`cpu s="a"b`, 1, 10, `expected ',' or ' ' after string value of field "s"`},
		{"ok f=1\n# c\r\nbad f=\"x\nm f=1 2\n", 3, 7, `unterminated string value for field "f"`},
		{"ok f=1\nok f=2\r\n\n  cpu f=1x\n", 4, 9, `invalid float value "1x" for field "f"`},
		{"a s=\"x\ny\",f=1\nb f=\"z\nw\" 1\nbad", 5, 4, "missing fields"},
	}
	var d Decoder
	for _, c := range cases {
		_, bad, errs := decodeAll(t, &d, c.in)
		if bad != 1 || len(errs) != 1 {
			t.Errorf("%q: bad = %d, errs %v; want 1 error", c.in, bad, errs)
			continue
		}
		e := errs[0]
		if e.Line != c.line || e.Col != c.col || e.Msg != c.msg {
			t.Errorf("%q:\n got line %d, column %d: %s\nwant line %d, column %d: %s", c.in, e.Line, e.Col, e.Msg, c.line, c.col, c.msg)
		}
	}
}

func TestLineErrorFormatAndExcerpt(t *testing.T) {
	var d Decoder
	_, _, errs := decodeAll(t, &d, "a f=1\nb f=2\ncpu,host=a used=1.2.3\n")
	want := `line 3, column 17: invalid float value "1.2.3" for field "used" (near "cpu,host=a used=1.2.3")`
	if len(errs) != 1 || errs[0].Error() != want {
		t.Fatalf("errs = %v, want %s", errs, want)
	}
	long := "m," + strings.Repeat("t", 100) + "=v f=oops\r\n"
	_, _, errs = decodeAll(t, &d, long)
	if len(errs) != 1 {
		t.Fatalf("errs = %v", errs)
	}
	if e := errs[0]; len(e.Excerpt) > 64 || !strings.Contains(e.Excerpt, "f=oops") || strings.Contains(e.Excerpt, "\r") {
		t.Errorf("excerpt %q: want <= 64 bytes around the fault", e.Excerpt)
	}
	noEx := &LineError{Line: 2, Col: 1, Msg: "x"}
	if noEx.Error() != "line 2, column 1: x" {
		t.Errorf("Error() = %q", noEx.Error())
	}
}

func TestDecodeKeepsGoodLinesAndCapsErrors(t *testing.T) {
	var sb strings.Builder
	for i := 0; i < 40; i++ {
		if i%2 == 0 {
			fmt.Fprintf(&sb, "good,i=%d f=%di\n", i, i)
		} else {
			fmt.Fprintf(&sb, "bad f=%d.x\n", i)
		}
	}
	var d Decoder
	pts, bad, errs := decodeAll(t, &d, sb.String())
	if len(pts) != 20 || bad != 20 || len(errs) != maxLineErrors {
		t.Fatalf("ok %d bad %d errs %d", len(pts), bad, len(errs))
	}
	for i, p := range pts {
		if !hasTag(p, "i", fmt.Sprint(2*i)) || !hasField(p, I("f", int64(2*i))) {
			t.Errorf("point %d = %+v", i, p)
		}
	}
	for i, e := range errs {
		if e.Line != 2*i+2 || e.Col != 7 {
			t.Errorf("error %d at line %d col %d, want line %d col 7", i, e.Line, e.Col, 2*i+2)
		}
	}
}

func TestDecodeMaxLineBytes(t *testing.T) {
	d := Decoder{MaxLineBytes: 16}
	in := "a f=1\nm,host=abcdefgh f=1\nb f=2\nc s=\"0123456789\n0123456789\"\nd f=3"
	pts, bad, errs := decodeAll(t, &d, in)
	if len(pts) != 3 || pts[0].M != "a" || pts[1].M != "b" || pts[2].M != "d" || bad != 3 {
		t.Fatalf("points %+v bad %d errs %v", pts, bad, errs)
	}
	if e := errs[0]; e.Line != 2 || e.Col != 17 || e.Msg != "line too long (19 bytes, limit 16)" {
		t.Errorf("first error %v", e)
	}
	if e := errs[1]; e.Line != 4 || e.Col != 5 || !strings.Contains(e.Msg, "unterminated string") {
		t.Errorf("second error %v", e)
	}
	if e := errs[2]; e.Line != 5 || e.Col != 12 || e.Msg != "missing fields" {
		t.Errorf("third error (the string's second line) %v", e)
	}
	var big Decoder // default limit 64 KiB
	if _, bad, _ := decodeAll(t, &big, "m s=\""+strings.Repeat("x", 70000)+"\"\n"); bad != 1 {
		t.Errorf("a 70 kB line was not refused by default")
	}
}

func TestPointViewHelpers(t *testing.T) {
	var d Decoder
	var tag, missing []byte
	var found, foundMissing bool
	var nums []float64
	var strOK bool
	d.Decode([]byte(`m,host=web-1,zone=a f=1.5,i=-2i,u=3u,b=true,c=false,s="x"`), func(p *PointView) {
		tag, found = p.Tag("zone")
		tag = append([]byte(nil), tag...)
		missing, foundMissing = p.Tag("nope")
		for i := range p.Fields {
			if v, ok := p.Fields[i].Number(); ok {
				nums = append(nums, v)
			} else {
				strOK = p.Fields[i].Kind == FieldString
			}
		}
	})
	if !found || string(tag) != "a" || foundMissing || missing != nil {
		t.Errorf("Tag: %q %v, missing %q %v", tag, found, missing, foundMissing)
	}
	if !reflect.DeepEqual(nums, []float64{1.5, -2, 3, 1, 0}) || !strOK {
		t.Errorf("Number: %v, string refused: %v", nums, strOK)
	}
	if FieldUint.String() != "unsigned" || FieldKind(9).String() != "FieldKind(9)" {
		t.Errorf("FieldKind.String: %s %s", FieldUint, FieldKind(9))
	}
}

// telegrafSample is what a stock Telegraf writes with data_format = "influx".
const telegrafSample = `cpu,cpu=cpu-total,host=gpu-node-7 usage_guest=0,usage_idle=91.75257731958763,usage_iowait=0.25773195876288657,usage_system=2.3195876288659796,usage_user=5.670103092783505 1700000000000000000
mem,host=gpu-node-7 active=3163160576i,available=12838576128i,available_percent=76.13,total=16863920128i,used_percent=20.45 1700000000000000000
disk,device=nvme0n1p2,fstype=ext4,host=gpu-node-7,mode=rw,path=/ free=102400000000i,inodes_used=1234567i,total=512000000000i,used=409600000000i,used_percent=80.00000000000001 1700000000000000000
system,host=gpu-node-7 load1=1.25,load15=0.8,load5=1.02,n_cpus=16i,n_users=2i 1700000000000000000
system,host=gpu-node-7 uptime_format="12 days,  3:04" 1700000000000000000
net,host=gpu-node-7,interface=eth0 bytes_recv=9876543210u,bytes_sent=1234567890u,drop_in=0u,err_in=0u 1700000000000000000
procstat,exe=python3,host=gpu-node-7,pattern=serve\ model,process_name=python3,user=svc cpu_usage=87.5,memory_rss=4294967296i,pid=4242i,running=true 1700000000000000000
win_services,display_name=Print\ Spooler,host=WIN-1,service_name=Spooler startup_mode=2i,state=4i 1700000000000000000
exec,host=gpu-node-7,path=C:\Program\ Files\probe.exe message="said \"ok\", path C:\\tmp",code=0i 1700000000000000000
nvidia_smi,host=gpu-node-7,index=0,name=Tesla\ T4,pstate=P0 temperature_gpu=71i,utilization_gpu=98i,memory_used=14200i,power_draw=68.2 1700000000000000000
`

func TestDecodeTelegrafSample(t *testing.T) {
	var d Decoder
	pts, bad, errs := decodeAll(t, &d, telegrafSample)
	if bad != 0 || len(pts) != 10 {
		t.Fatalf("ok %d bad %d: %v", len(pts), bad, errs)
	}
	checks := []struct {
		i         int
		m, tk, tv string
		fk        string
		want      Field
	}{
		{0, "cpu", "cpu", "cpu-total", "usage_idle", F("usage_idle", 91.75257731958763)},
		{1, "mem", "host", "gpu-node-7", "total", I("total", 16863920128)},
		{2, "disk", "path", "/", "used_percent", F("used_percent", 80.00000000000001)},
		{4, "system", "host", "gpu-node-7", "uptime_format", S("uptime_format", "12 days,  3:04")},
		{5, "net", "interface", "eth0", "bytes_recv", U("bytes_recv", 9876543210)},
		{6, "procstat", "pattern", "serve model", "running", B("running", true)},
		{7, "win_services", "display_name", "Print Spooler", "state", I("state", 4)},
		{8, "exec", "path", `C:\Program Files\probe.exe`, "message", S("message", `said "ok", path C:\tmp`)},
		{9, "nvidia_smi", "name", "Tesla T4", "power_draw", F("power_draw", 68.2)},
	}
	for _, c := range checks {
		p := pts[c.i]
		if p.M != c.m || p.Time != 1700000000000000000 || !p.HasTime {
			t.Errorf("line %d: %+v", c.i+1, p)
		}
		if !hasTag(p, c.tk, c.tv) {
			t.Errorf("line %d: no tag %s=%q in %+v", c.i+1, c.tk, c.tv, p.Tags)
		}
		if !hasField(p, c.want) {
			t.Errorf("line %d: no field %+v in %+v", c.i+1, c.want, p.Fields)
		}
	}
}

func hasTag(p point, k, v string) bool {
	for _, t := range p.Tags {
		if t.Key == k && t.Value == v {
			return true
		}
	}
	return false
}

func hasField(p point, want Field) bool {
	for _, f := range p.Fields {
		if f == want {
			return true
		}
	}
	return false
}

// TestParseFloatMatchesStrconv checks the float syntax against its grammar
// and the values against strconv, on random and constructed tokens.
func TestParseFloatMatchesStrconv(t *testing.T) {
	grammar := regexp.MustCompile(`^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`)
	rng := rand.New(rand.NewPCG(5, 6))
	var tokens []string
	for i := 0; i < 50000; i++ {
		var sb strings.Builder
		for n := 1 + rng.IntN(24); n > 0; n-- {
			const chars = "0123456789012345678901234567.-+eE"
			sb.WriteByte(chars[rng.IntN(len(chars))])
		}
		tokens = append(tokens, sb.String())
		tokens = append(tokens, strconv.FormatFloat(math.Float64frombits(rng.Uint64()), "ge"[rng.IntN(2)], rng.IntN(20)-1, 64))
		tokens = append(tokens, fmt.Sprintf("%d.%de%d", rng.Int64N(1e17), rng.Int64N(1e6), rng.IntN(60)-30))
	}
	tokens = append(tokens, "9007199254740993", "9007199254740992.0", "0.1", "1e22", "1e23", "123456789012345678901234567890",
		"0.000000000000000000000000000001", "1e-400", "-1e400", "4.9e-324", "2.2250738585072011e-308", "-0.0")
	for _, s := range tokens {
		got, ok := parseFloat([]byte(s))
		if ok != grammar.MatchString(s) {
			t.Fatalf("parseFloat(%q) ok = %v, grammar says %v", s, ok, !ok)
		}
		if !ok {
			continue
		}
		want, _ := strconv.ParseFloat(s, 64)
		if math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("parseFloat(%q) = %v, strconv %v", s, got, want)
		}
	}
}
