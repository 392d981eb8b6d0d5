package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/vigil-sre/vigil/internal/backup"
)

const backupUsage = `Usage:
  vigil backup init REPO
  vigil backup run --repo REPO [--kind full|incremental|differential] [--name NAME] [--verify] PATH...
  vigil backup list --repo REPO [--json]
  vigil backup verify --repo REPO [ID...]            (default: every snapshot)
  vigil backup forget --repo REPO [--name NAME] --keep-last N [--keep-hourly N] [--keep-daily N]
                      [--keep-weekly N] [--keep-monthly N] [--prune] [--dry-run]
  vigil backup prune --repo REPO
  vigil backup copy --repo REPO --to REPO2 [ID...]    (default: every snapshot)
  vigil restore --repo REPO --snapshot ID --target DIR [--path P]...
`

// multiFlag collects a repeated string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// cmdBackup is `vigil backup ...`, working directly on a repository path.
func cmdBackup(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, backupUsage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sub, args := args[0], args[1:]
	var err error
	switch sub {
	case "init":
		if len(args) != 1 {
			fmt.Fprint(stderr, backupUsage)
			return 2
		}
		if _, err = backup.Init(args[0]); err == nil {
			fmt.Fprintf(stdout, "initialised backup repository %s\n", args[0])
		}
	case "run":
		return backupRun(ctx, args, stdout, stderr)
	case "list":
		return backupList(args, stdout, stderr)
	case "verify":
		return backupVerify(ctx, args, stdout, stderr)
	case "forget":
		return backupForget(ctx, args, stdout, stderr)
	case "prune":
		return backupPrune(ctx, args, stdout, stderr)
	case "copy":
		return backupCopy(ctx, args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, backupUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "vigil backup: unknown command %q\n\n%s", sub, backupUsage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "vigil backup:", err)
		return 1
	}
	return 0
}

// repoFlags parses args with a --repo flag and opens the repository.
func repoFlags(name string, args []string, stderr io.Writer, define func(*flag.FlagSet)) (*backup.Repo, *flag.FlagSet, int) {
	fs := flag.NewFlagSet("vigil "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("repo", os.Getenv("VIGIL_BACKUP_REPO"), "repository path (env VIGIL_BACKUP_REPO)")
	if define != nil {
		define(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, flagExit(err)
	}
	if *repo == "" {
		fmt.Fprintf(stderr, "vigil %s: --repo is required\n\n%s", name, backupUsage)
		return nil, nil, 2
	}
	r, err := backup.Open(*repo)
	if err != nil {
		fmt.Fprintf(stderr, "vigil %s: %v\n", name, err)
		return nil, nil, 1
	}
	return r, fs, 0
}

func backupRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var kind, name string
	var verify, quiet bool
	r, fs, code := repoFlags("backup run", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&kind, "kind", "full", "full, incremental or differential")
		fs.StringVar(&name, "name", "default", "snapshot name (policy); parents and retention are per name")
		fs.BoolVar(&verify, "verify", false, "verify the snapshot's chunks after the backup")
		fs.BoolVar(&quiet, "quiet", false, "no progress display")
	})
	if r == nil {
		return code
	}
	k, err := backup.ParseKind(kind)
	if err != nil || fs.NArg() == 0 {
		fmt.Fprintf(stderr, "vigil backup run: %v\n\n%s", orUsage(err, "no PATH given"), backupUsage)
		return 2
	}
	p := newProgress(stderr, "backup", quiet)
	start := time.Now()
	s, err := r.Backup(ctx, backup.Options{Name: name, Kind: k, Paths: fs.Args(), Progress: p.update})
	p.done()
	if err != nil {
		fmt.Fprintln(stderr, "vigil backup run:", err)
		return 1
	}
	took := time.Since(start)
	st := s.Stats
	fmt.Fprintf(stdout, "snapshot %s (%s", s.ID, s.Kind)
	if s.Parent != "" {
		fmt.Fprintf(stdout, " of %s", s.Parent)
	}
	fmt.Fprintf(stdout, "): %d files, %s; new %d, changed %d, unchanged %d, deleted %d; read %s, stored %s in %d chunks; %s, %.1f MB/s\n",
		st.FilesNew+st.FilesChanged+st.FilesUnchanged, mb(s.Size), st.FilesNew, st.FilesChanged, st.FilesUnchanged, st.FilesDeleted,
		mb(st.BytesRead), mb(st.BytesAdded), st.ChunksAdded, took.Round(time.Millisecond), float64(st.BytesRead)/1e6/took.Seconds())
	if verify {
		return verifyAndPrint(ctx, r, []string{s.ID}, stdout, stderr)
	}
	return 0
}

