package main

import (
	"fmt"
	"io"
)

// cmdBenchNAB is not written yet; it is being built.
func cmdBenchNAB(_ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "vigil: not available yet")
	return 2
}
