package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/vigil-sre/vigil/internal/release"
)

const rollbackUsage = `usage: vigil rollback --root DIR [--to VERSION] [--dry-run] [--health-url URL]
                      [--health-retries N] [--on-failure stay|revert] NAME [-- RESTART_PROGRAM ARGS...]

Switches NAME's current version to its last-known-good (or --to), runs the
restart program (no shell) when given after --, verifies health with
--health-url (GET, 2xx), and records the outcome in the registry.
Exit 0: rolled back (verified, or unverified without --health-url) or dry run;
1: the rollback ran and failed (restart or verification); 2: usage;
3: refused (no last-known-good, already current, unknown version, busy).
`

// cmdRollback is `vigil rollback`.
func cmdRollback(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rollback", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, rollbackUsage); fs.PrintDefaults() }
	root := fs.String("root", "", "release registry root directory (required)")
	to := fs.String("to", "", "version to roll back to (default: the last-known-good)")
	dry := fs.Bool("dry-run", false, "show what would happen, change nothing")
	url := fs.String("health-url", "", "verify health with a GET of this URL after the restart")
	retries := fs.Int("health-retries", 5, "attempts after a failed health check, 2s apart")
	onFail := fs.String("on-failure", release.OnFailureStay, "after a failed restart or verification: stay or revert")
	name, restart, code := parseReleaseArgs(fs, args, stderr, true)
	if code >= 0 {
		return code
	}
	reg, err := release.Open(*root, name)
	if err != nil {
		fmt.Fprintln(stderr, "vigil rollback:", err)
		return 1
	}
	h := release.Hooks{To: *to, DryRun: *dry, OnFailure: *onFail,
		Progress: func(f float64, msg string) { fmt.Fprintf(stdout, "[%3.0f%%] %s\n", f*100, msg) }}
	if len(restart) > 0 {
		h.Restart = release.Command{Program: restart[0], Args: restart[1:]}.Run
	}
	if *url != "" {
		h.Check = release.HealthCheck{URL: *url, Retries: *retries, Interval: 2 * time.Second}.Check
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := reg.Rollback(ctx, time.Now(), h)
	switch {
	case err == nil && res.Outcome == release.OutcomeDryRun:
		fmt.Fprintf(stdout, "dry run: would roll %s back from %s to %s\n", name, res.From, res.To)
		return 0
	case err == nil:
		fmt.Fprintf(stdout, "%s rolled back from %s to %s: %s in %s\n", name, res.From, res.To, res.Outcome, res.Total.Round(time.Millisecond))
		return 0
	case errors.Is(err, release.ErrRestartFailed) || errors.Is(err, release.ErrVerifyFailed):
		fmt.Fprintf(stderr, "vigil rollback: %v\n", err)
		cur, _ := reg.Current()
		fmt.Fprintf(stderr, "outcome %s; current is now %s (reverted: %v, LKG revoked: %v)\n", res.Outcome, cur, res.Reverted, res.LKGRevoked)
		return 1
	default:
		fmt.Fprintf(stderr, "vigil rollback: refused: %v\n", err)
		return 3
	}
}

// cmdReleases is `vigil releases`: versions, current, LKG, health.
func cmdReleases(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("releases", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: vigil releases --root DIR NAME"); fs.PrintDefaults() }
	root := fs.String("root", "", "release registry root directory (required)")
	name, _, code := parseReleaseArgs(fs, args, stderr, false)
	if code >= 0 {
		return code
	}
	reg, err := release.Open(*root, name)
	if err != nil {
		fmt.Fprintln(stderr, "vigil releases:", err)
		return 1
	}
	st, err := reg.Status()
	if err != nil {
		fmt.Fprintln(stderr, "vigil releases:", err)
		return 1
	}
	fmt.Fprintf(stdout, "release %s: current %s, last-known-good %s, %d rollbacks\n",
		name, orNone(st.Current), orNone(st.LastKnownGood), st.Rollbacks)
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tCURRENT\tLKG\tHEALTH\tLAST SEEN\tHEALTHY SINCE\tACTIVATED")
	for _, v := range st.Versions {
		health := "-"
		if v.Observed {
			health = map[bool]string{true: "healthy", false: "unhealthy"}[v.Healthy]
		}
		if !v.Deployed {
			health += " (removed)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, mark(v.Current), mark(v.LKG), health,
			stamp(v.LastSeen), stamp(v.HealthySince), stamp(v.Activated))
	}
	tw.Flush()
	for _, h := range st.History {
		fmt.Fprintf(stdout, "rollback %s %s -> %s: %s (%.1fs) %s\n", stamp(h.Time), h.From, h.To, h.Outcome, h.DurationSeconds, h.Error)
	}
	return 0
}

// parseReleaseArgs parses flags then NAME, and (when rest) the program
// after "--". code is -1 on success.
func parseReleaseArgs(fs *flag.FlagSet, args []string, stderr io.Writer, rest bool) (name string, tail []string, code int) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", nil, 0
		}
		return "", nil, 2
	}
	pos := fs.Args()
	if len(pos) > 0 && pos[0] != "--" {
		name, pos = pos[0], pos[1:]
		if err := fs.Parse(pos); err != nil { // flags after NAME
			return "", nil, 2
		}
		pos = fs.Args()
	}
	if len(pos) > 0 && pos[0] == "--" {
		pos = pos[1:]
	}
	root := fs.Lookup("root").Value.String()
	if name == "" || root == "" || (len(pos) > 0 && !rest) {
		fs.Usage()
		return "", nil, 2
	}
	return name, pos, -1
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func mark(b bool) string {
	if b {
		return "*"
	}
	return ""
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}