func orUsage(err error, msg string) any {
	if err != nil {
		return err
	}
	return msg
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func backupList(args []string, stdout, stderr io.Writer) int {
	var asJSON bool
	r, _, code := repoFlags("backup list", args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON (manifests without their file lists)")
	})
	if r == nil {
		return code
	}
	snaps, err := r.Snapshots()
	if err != nil {
		fmt.Fprintln(stderr, "vigil backup list:", err)
		return 1
	}
	if asJSON {
		for _, s := range snaps {
			s.Files = nil
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(snaps)
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tNAME\tKIND\tPARENT\tENTRIES\tSIZE\tVERIFIED")
	for _, s := range snaps {
		ver := "never"
		if v, ok, _ := r.Verified(s.ID); ok {
			ver = map[bool]string{true: "ok", false: "FAILED"}[v.OK] + " " + v.Time.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.ID, s.Time.Format(time.RFC3339), s.Name, s.Kind, orDash(s.Parent), len(s.Files), mb(s.Size), ver)
	}
	_ = tw.Flush()
	return 0
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func backupVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	r, fs, code := repoFlags("backup verify", args, stderr, nil)
	if r == nil {
		return code
	}
	ids := fs.Args()
	if len(ids) == 0 {
		snaps, err := r.Snapshots()
		if err != nil {
			fmt.Fprintln(stderr, "vigil backup verify:", err)
			return 1
		}
		for _, s := range snaps {
			ids = append(ids, s.ID)
		}
	}
	return verifyAndPrint(ctx, r, ids, stdout, stderr)
}

// verifyAndPrint verifies ids; exit 1 when any is damaged.
func verifyAndPrint(ctx context.Context, r *backup.Repo, ids []string, stdout, stderr io.Writer) int {
	code := 0
	for _, id := range ids {
		start := time.Now()
		v, err := r.Verify(ctx, id, time.Now())
		if err != nil {
			fmt.Fprintln(stderr, "vigil backup verify:", err)
			return 1
		}
		if v.OK {
			fmt.Fprintf(stdout, "%s: ok, %d chunks, %s in %s\n", id, v.Chunks, mb(v.Bytes), time.Since(start).Round(time.Millisecond))
			continue
		}
		code = 1
		fmt.Fprintf(stdout, "%s: DAMAGED, %d chunks checked, %d missing, %d corrupt\n", id, v.Chunks, len(v.Missing), len(v.Corrupt))
		for _, c := range v.Missing {
			fmt.Fprintf(stdout, "  missing chunk %s\n", c)
		}
		for _, c := range v.Corrupt {
			fmt.Fprintf(stdout, "  corrupt chunk %s\n", c)
		}
	}
	return code
}

func backupForget(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var k backup.Keep
	var name string
	var prune, dry bool
	r, _, code := repoFlags("backup forget", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&name, "name", "", "only snapshots of this name (default: each name on its own)")
		fs.IntVar(&k.Last, "keep-last", 0, "keep the N newest")
		fs.IntVar(&k.Hourly, "keep-hourly", 0, "keep the newest of each of the last N hours with one")
		fs.IntVar(&k.Daily, "keep-daily", 0, "keep the newest of each of the last N days with one")
		fs.IntVar(&k.Weekly, "keep-weekly", 0, "keep the newest of each of the last N weeks with one")
		fs.IntVar(&k.Monthly, "keep-monthly", 0, "keep the newest of each of the last N months with one")
		fs.BoolVar(&prune, "prune", false, "then remove chunks no snapshot uses")
		fs.BoolVar(&dry, "dry-run", false, "only show what would be removed")
	})
	if r == nil {
		return code
	}
	res, err := r.Forget(ctx, name, k, prune, dry)
	if err != nil {
		fmt.Fprintln(stderr, "vigil backup forget:", err)
		return 1
	}
	verb := "removed"
	if dry {
		verb = "would remove"
	}
	for _, s := range res.Keep {
		fmt.Fprintf(stdout, "keep    %s  %s  %s\n", s.ID, s.Name, s.Kind)
	}
	for _, s := range res.Remove {
		fmt.Fprintf(stdout, "%s  %s  %s  %s\n", verb, s.ID, s.Name, s.Kind)
	}
	if prune && !dry {
		fmt.Fprintf(stdout, "pruned %d chunks, %s\n", res.PrunedChunks, mb(res.PrunedBytes))
	}
	return 0
}

