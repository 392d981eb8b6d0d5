package main

import (
	"fmt"
	"io"
)

// cmdBenchForecast is not written yet; it is being built.
func cmdBenchForecast(_ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "vigil: not available yet")
	return 2
}
