package main

import (
	"fmt"
	"io"
)

const benchUsage = `Usage:
  vigil bench nab --data DIR --out DIR [--detector NAME]   stream NAB series through a detector
  vigil bench nab score --results DIR --labels FILE [--json] [--detail PROFILE]
                                                             score results the NAB way
  vigil bench forecast [--json]                            seeded failure scenarios: lead time, false alarms
  vigil bench e2e [--duration D] [--hosts N] [--rate S] [--detector D] [--json]  controller end to end over NATS: samples/s, latency
`

func cmdBench(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, benchUsage)
		return 2
	}
	switch args[0] {
	case "nab":
		return cmdBenchNAB(args[1:], stdout, stderr)
	case "forecast":
		return cmdBenchForecast(args[1:], stdout, stderr)
	case "e2e":
		return cmdBenchE2E(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, benchUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "vigil bench: unknown benchmark %q\n%s", args[0], benchUsage)
		return 2
	}
}
