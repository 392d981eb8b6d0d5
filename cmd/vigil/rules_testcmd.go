package main

import (
	"fmt"
	"io"

	"github.com/vigil-sre/vigil/rules/ruletest"
)

// cmdRulesTest runs rule unit tests (see package ruletest): every failed
// check is printed with what was expected and what the engine did; the
// exit code is 1 if any check failed or a file could not be run, 2 on
// usage errors.
func cmdRulesTest(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, rulesUsage)
		return 2
	}
	files, err := ruletest.Expand(args...)
	if err != nil {
		fmt.Fprintf(stderr, "vigil rules test: %v\n", err)
		return 1
	}
	if len(files) == 0 {
		fmt.Fprintf(stderr, "vigil rules test: no *_test.yaml files in %v\n", args)
		return 1
	}
	code, tests, failed, failedTests := 0, 0, 0, 0
	for _, f := range files {
		res, err := ruletest.RunFile(f)
		if err != nil {
			for _, e := range flatten(err) {
				fmt.Fprintln(stderr, e)
			}
			code = 1
			continue
		}
		tests += res.Tests
		failedTests += res.FailedTests
		for _, msg := range res.Failures {
			fmt.Fprintln(stderr, "FAIL", msg)
		}
		if len(res.Failures) > 0 {
			failed += len(res.Failures)
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "ok   %s (%d tests)\n", f, res.Tests)
	}
	// The last line has the plain "N passed, N failed" form CI systems read.
	if code == 0 {
		fmt.Fprintf(stdout, "%d tests in %d files\nPASS: %d passed, 0 failed\n", tests, len(files), tests)
	} else {
		fmt.Fprintf(stderr, "%d failed checks in %d files\nFAIL: %d passed, %d failed\n", failed, len(files), tests-failedTests, failedTests)
	}
	return code
}
