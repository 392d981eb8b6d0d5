package controller

import (
	"strings"
	"testing"

	"github.com/vigil-sre/vigil/internal/wire"
	"github.com/vigil-sre/vigil/rules"
)

// The store's changes name the subjects of every scope whose series took
// samples in the current pass, and the selectors they match; a new pass
// starts empty.
func TestStoreChanges(t *testing.T) {
	st, dec := testStore(t), &wire.Decoder{}
	feed(t, st, dec, "cpu,host=a,role=gpu usage=1 1000\n"+
		"http,host=b,role=db,service=api up=1 1000\n"+
		"http,host=c,service=web up=1 1000\n")
	st.nextPass()
	ch := storeChanges{st}
	if got := ch.Subjects(rules.ScopeHost); len(got) != 0 {
		t.Fatalf("a new pass starts with changed hosts %v", got)
	}
	feed(t, st, dec, "cpu,host=a,role=gpu usage=2 2000\nhttp,host=b,role=db,service=api up=0 2000\n")
	feed(t, st, dec, "http,host=c,service=web up=0 500\n") // out of order: not a change
	for scope, want := range map[string]string{
		rules.ScopeHost: "a b", rules.ScopeFleet: "db gpu", rules.ScopeService: "api", rules.ScopeModel: "",
	} {
		if got := strings.Join(ch.Subjects(scope), " "); got != want {
			t.Errorf("changed subjects of scope %s: %q, want %q", scope, got, want)
		}
	}
	sel := func(s string) *rules.Selector {
		x, err := rules.ParseSelector(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	cpu, up, mem := sel("cpu.usage"), sel("http.up"), sel("mem.used")
	for _, c := range []struct {
		scope, subject string
		sel            *rules.Selector
		want           bool
	}{
		{rules.ScopeHost, "a", cpu, true},
		{rules.ScopeHost, "a", up, false},
		{rules.ScopeHost, "b", up, true},
		{rules.ScopeHost, "c", up, false}, // no sample in this pass
		{rules.ScopeHost, "z", up, false}, // unknown
		{rules.ScopeHost, "a", mem, false},
		{rules.ScopeService, "api", up, true},
		{rules.ScopeService, "web", up, false},
		{rules.ScopeFleet, "gpu", cpu, true},
		{rules.ScopeFleet, "gpu", up, false},
		{rules.ScopeFleet, "db", up, true},
	} {
		if got := ch.Changed(c.scope, c.subject, c.sel); got != c.want {
			t.Errorf("Changed(%s, %s, %s) = %v", c.scope, c.subject, c.sel, got)
		}
	}
	st.nextPass()
	if got := ch.Subjects(rules.ScopeHost); len(got) != 0 || ch.Changed(rules.ScopeHost, "a", cpu) {
		t.Errorf("after nextPass: changed hosts %v", got)
	}
}
