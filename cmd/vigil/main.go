// Command vigil is Vigil's operator tool: the local demo, rule checks and
// controller status.
package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/vigil-sre/vigil/internal/version"
)

const mainUsage = `vigil — predict failures of AI services and act before the outage.

Usage:
  vigil demo [--duration D] [--json]   run everything in-process on embedded defaults
  vigil demo-model [--listen ADDR] [--name NAME]   a stand-in model server (docker-compose failover demo)
  vigil rules check FILE|DIR...        validate rule files; every problem as file:line:col
  vigil rules test FILE|DIR...         run rule unit tests
  vigil status [--api URL]             hosts and rule states of a running controller
  vigil actions [--api URL]            recent actions and their state
  vigil approve KEY | vigil deny KEY   decide on an action of a rule in manual mode
  vigil failover SERVICE [--to MEMBER] fail a service over now (--list: routes)
  vigil bench nab|forecast|e2e ...     detector, forecast and end-to-end benchmarks
  vigil rollback --root DIR [--to V] [--dry-run] NAME [-- RESTART...]  roll a release back
  vigil releases --root DIR NAME       versions, current, last-known-good, health
  vigil backup init|run|list|verify|forget|prune|copy|key ...   backups in a repository path
  vigil restore --repo R --snapshot ID --target DIR [--path P]...  restore all or part of a snapshot
  vigil version

Run "vigil <command> -h" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, mainUsage)
		return 2
	}
	switch args[0] {
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "demo-backup": // the demo's backup action, run by the controller
		return cmdDemoBackup(args[1:], stdout, stderr)
	case "demo-model": // the docker-compose demo's model server
		return cmdDemoModel(args[1:], stdout, stderr)
	case "rules":
		return cmdRules(args[1:], stdout, stderr)
	case "status":
		return cmdStatus(args[1:], stdout, stderr)
	case "actions":
		return cmdActions(args[1:], stdout, stderr)
	case "failover":
		return cmdFailover(args[1:], stdout, stderr)
	case "approve":
		return cmdDecide(true, args[1:], stdout, stderr)
	case "deny":
		return cmdDecide(false, args[1:], stdout, stderr)
	case "bench":
		return cmdBench(args[1:], stdout, stderr)
	case "rollback":
		return cmdRollback(args[1:], stdout, stderr)
	case "releases":
		return cmdReleases(args[1:], stdout, stderr)
	case "backup":
		return cmdBackup(args[1:], stdout, stderr)
	case "restore":
		return cmdRestore(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "vigil", version.String())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, mainUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "vigil: unknown command %q\n\n%s", args[0], mainUsage)
		return 2
	}
}

func nowStamp() string { return time.Now().UTC().Format("20060102T150405.000Z") }
