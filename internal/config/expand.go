package config

import (
	"fmt"
	"os"
	"regexp"

	"gopkg.in/yaml.v3"
)

// Expand is a string in which `${VAR}` is replaced by the environment
// variable VAR when the file is decoded. Use it only for secrets and
// endpoints; an unset variable is an error naming it.
type Expand string

var envRe = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// UnmarshalYAML implements yaml.Unmarshaler.
func (e *Expand) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	var missing string
	out := envRe.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		v, ok := os.LookupEnv(name)
		if !ok && missing == "" {
			missing = name
		}
		return v
	})
	if missing != "" {
		return fmt.Errorf("line %d:%d: environment variable %s is not set", n.Line, n.Column, missing)
	}
	*e = Expand(out)
	return nil
}

// String returns the expanded value.
func (e Expand) String() string { return string(e) }
