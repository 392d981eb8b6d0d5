package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/backup"
	"github.com/vigil-sre/vigil/internal/wire"
)

type backupPoint struct {
	tags   map[string]string
	fields map[string]wire.Field
}

func collectBackup(t *testing.T, c Collector, now time.Time) map[string]backupPoint {
	t.Helper()
	pts := map[string]backupPoint{}
	err := c.Collect(context.Background(), now, func(m string, tags []wire.Tag, fields []wire.Field) {
		if m != "backup" {
			t.Errorf("measurement %q", m)
		}
		p := backupPoint{tags: map[string]string{}, fields: map[string]wire.Field{}}
		for _, tg := range tags {
			p.tags[tg.Key] = tg.Value
		}
		for _, f := range fields {
			p.fields[f.Key] = f
		}
		pts[p.tags["service"]+"/"+p.tags["kind"]] = p
	})
	if err != nil {
		t.Fatal(err)
	}
	return pts
}

func runBackupAction(t *testing.T, a HostAction, id string, params map[string]string) (map[string]string, error) {
	t.Helper()
	last := -1.0
	res, err := a.Run(context.Background(), &wire.Command{ID: id, Action: a.Name(), Params: params}, func(f float64, _ string) {
		if f < last || f > 1 {
			t.Errorf("progress went from %v to %v", last, f)
		}
		last = f
	})
	return res, err
}

