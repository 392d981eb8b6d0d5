package rules

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// eta_within passes the group's min_confidence and the horizon to the Source, answers its
// ETA when it is within the horizon and Never otherwise, records both under their keys and
// makes the earliest finite answer the intent's PredictedFailure.
func TestETAWithin(t *testing.T) {
	src := newFake("h1")
	src.withins["h1|disk.used_percent{path=/data}|100|2h0m0s"] = 25 * time.Minute
	src.withins["h1|mem.used_percent|95|1h0m0s"] = Never
	src.withins["h1|gpu.temperature_c|90|30m0s"] = 45 * time.Minute // beyond the horizon: a Source's slip
	src.withins["h1|sensors.temp_c|90|30m0s"] = -5 * time.Second    // already there
	expr := `eta_within("disk.used_percent{path=/data}", 100, duration("2h")) < duration("30m")` +
		` && eta_within("mem.used_percent", 95, duration("1h")) == duration("2562047h47m16.854775807s")` +
		` && eta_within("gpu.temperature_c", 90, duration("30m")) > duration("1000h")` +
		` && eta_within("sensors.temp_c", 90, duration("30m")) == duration("0s")`
	file := strings.Replace(oneRule(expr, "action: {kind: exec, program: tar}",
		"annotations: {summary: 'full in {{ humanizeDuration .Values.eta_within }}'}"),
		"interval: 10s", "interval: 10s\n    min_confidence: 0.7", 1)
	trans, intents, _ := evalOnce(t, file, src)
	if len(trans) != 1 || trans[0].To != Firing || len(intents) != 1 {
		t.Fatalf("transitions %+v intents %+v (calls %v)", trans, intents, src.calls)
	}
	want := map[string]float64{
		"eta_within:disk.used_percent{path=/data}:100:2h": 1500,
		"eta_within:mem.used_percent:95:1h":               -1,
		"eta_within:gpu.temperature_c:90:30m":             -1,
		"eta_within:sensors.temp_c:90:30m":                0,
	}
	if !reflect.DeepEqual(trans[0].Values, want) {
		t.Errorf("values %v\nwant   %v", trans[0].Values, want)
	}
	in := intents[0]
	if !in.PredictedFailure.Equal(t0) { // the 0 of sensors.temp_c is the earliest
		t.Errorf("predicted failure %v, want %v", in.PredictedFailure, t0)
	}
	if got := in.Annotations["summary"]; got != "full in 25m" {
		t.Errorf("summary %q (.Values.eta_within is the first call's)", got)
	}
	wantCalls := "ETAWithin(h1,disk.used_percent{path=/data},100,2h0m0s,0.7,12:00:00) " +
		"ETAWithin(h1,mem.used_percent,95,1h0m0s,0.7,12:00:00) " +
		"ETAWithin(h1,gpu.temperature_c,90,30m0s,0.7,12:00:00) " +
		"ETAWithin(h1,sensors.temp_c,90,30m0s,0.7,12:00:00)"
	if got := strings.Join(src.calls, " "); got != wantCalls {
		t.Errorf("calls %s\nwant  %s", got, wantCalls)
	}
}

// The default min_confidence (0.8) is passed; an answer of Never keeps the rule inactive; no
// data makes it nodata and names the call.
func TestETAWithinNeverAndNoData(t *testing.T) {
	src := newFake("h1")
	src.withins["h1|disk.used_percent|100|2h0m0s"] = Never
	_, _, e := evalOnce(t, oneRule(`eta_within("disk.used_percent", 100, duration("2h")) <= duration("2h")`), src)
	if st := e.States()[0]; st.State != Inactive || !st.PredictedFailure.IsZero() ||
		!reflect.DeepEqual(st.Values, map[string]float64{"eta_within:disk.used_percent:100:2h": -1}) {
		t.Errorf("status %+v", st)
	}
	if want := "ETAWithin(h1,disk.used_percent,100,2h0m0s,0.8,12:00:00)"; len(src.calls) != 1 || src.calls[0] != want {
		t.Errorf("calls %v, want %s", src.calls, want)
	}

	src = newFake("h1")
	trans, _, _ := evalOnce(t, oneRule(`eta_within("disk.used_percent", 100, duration("90m")) < duration("1h")`), src)
	if len(trans) != 1 || trans[0].To != NoData || trans[0].Err.Error() != "no data: eta_within:disk.used_percent:100:1h30m" {
		t.Errorf("transitions %+v", trans)
	}
}