func backupPrune(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	r, _, code := repoFlags("backup prune", args, stderr, nil)
	if r == nil {
		return code
	}
	n, b, err := r.Prune(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "vigil backup prune:", err)
		return 1
	}
	fmt.Fprintf(stdout, "pruned %d chunks, %s\n", n, mb(b))
	return 0
}

func backupCopy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var to string
	r, fs, code := repoFlags("backup copy", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&to, "to", "", "destination repository (initialised first when it does not exist)")
	})
	if r == nil {
		return code
	}
	if to == "" {
		fmt.Fprintf(stderr, "vigil backup copy: --to is required\n\n%s", backupUsage)
		return 2
	}
	dst, err := backup.Open(to)
	if errors.Is(err, backup.ErrNotRepo) {
		dst, err = backup.Init(to)
	}
	if err == nil {
		var res *backup.CopyResult
		if res, err = r.Copy(ctx, dst, fs.Args()); err == nil {
			fmt.Fprintf(stdout, "copied %d snapshots, %d chunks, %s to %s\n", len(res.Snapshots), res.Chunks, mb(res.Bytes), to)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "vigil backup copy:", err)
		return 1
	}
	return 0
}

// cmdRestore is `vigil restore`.
func cmdRestore(args []string, stdout, stderr io.Writer) int {
	var snap, target string
	var paths multiFlag
	var quiet bool
	r, _, code := repoFlags("restore", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&snap, "snapshot", "", "snapshot id (or a unique prefix)")
		fs.StringVar(&target, "target", "", "directory to restore into (entry /a/b goes to DIR/a/b)")
		fs.Var(&paths, "path", "restore only this path and what is below it (repeatable)")
		fs.BoolVar(&quiet, "quiet", false, "no progress display")
	})
	if r == nil {
		return code
	}
	if snap == "" || target == "" {
		fmt.Fprintf(stderr, "vigil restore: --snapshot and --target are required\n\n%s", backupUsage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	p := newProgress(stderr, "restore", quiet)
	res, err := r.Restore(ctx, snap, target, backup.RestoreOptions{Paths: paths, Progress: p.update})
	p.done()
	if err != nil {
		fmt.Fprintln(stderr, "vigil restore:", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored %s: %d files (%d entries), %s into %s in %s, %.1f MB/s\n",
		res.Snapshot, res.Files, res.Entries, mb(res.Bytes), target, res.Duration.Round(time.Millisecond), res.MBps())
	return 0
}

// progress draws "<what>  12.3/45.6 MB  27%  8.1 MB/s" on one line of
// stderr at most every 200 ms.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	what  string
	off   bool
	start time.Time
	last  time.Time
	drawn bool
	n, to int64
}

func newProgress(w io.Writer, what string, quiet bool) *progress {
	return &progress{w: w, what: what, off: quiet, start: time.Now()}
}

func (p *progress) update(done, total int64) {
	if p.off {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n, p.to = done, total
	if now := time.Now(); now.Sub(p.last) >= 200*time.Millisecond {
		p.last = now
		p.draw()
	}
}

func (p *progress) draw() {
	pct := 100.0
	if p.to > 0 {
		pct = 100 * float64(p.n) / float64(p.to)
	}
	rate := float64(p.n) / 1e6 / max(time.Since(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\r%s  %.1f/%.1f MB  %3.0f%%  %.1f MB/s ", p.what, float64(p.n)/1e6, float64(p.to)/1e6, pct, rate)
	p.drawn = true
}

// done draws the final state and ends the line.
func (p *progress) done() {
	if p.off {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn || p.to > 0 {
		p.draw()
		fmt.Fprintln(p.w)
	}
}
