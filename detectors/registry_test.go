package detectors

import (
	"errors"
	"slices"
	"testing"
)

func TestRegistryBuiltins(t *testing.T) {
	d, err := NewDetector("ewma")
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := d.(*EWMA); !ok || e.cfg != DefaultEWMAConfig() {
		t.Errorf("NewDetector(ewma) = %#v, want *EWMA with the default config", d)
	}
	f, err := NewForecaster("trend")
	if err != nil {
		t.Fatal(err)
	}
	if tr, ok := f.(*Trend); !ok || tr.cfg != DefaultTrendConfig() {
		t.Errorf("NewForecaster(trend) = %#v, want *Trend with the default config", f)
	}
	if d2, _ := NewDetector("ewma"); d2 == d {
		t.Error("NewDetector returned the same instance twice")
	}
	if names := DetectorNames(); !slices.Contains(names, "ewma") || !slices.IsSorted(names) {
		t.Errorf("DetectorNames() = %v", names)
	}
	if names := ForecasterNames(); !slices.Contains(names, "trend") || !slices.IsSorted(names) {
		t.Errorf("ForecasterNames() = %v", names)
	}
}

func TestRegistryUnknown(t *testing.T) {
	if d, err := NewDetector("nope"); d != nil || !errors.Is(err, ErrUnknown) {
		t.Errorf("NewDetector(nope) = %v, %v; want nil, ErrUnknown", d, err)
	}
	if f, err := NewForecaster("ewma"); f != nil || !errors.Is(err, ErrUnknown) {
		t.Errorf("NewForecaster(ewma) = %v, %v; want nil, ErrUnknown", f, err)
	}
}

func TestRegisterPanics(t *testing.T) {
	newEWMA := func() Detector { return NewEWMA(DefaultEWMAConfig()) }
	newTrend := func() Forecaster { return NewTrend(DefaultTrendConfig()) }
	if !slices.Contains(DetectorNames(), "test-registry-extra") { // -count 2 runs this again
		RegisterDetector("test-registry-extra", newEWMA)
	}
	if _, err := NewDetector("test-registry-extra"); err != nil {
		t.Errorf("registered detector not found: %v", err)
	}
	cases := map[string]func(){
		"duplicate detector":   func() { RegisterDetector("ewma", newEWMA) },
		"duplicate forecaster": func() { RegisterForecaster("trend", newTrend) },
		"empty detector name":  func() { RegisterDetector("", newEWMA) },
		"empty forecaster":     func() { RegisterForecaster("", newTrend) },
		"nil detector":         func() { RegisterDetector("test-nil", nil) },
		"nil forecaster":       func() { RegisterForecaster("test-nil", nil) },
	}
	for name, register := range cases {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			register()
		}()
	}
	if slices.Contains(DetectorNames(), "test-nil") || slices.Contains(ForecasterNames(), "test-nil") {
		t.Error("a nil factory was registered")
	}
}
