package main

import (
	"fmt"
	"io"
)

// cmdRulesTest is not written yet; it is being built.
func cmdRulesTest(_ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "vigil: not available yet")
	return 2
}
