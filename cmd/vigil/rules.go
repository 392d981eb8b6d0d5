package main

import (
	"fmt"
	"io"

	"github.com/vigil-sre/vigil/rules"
)

const rulesUsage = `Usage:
  vigil rules check FILE|DIR...   validate rule files (a directory: its *.yaml and *.yml files);
                                  prints every problem as file:line:col and exits 1 if any
  vigil rules test FILE|DIR...    run rule unit tests
`

func cmdRules(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, rulesUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch args[0] {
	case "check":
		if len(args) < 2 {
			fmt.Fprint(stderr, rulesUsage)
			return 2
		}
		set, err := rules.LoadFiles(args[1:]...)
		if err != nil {
			var n int
			for _, e := range flatten(err) {
				fmt.Fprintln(stderr, e)
				n++
			}
			fmt.Fprintf(stderr, "%d problem(s)\n", n)
			return 1
		}
		fmt.Fprintf(stdout, "ok: %d rules\n", len(set.Rules()))
		return 0
	case "test":
		return cmdRulesTest(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "vigil rules: unknown subcommand %q\n%s", args[0], rulesUsage)
		return 2
	}
}

// flatten splits a joined error into its parts.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
