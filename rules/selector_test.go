package rules

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseSelector(t *testing.T) {
	cases := []struct {
		in               string
		measurement, fld string
		tags             []Tag
		canonical        string
		errOffset        int // -1: valid
	}{
		{in: "mem.used_percent", measurement: "mem", fld: "used_percent", canonical: "mem.used_percent", errOffset: -1},
		{in: "disk.used_percent{path=/data}", measurement: "disk", fld: "used_percent",
			tags: []Tag{{"path", "/data"}}, canonical: "disk.used_percent{path=/data}", errOffset: -1},
		{in: "cpu.usage_idle{cpu=cpu-total}", measurement: "cpu", fld: "usage_idle",
			tags: []Tag{{"cpu", "cpu-total"}}, canonical: "cpu.usage_idle{cpu=cpu-total}", errOffset: -1},
		{in: "disk.used_percent{ path = /data , device=sda1 }", measurement: "disk", fld: "used_percent",
			tags: []Tag{{"device", "sda1"}, {"path", "/data"}}, canonical: "disk.used_percent{device=sda1,path=/data}", errOffset: -1},
		{in: `net.bytes_recv{interface="eth 0, \"x\"",b=1}`, measurement: "net", fld: "bytes_recv",
			tags: []Tag{{"b", "1"}, {"interface", `eth 0, "x"`}}, canonical: `net.bytes_recv{b=1,interface="eth 0, \"x\""}`, errOffset: -1},
		{in: `gpu.temp{uuid=""}`, measurement: "gpu", fld: "temp", tags: []Tag{{"uuid", ""}},
			canonical: `gpu.temp{uuid=""}`, errOffset: -1},
		{in: "model.drift.psi{model=llama-3}", measurement: "model", fld: "drift.psi",
			tags: []Tag{{"model", "llama-3"}}, canonical: "model.drift.psi{model=llama-3}", errOffset: -1},
		{in: "a.b{}", measurement: "a", fld: "b", canonical: "a.b", errOffset: -1},
		{in: "temp.ü{k=é}", errOffset: 5},
		{in: "a.b{k=é}", measurement: "a", fld: "b", tags: []Tag{{"k", "é"}}, canonical: "a.b{k=é}", errOffset: -1},
		{in: "", errOffset: 0},
		{in: "mem", errOffset: 3},
		{in: "mem.", errOffset: 4},
		{in: ".used", errOffset: 0},
		{in: "mem used", errOffset: 3},
		{in: "a.b{", errOffset: 4},
		{in: "a.b{k}", errOffset: 5},
		{in: "a.b{k=}", errOffset: 6},
		{in: "a.b{k=v", errOffset: 7},
		{in: "a.b{k=v,}", errOffset: 8},
		{in: "a.b{k=v;x=y}", errOffset: 9}, // ; is part of the bare value "v;x"
		{in: "a.b{k=v,k=w}", errOffset: 8},
		{in: `a.b{k="v}`, errOffset: 9},
		{in: `a.b{k="v\n"}`, errOffset: 8},
		{in: "a.b{k=v} x", errOffset: 8},
		{in: "é.b", errOffset: 0},
	}
	for _, c := range cases {
		sel, err := ParseSelector(c.in)
		if c.errOffset >= 0 {
			var se *SelectorError
			if !errors.As(err, &se) {
				t.Errorf("ParseSelector(%q) = %+v, %v; want an error at %d", c.in, sel, err, c.errOffset)
			} else if se.Offset != c.errOffset {
				t.Errorf("ParseSelector(%q): error %q at %d, want at %d", c.in, se.Msg, se.Offset, c.errOffset)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSelector(%q): %v", c.in, err)
			continue
		}
		want := &Selector{Text: c.in, Measurement: c.measurement, Field: c.fld, Tags: c.tags}
		if !reflect.DeepEqual(sel, want) {
			t.Errorf("ParseSelector(%q) = %+v, want %+v", c.in, sel, want)
		}
		if got := sel.String(); got != c.canonical {
			t.Errorf("%q.String() = %q, want %q", c.in, got, c.canonical)
		}
		again, err := ParseSelector(sel.String())
		if err != nil || !reflect.DeepEqual(again.Tags, sel.Tags) || again.Field != sel.Field {
			t.Errorf("canonical form %q does not parse back: %+v %v", sel.String(), again, err)
		}
	}
}

func TestSelectorMatch(t *testing.T) {
	tags := func(kv ...string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1], true
				}
			}
			return "", false
		}
	}
	cases := []struct {
		sel, measurement, field string
		tags                    func(string) (string, bool)
		want                    bool
	}{
		{"mem.used_percent", "mem", "used_percent", tags("host", "a"), true},
		{"mem.used_percent", "mem", "used", tags(), false},
		{"mem.used_percent", "memory", "used_percent", tags(), false},
		{"disk.used_percent{path=/data}", "disk", "used_percent", tags("path", "/data", "device", "sdb"), true},
		{"disk.used_percent{path=/data}", "disk", "used_percent", tags("path", "/"), false},
		{"disk.used_percent{path=/data}", "disk", "used_percent", tags("device", "sdb"), false},
		{"disk.used_percent{path=/data,device=sdb}", "disk", "used_percent", tags("path", "/data", "device", "sdb"), true},
		{"disk.used_percent{path=/data,device=sdb}", "disk", "used_percent", tags("path", "/data", "device", "sda"), false},
		{`gpu.temp{uuid=""}`, "gpu", "temp", tags("host", "a"), true},
		{`gpu.temp{uuid=""}`, "gpu", "temp", tags("uuid", "GPU-1"), false},
	}
	for _, c := range cases {
		sel, err := ParseSelector(c.sel)
		if err != nil {
			t.Fatal(err)
		}
		if got := sel.Match(c.measurement, c.field, c.tags); got != c.want {
			t.Errorf("%s.Match(%s, %s) = %v, want %v", c.sel, c.measurement, c.field, got, c.want)
		}
	}
}
