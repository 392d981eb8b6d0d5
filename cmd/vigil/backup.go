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
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/vigil-sre/vigil/internal/backup"
)

const backupUsage = `Usage:
  vigil backup init [--encrypt] [--compression zstd|none] [--password-file FILE] REPO
  vigil backup run --repo REPO [--kind full|incremental|differential] [--name NAME] [--verify] PATH...
  vigil backup list --repo REPO [--json]
  vigil backup verify --repo REPO [ID...]            (default: every snapshot)
  vigil backup forget --repo REPO [--name NAME] --keep-last N [--keep-hourly N] [--keep-daily N]
                      [--keep-weekly N] [--keep-monthly N] [--prune] [--dry-run]
  vigil backup prune --repo REPO
  vigil backup copy --repo REPO --to REPO2 [--to-password-file FILE] [ID...]   (default: every snapshot)
  vigil backup key passwd --repo REPO [--password-file FILE] --new-password-file FILE2
  vigil restore --repo REPO --snapshot ID --target DIR [--path P]...

Encrypted repositories (init --encrypt) need their password: the file given
by --password-file (env VIGIL_BACKUP_PASSWORD_FILE; one trailing newline is
ignored) or the env var VIGIL_BACKUP_PASSWORD. copy uses the same password
for --to unless --to-password-file is given (a new --to is then encrypted,
also when the source is not). key passwd takes the new
password from --new-password-file (env VIGIL_BACKUP_NEW_PASSWORD_FILE) or
the env var VIGIL_BACKUP_NEW_PASSWORD. A lost password loses the data.
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
	switch sub {
	case "init":
		return backupInit(args, stdout, stderr)
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
	case "key":
		return backupKey(ctx, args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, backupUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "vigil backup: unknown command %q\n\n%s", sub, backupUsage)
		return 2
	}
}

// backupInit is `vigil backup init`.
func backupInit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil backup init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	encrypt := fs.Bool("encrypt", false, "encrypt the repository (password from --password-file or VIGIL_BACKUP_PASSWORD)")
	compression := fs.String("compression", backup.CompressZstd, "zstd or none")
	pwFile := fs.String("password-file", os.Getenv("VIGIL_BACKUP_PASSWORD_FILE"), "file holding the password (env VIGIL_BACKUP_PASSWORD_FILE)")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() != 1 {
		fmt.Fprint(stderr, backupUsage)
		return 2
	}
	opts := backup.InitOptions{Compression: *compression, Encrypt: *encrypt}
	explicitPw := false
	fs.Visit(func(f *flag.Flag) { explicitPw = explicitPw || f.Name == "password-file" })
	if explicitPw && !*encrypt {
		fmt.Fprintln(stderr, "vigil backup init: --password-file without --encrypt: the repository would not be encrypted")
		return 2
	}
	if *encrypt {
		pw, err := password(*pwFile)
		if err == nil && pw == nil {
			err = errors.New("--encrypt needs a password: --password-file FILE or VIGIL_BACKUP_PASSWORD")
		}
		if err != nil {
			fmt.Fprintln(stderr, "vigil backup init:", err)
			return 2
		}
		opts.Password = pw
	}
	r, err := backup.InitWith(fs.Arg(0), opts)
	if err != nil {
		fmt.Fprintln(stderr, "vigil backup init:", err)
		return 1
	}
	fmt.Fprintf(stdout, "initialised backup repository %s (%s)\n", r.Path(), describeRepo(r))
	return 0
}

// describeRepo is e.g. "format 2, zstd, encrypted".
func describeRepo(r *backup.Repo) string {
	enc := "not encrypted"
	if r.Encrypted() {
		enc = "encrypted (AES-256-GCM, scrypt-wrapped key)"
	}
	return fmt.Sprintf("format %d, compression %s, %s", r.Version(), r.Compression(), enc)
}

// password reads the repository password from file, else from
// VIGIL_BACKUP_PASSWORD; nil when neither is set.
func password(file string) ([]byte, error) {
	if file != "" {
		return backup.ReadPasswordFile(file)
	}
	if pw := os.Getenv("VIGIL_BACKUP_PASSWORD"); pw != "" {
		return []byte(pw), nil
	}
	return nil, nil
}

// openRepo opens path with the password from file or the environment.
func openRepo(path, pwFile string) (*backup.Repo, error) {
	pw, err := password(pwFile)
	if err != nil {
		return nil, err
	}
	r, err := backup.OpenWith(path, pw)
	if errors.Is(err, backup.ErrPasswordRequired) {
		err = fmt.Errorf("%w: give --password-file FILE or set VIGIL_BACKUP_PASSWORD", err)
	}
	return r, err
}

// repoFlags parses args with --repo and --password-file flags and opens
// the repository.
func repoFlags(name string, args []string, stderr io.Writer, define func(*flag.FlagSet)) (*backup.Repo, *flag.FlagSet, int) {
	fs := flag.NewFlagSet("vigil "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("repo", os.Getenv("VIGIL_BACKUP_REPO"), "repository path (env VIGIL_BACKUP_REPO)")
	pwFile := fs.String("password-file", os.Getenv("VIGIL_BACKUP_PASSWORD_FILE"), "file holding an encrypted repository's password (env VIGIL_BACKUP_PASSWORD_FILE; else env VIGIL_BACKUP_PASSWORD)")
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
	r, err := openRepo(*repo, *pwFile)
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
	fmt.Fprintf(stdout, "): %d files, %s; new %d, changed %d, unchanged %d, deleted %d; read %s, stored %s in %d chunks (%s on disk); %s, %.1f MB/s\n",
		st.FilesNew+st.FilesChanged+st.FilesUnchanged, mb(s.Size), st.FilesNew, st.FilesChanged, st.FilesUnchanged, st.FilesDeleted,
		mb(st.BytesRead), mb(st.BytesAdded), st.ChunksAdded, mb(st.BytesStored), took.Round(time.Millisecond), float64(st.BytesRead)/1e6/took.Seconds())
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
		// The ids (which begin with the time) without reading manifests, so
		// one damaged manifest is reported rather than stopping the check.
		all, err := r.SnapshotIDs()
		if err != nil {
			fmt.Fprintln(stderr, "vigil backup verify:", err)
			return 1
		}
		sort.Strings(all)
		ids = all
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
		if v.Manifest != "" {
			fmt.Fprintf(stdout, "%s: DAMAGED, %s\n", id, v.Manifest)
			continue
		}
		fmt.Fprintf(stdout, "%s: DAMAGED, %d chunks checked, %d missing, %d corrupt (failed authentication or not matching their id)\n", id, v.Chunks, len(v.Missing), len(v.Corrupt))
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
	var to, toPw string
	r, fs, code := repoFlags("backup copy", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&to, "to", "", "destination repository (initialised first when it does not exist: current format, encrypted when the source is or --to-password-file is given)")
		fs.StringVar(&toPw, "to-password-file", "", "file holding the destination's password (default: the source's password); a new destination is encrypted with it")
	})
	if r == nil {
		return code
	}
	if to == "" {
		fmt.Fprintf(stderr, "vigil backup copy: --to is required\n\n%s", backupUsage)
		return 2
	}
	pwFile := toPw
	if pwFile == "" {
		pwFile = fs.Lookup("password-file").Value.String()
	}
	dst, err := openRepo(to, pwFile)
	if errors.Is(err, backup.ErrNotRepo) {
		var pw []byte
		if pw, err = password(pwFile); err == nil {
			enc := r.Encrypted() || toPw != ""
			if !enc {
				pw = nil
			}
			dst, err = backup.InitWith(to, backup.InitOptions{Encrypt: enc, Password: pw})
		}
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

// backupKey is `vigil backup key passwd`: the current password as for
// every command, the new one from --new-password-file or the environment
// (never an argument).
func backupKey(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "passwd" {
		fmt.Fprintf(stderr, "vigil backup key: want the subcommand passwd\n\n%s", backupUsage)
		return 2
	}
	fs := flag.NewFlagSet("vigil backup key passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("repo", os.Getenv("VIGIL_BACKUP_REPO"), "repository path (env VIGIL_BACKUP_REPO)")
	pwFile := fs.String("password-file", os.Getenv("VIGIL_BACKUP_PASSWORD_FILE"), "file holding the current password (env VIGIL_BACKUP_PASSWORD_FILE; else env VIGIL_BACKUP_PASSWORD)")
	newFile := fs.String("new-password-file", os.Getenv("VIGIL_BACKUP_NEW_PASSWORD_FILE"), "file holding the new password (env VIGIL_BACKUP_NEW_PASSWORD_FILE; else env VIGIL_BACKUP_NEW_PASSWORD)")
	if err := fs.Parse(args[1:]); err != nil {
		return flagExit(err)
	}
	if *repo == "" || fs.NArg() != 0 {
		fmt.Fprintf(stderr, "vigil backup key passwd: --repo is required and no arguments are taken (passwords come from files or the environment)\n\n%s", backupUsage)
		return 2
	}
	var next []byte
	var err error
	if *newFile != "" {
		next, err = backup.ReadPasswordFile(*newFile)
	} else if pw := os.Getenv("VIGIL_BACKUP_NEW_PASSWORD"); pw != "" {
		next = []byte(pw)
	} else {
		err = errors.New("no new password: give --new-password-file FILE or set VIGIL_BACKUP_NEW_PASSWORD")
	}
	if err != nil {
		fmt.Fprintln(stderr, "vigil backup key passwd:", err)
		return 2
	}
	cur, err := password(*pwFile)
	if err != nil {
		fmt.Fprintln(stderr, "vigil backup key passwd:", err)
		return 2
	}
	r, err := openRepo(*repo, *pwFile)
	if err == nil {
		err = r.ChangePassword(ctx, cur, next)
	}
	if err != nil {
		fmt.Fprintln(stderr, "vigil backup key passwd:", err)
		return 1
	}
	fmt.Fprintf(stdout, "changed the password of %s (the data is unchanged; update every password file that names it)\n", r.Path())
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