// TestBackupActionsAndCollector: the host actions take, verify and restore
// snapshots of real files; the collector reports them.
func TestBackupActionsAndCollector(t *testing.T) {
	dir := t.TempDir()
	src, repo, roots := filepath.Join(dir, "data"), filepath.Join(dir, "repo"), filepath.Join(dir, "restore")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "model.bin"), []byte("weights v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := BackupConfig{Repository: repo, RestoreRoots: []string{roots}, Policies: []BackupPolicy{
		{Name: "fraud", Paths: []string{src}, Kind: "incremental", Keep: backup.Keep{Last: 2}},
		{Name: "aborts", Paths: []string{src}, PreHook: &HookConfig{Program: "false"}},
	}}
	b := NewBackups(cfg, nil)
	acts := b.Actions()
	bk, rs := acts[0], acts[1]
	col := b.Collector()
	if pts := collectBackup(t, col, time.Now()); len(pts) != 0 {
		t.Fatalf("points before any backup: %v", pts)
	}

	res, err := runBackupAction(t, bk, "cmd-1", map[string]string{"policy": "fraud", "kind": "full"})
	if err != nil {
		t.Fatal(err)
	}
	if res["kind"] != "full" || res["verified"] != "true" || res["size_bytes"] != "10" {
		t.Fatalf("first backup: %v", res)
	}
	first := res["snapshot"]
	if st, err := time.Parse(time.RFC3339Nano, res["snapshot_time"]); err != nil || time.Since(st) > time.Minute {
		t.Fatalf("snapshot_time %q (the controller measures RPO from it): %v", res["snapshot_time"], err)
	}
	again, err := runBackupAction(t, bk, "cmd-1", map[string]string{"policy": "fraud", "kind": "full"})
	if err != nil || again["snapshot"] != first {
		t.Fatalf("repeated command id: %v %v (want snapshot %s)", again, err, first)
	}
	if err := os.WriteFile(filepath.Join(src, "model.bin"), []byte("weights v2!"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err = runBackupAction(t, bk, "cmd-2", map[string]string{"policy": "fraud"}) // the policy's kind
	if err != nil || res["kind"] != "incremental" || res["parent"] != first {
		t.Fatalf("second backup: %v %v", res, err)
	}
	if _, err := runBackupAction(t, bk, "cmd-3", map[string]string{"policy": "aborts"}); err == nil || !strings.Contains(err.Error(), "pre hook") {
		t.Errorf("failing pre hook: %v", err)
	}
	if _, err := runBackupAction(t, bk, "cmd-4", map[string]string{"policy": "nope"}); err == nil {
		t.Error("unknown policy accepted")
	}

	r, err := backup.Open(repo)
	if err != nil {
		t.Fatal(err)
	}
	snaps, _ := r.Snapshots()
	if len(snaps) != 2 {
		t.Fatalf("%d snapshots, want 2 (the aborted backup wrote none)", len(snaps))
	}
	now := snaps[1].Time.Add(90 * time.Second)
	pts := collectBackup(t, col, now)
	full, inc := pts["fraud/full"], pts["fraud/incremental"]
	if len(pts) != 2 || full.fields["last_success"].Int != snaps[0].Time.Unix() || inc.fields["last_success"].Int != snaps[1].Time.Unix() {
		t.Fatalf("points %v", pts)
	}
	if inc.fields["verified"].Int != 1 || inc.fields["size_bytes"].Int != 11 || inc.fields["age_seconds"].Float != 90 {
		t.Errorf("incremental point %v", inc.fields)
	}

	// Damage the incremental's chunk: verify fails, the collector drops it.
	if err := os.WriteFile(filepath.Join(repo, "chunks", snaps[1].Files[1].Chunks[0][:2], snaps[1].Files[1].Chunks[0]), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if rec, err := r.Verify(context.Background(), snaps[1].ID, now); err != nil || rec.OK {
		t.Fatalf("verify of a damaged snapshot: %+v %v", rec, err)
	}
	inc = collectBackup(t, col, now)["fraud/incremental"]
	if _, ok := inc.fields["last_success"]; ok || inc.fields["verified"].Int != 0 {
		t.Errorf("damaged incremental still reported good: %v", inc.fields)
	}

	// Restore the full snapshot under a restore root; outside is refused.
	target := filepath.Join(roots, "r1")
	res, err = runBackupAction(t, rs, "cmd-5", map[string]string{"snapshot": first, "target": target})
	if err != nil || res["files"] != "1" {
		t.Fatalf("restore: %v %v", res, err)
	}
	got, err := os.ReadFile(filepath.Join(target, src, "model.bin"))
	if err != nil || string(got) != "weights v1" {
		t.Errorf("restored %q, %v", got, err)
	}
	if _, err := runBackupAction(t, rs, "cmd-6", map[string]string{"target": filepath.Join(dir, "elsewhere")}); err == nil {
		t.Error("restore outside restore_roots accepted")
	}
	if _, err := runBackupAction(t, rs, "cmd-7", map[string]string{"target": roots + "/../x"}); err == nil {
		t.Error("restore to a path escaping restore_roots accepted")
	}
	if n, _ := strconv.Atoi(res["bytes"]); n != 10 {
		t.Errorf("restore result %v", res)
	}
}

func TestBackupConfigErrors(t *testing.T) {
	yaml := `
backup:
  repository: /r
  policies:
    - name: a
      paths: [relative/path]
      kind: weekly
    - name: a
      paths: [/x]
      keep: {last: -1}
      pre_hook: {args: [x]}
`
	_, err := ParseConfig("agent.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("bad backup section accepted")
	}
	for _, want := range []string{
		"agent.yaml:6:", "not an absolute path", "agent.yaml:7:", "unknown backup kind",
		"agent.yaml:8:", "listed twice", "counts must not be negative", "pre_hook: program must be set",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestBackupActionsEncrypted: with backup.password_file the first backup
// creates an encrypted repository (and copy_to one), restore and the
// collector read it with the password, and nothing opens it without.
func TestBackupActionsEncrypted(t *testing.T) {
	dir := t.TempDir()
	src, repo, repo2, roots := filepath.Join(dir, "data"), filepath.Join(dir, "repo"), filepath.Join(dir, "repo2"), filepath.Join(dir, "restore")
	pw := filepath.Join(dir, "backup.pw")
	if err := os.WriteFile(pw, []byte("agent secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "model.bin"), []byte("weights v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := "backup:\n  repository: " + repo + "\n  password_file: " + pw + "\n  restore_roots: [" + roots + "]\n" +
		"  policies:\n    - name: m\n      paths: [" + src + "]\n      copy_to: " + repo2 + "\n"
	cfg, err := ParseConfig("agent.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	b := NewBackups(*cfg.Backup, nil)
	bk, rs := b.Actions()[0], b.Actions()[1]
	res, err := runBackupAction(t, bk, "cmd-1", nil)
	if err != nil || res["verified"] != "true" {
		t.Fatalf("backup: %v %v", res, err)
	}
	for _, p := range []string{repo, repo2} {
		if _, err := backup.Open(p); !errors.Is(err, backup.ErrPasswordRequired) {
			t.Errorf("%s opens without a password: %v", p, err)
		}
		r, err := backup.OpenWith(p, []byte("agent secret"))
		if err != nil || !r.Encrypted() {
			t.Fatalf("%s: %v", p, err)
		}
		if ids, _ := r.SnapshotIDs(); len(ids) != 1 || ids[0] != res["snapshot"] {
			t.Errorf("%s holds %v", p, ids)
		}
	}
	if pts := collectBackup(t, b.Collector(), time.Now()); pts["m/full"].fields["verified"].Int != 1 {
		t.Errorf("collector: %v", pts)
	}
	target := filepath.Join(roots, "r")
	if _, err := runBackupAction(t, rs, "cmd-2", map[string]string{"target": target}); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(target, src, "model.bin")); err != nil || string(got) != "weights v1" {
		t.Errorf("restored %q %v", got, err)
	}
	// Another password: the repository is refused, by name.
	if err := os.WriteFile(pw, []byte("other"), 0o600); err != nil {
		t.Fatal(err)
	}
	b2 := NewBackups(*cfg.Backup, nil)
	if _, err := runBackupAction(t, b2.Actions()[0], "cmd-3", nil); !errors.Is(err, backup.ErrWrongPassword) || !strings.Contains(err.Error(), repo) {
		t.Errorf("wrong password: %v", err)
	}
	// The failure is remembered for this password and config.json (the
	// collector would otherwise run the key derivation on every tick) and
	// forgotten when the password file changes.
	f, ok := b2.failed[repo]
	if !ok {
		t.Fatal("the wrong-password failure is not remembered")
	}
	f.err = errors.New("remembered")
	b2.failed[repo] = f
	if _, err := b2.open(repo, false); err == nil || err.Error() != "remembered" {
		t.Errorf("second open with the same password: %v, want the remembered failure", err)
	}
	if err := os.WriteFile(pw, []byte("agent secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := b2.open(repo, false); err != nil {
		t.Errorf("after the password file was fixed: %v", err)
	}
	if _, ok := b2.failed[repo]; ok {
		t.Error("the failure is still remembered after a successful open")
	}
}

func TestBackupPasswordFileErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"relative/pw":                 "not an absolute path",
		filepath.Join(dir, "missing"): "no such file",
		empty:                         "is empty",
	} {
		yaml := "backup:\n  repository: /r\n  password_file: " + file + "\n  policies:\n    - name: a\n      paths: [/x]\n"
		_, err := ParseConfig("agent.yaml", []byte(yaml))
		if err == nil || !strings.Contains(err.Error(), "agent.yaml:3:") || !strings.Contains(err.Error(), want) {
			t.Errorf("password_file %s: %v, want %q", file, err, want)
		}
	}
}
