package detectors

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// ErrUnknown is wrapped by NewDetector and NewForecaster when no constructor has the given name.
var ErrUnknown = errors.New("unknown name")

var registry = struct {
	sync.RWMutex
	detectors   map[string]func() Detector
	forecasters map[string]func() Forecaster
}{
	detectors:   map[string]func() Detector{},
	forecasters: map[string]func() Forecaster{},
}

// RegisterDetector makes a detector constructor available to NewDetector under name. It is
// meant to be called from init functions and panics if name is empty, factory is nil or the name
// is already taken.
func RegisterDetector(name string, factory func() Detector) {
	registry.Lock()
	defer registry.Unlock()
	mustRegister(registry.detectors, "detector", name, factory, factory == nil)
}

// RegisterForecaster makes a forecaster constructor available to NewForecaster under name. It
// panics if name is empty, factory is nil or the name is already taken.
func RegisterForecaster(name string, factory func() Forecaster) {
	registry.Lock()
	defer registry.Unlock()
	mustRegister(registry.forecasters, "forecaster", name, factory, factory == nil)
}

func mustRegister[F any](m map[string]F, kind, name string, factory F, isNil bool) {
	if name == "" {
		panic("detectors: Register" + kind + " with an empty name")
	}
	if isNil {
		panic(fmt.Sprintf("detectors: Register%s(%q) with a nil factory", kind, name))
	}
	if _, dup := m[name]; dup {
		panic(fmt.Sprintf("detectors: %s %q registered twice", kind, name))
	}
	m[name] = factory
}

// NewDetector returns a new detector with its default configuration, e.g. "ewma". The error
// wraps ErrUnknown when no detector has that name.
func NewDetector(name string) (Detector, error) {
	registry.RLock()
	f, ok := registry.detectors[name]
	registry.RUnlock()
	if !ok {
		return nil, fmt.Errorf("detectors: detector %q (known: %s): %w",
			name, strings.Join(DetectorNames(), ", "), ErrUnknown)
	}
	return f(), nil
}

// NewForecaster returns a new forecaster with its default configuration, e.g. "trend". The
// error wraps ErrUnknown when no forecaster has that name.
func NewForecaster(name string) (Forecaster, error) {
	registry.RLock()
	f, ok := registry.forecasters[name]
	registry.RUnlock()
	if !ok {
		return nil, fmt.Errorf("detectors: forecaster %q (known: %s): %w",
			name, strings.Join(ForecasterNames(), ", "), ErrUnknown)
	}
	return f(), nil
}

// DetectorNames returns the registered detector names, sorted.
func DetectorNames() []string {
	registry.RLock()
	defer registry.RUnlock()
	return sortedKeys(registry.detectors)
}

// ForecasterNames returns the registered forecaster names, sorted.
func ForecasterNames() []string {
	registry.RLock()
	defer registry.RUnlock()
	return sortedKeys(registry.forecasters)
}

func sortedKeys[F any](m map[string]F) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
