package rules

import (
	"regexp"
	"sort"
	"sync"
)

// Action kinds a rule file may name. "exec" is built in (program, args);
// the controller registers the kinds it implements, with a check of their
// params, so that `vigil rules check` catches a typo before deploy.
var (
	kindsMu     sync.RWMutex
	actionKinds = map[string]func(params map[string]string) error{"exec": nil}
)

var kindRe = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// RegisterActionKind makes kind valid in rule files; validate (may be nil)
// checks an action's params. It panics on a bad or duplicate name.
func RegisterActionKind(kind string, validate func(params map[string]string) error) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	if !kindRe.MatchString(kind) {
		panic("rules: bad action kind name " + kind)
	}
	if _, dup := actionKinds[kind]; dup {
		panic("rules: action kind registered twice: " + kind)
	}
	actionKinds[kind] = validate
}

// ActionKinds are the registered action kinds, sorted.
func ActionKinds() []string {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	out := make([]string, 0, len(actionKinds))
	for k := range actionKinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func validateParams(kind string, params map[string]string) error {
	kindsMu.RLock()
	v := actionKinds[kind]
	kindsMu.RUnlock()
	if v == nil {
		return nil
	}
	return v(params)
}
