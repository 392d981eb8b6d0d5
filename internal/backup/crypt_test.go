package backup

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// repoFiles maps every file under a repository to its content.
func repoFiles(t *testing.T, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[strings.TrimPrefix(p, root)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEncryptedIDsNamesAndDedup: in an encrypted repository chunk ids are
// HMACs (not the plaintext's SHA-256), equal content still de-duplicates,
// another repository (another master key) names the same content
// differently, and neither file names nor content appear on disk.
func TestEncryptedIDsNamesAndDedup(t *testing.T) {
	ctx := context.Background()
	opts := InitOptions{Encrypt: true, Password: testPassword, scryptLogN: 10}
	r := newRepoWith(t, opts)
	src := filepath.Join(t.TempDir(), "secret-project")
	text := logBytes(5, 600<<10)
	at := time.Unix(1.7e9, 0)
	writeFile(t, filepath.Join(src, "customers-confidential.csv"), text, 0o600, at)
	writeFile(t, filepath.Join(src, "copy-of-customers.csv"), text, 0o600, at)
	s, err := r.Backup(ctx, Options{Paths: []string{src}, Time: at})
	if err != nil {
		t.Fatal(err)
	}
	var chunks [][]string
	for _, f := range s.Files {
		if f.Type == TypeFile {
			chunks = append(chunks, f.Chunks)
		}
	}
	if len(chunks) != 2 || len(chunks[0]) != 1 || chunks[0][0] != chunks[1][0] {
		t.Fatalf("equal files got chunk lists %v", chunks)
	}
	if s.Stats.ChunksAdded != 1 || s.Stats.BytesAdded != int64(len(text)) {
		t.Errorf("two equal files stored %d chunks, %d bytes; want 1, %d", s.Stats.ChunksAdded, s.Stats.BytesAdded, len(text))
	}
	id := chunks[0][0]
	plainSum := sha256.Sum256(text)
	if id == hex.EncodeToString(plainSum[:]) {
		t.Error("encrypted repository names a chunk by its plaintext SHA-256")
	}
	mac := hmac.New(sha256.New, r.idKey)
	mac.Write(text)
	if id != hex.EncodeToString(mac.Sum(nil)) {
		t.Error("chunk id is not HMAC-SHA256(idKey, plaintext)")
	}
	if s.Stats.BytesStored >= s.Stats.BytesAdded/2 {
		t.Errorf("log text stored in %d bytes of %d: not compressed", s.Stats.BytesStored, s.Stats.BytesAdded)
	}
	for name, b := range repoFiles(t, r.Path()) {
		for _, leak := range []string{"customers-confidential", "secret-project", string(text[:40]), "workers"} {
			if bytes.Contains(b, []byte(leak)) || strings.Contains(name, leak) {
				t.Errorf("%s shows %q", name, leak)
			}
		}
	}
	// Another repository, same password: another master key, other ids.
	r2 := newRepoWith(t, opts)
	s2, err := r2.Backup(ctx, Options{Paths: []string{src}, Time: at})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range s2.Files {
		if f.Type == TypeFile && f.Chunks[0] == id {
			t.Error("two encrypted repositories give the same content the same id")
		}
	}
	// Reopened with the password: same ids, an unchanged incremental
	// writes nothing.
	ro, err := OpenWith(r.Path(), testPassword)
	if err != nil {
		t.Fatal(err)
	}
	s3, err := ro.Backup(ctx, Options{Kind: Incremental, Paths: []string{src}, Time: at.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if s3.Stats.ChunksAdded != 0 || s3.Stats.BytesRead != 0 {
		t.Errorf("unchanged incremental: %+v", s3.Stats)
	}
	// A full backup reads everything but still stores no chunk.
	s4, err := ro.Backup(ctx, Options{Kind: Full, Paths: []string{src}, Time: at.Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if s4.Stats.ChunksAdded != 0 || s4.Stats.BytesRead != 2*int64(len(text)) {
		t.Errorf("second full backup: %+v", s4.Stats)
	}
}

// TestWrongPassword: a wrong or missing password, or an altered
// config.json, fails at open with an error naming the repository, and
// nothing in the repository changes.
func TestWrongPassword(t *testing.T) {
	r := newRepoWith(t, InitOptions{Encrypt: true, Password: testPassword, scryptLogN: 10})
	backupTree(t, r, "p", 1, time.Unix(1.7e9, 0))
	before := repoFiles(t, r.Path())
	_, err := OpenWith(r.Path(), []byte("Tr0ub4dor&3"))
	if !errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), r.Path()) {
		t.Errorf("wrong password: %v", err)
	}
	for _, open := range []func() (*Repo, error){
		func() (*Repo, error) { return Open(r.Path()) },
		func() (*Repo, error) { return OpenWith(r.Path(), nil) },
	} {
		if _, err := open(); !errors.Is(err, ErrPasswordRequired) || !strings.Contains(err.Error(), r.Path()) {
			t.Errorf("no password: %v", err)
		}
	}
	if _, err := OpenWith(r.Path(), testPassword); err != nil {
		t.Fatalf("right password: %v", err)
	}
	after := repoFiles(t, r.Path())
	if len(after) != len(before) {
		t.Errorf("opening changed the repository: %d files, then %d", len(before), len(after))
	}
	for k, v := range before {
		if !bytes.Equal(after[k], v) {
			t.Errorf("opening changed %s", k)
		}
	}
	// Altering a setting, even a weaker scrypt cost or another
	// compression, stops the key from unwrapping with the right password.
	cfgPath := filepath.Join(r.Path(), "config.json")
	orig, _ := os.ReadFile(cfgPath)
	for _, edit := range []func(*repoConfig){
		func(c *repoConfig) { c.Key.LogN = 11 },
		func(c *repoConfig) { c.Compression = CompressNone },
		func(c *repoConfig) { c.Key.Salt[0] ^= 1 },
	} {
		var c repoConfig
		if err := json.Unmarshal(orig, &c); err != nil {
			t.Fatal(err)
		}
		edit(&c)
		b, _ := json.Marshal(c)
		if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenWith(r.Path(), testPassword); !errors.Is(err, ErrWrongPassword) {
			t.Errorf("altered config opened: %v", err)
		}
	}
	// A config.json asking scrypt for 16 GiB is refused before deriving.
	var huge repoConfig
	if err := json.Unmarshal(orig, &huge); err != nil {
		t.Fatal(err)
	}
	huge.Key.LogN, huge.Key.R = 22, 32
	b, _ := json.Marshal(huge)
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWith(r.Path(), testPassword); err == nil || !strings.Contains(err.Error(), "MiB") {
		t.Errorf("scrypt asking for 16 GiB: %v", err)
	}
	if err := os.WriteFile(cfgPath, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := InitWith(filepath.Join(t.TempDir(), "x"), InitOptions{Encrypt: true}); err == nil {
		t.Error("encryption without a password accepted")
	}
	if _, err := InitWith(filepath.Join(t.TempDir(), "x"), InitOptions{Version: 1, Encrypt: true, Password: testPassword}); err == nil {
		t.Error("an encrypted version-1 repository accepted")
	}
}

// tamper flips one byte of the file at p.
func tamper(t *testing.T, p string, at int) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[at%len(b)] ^= 0x40
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTamperedChunk: an altered chunk, or a valid chunk put in another's
// place, fails authentication; verify lists it, restore names it and
// leaves no file with wrong bytes; the other files still restore.
func TestTamperedChunk(t *testing.T) {
	ctx := context.Background()
	r := newRepoWith(t, InitOptions{Encrypt: true, Password: testPassword, scryptLogN: 10})
	s, src := backupTree(t, r, "t", 4, time.Unix(1.7e9, 0))
	blob := s.Files[1]
	if blob.Path[len(blob.Path)-4:] != "blob" || len(blob.Chunks) < 3 {
		t.Fatalf("unexpected entry %+v", blob)
	}
	a, b, c := blob.Chunks[0], blob.Chunks[1], blob.Chunks[2]
	tamper(t, r.chunkPath(a), 100)
	// b's file replaced by c's: a valid ciphertext under the wrong name.
	cb, _ := os.ReadFile(r.chunkPath(c))
	if err := os.WriteFile(r.chunkPath(b), cb, 0o600); err != nil {
		t.Fatal(err)
	}
	rec, err := r.Verify(ctx, s.ID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rec.OK || len(rec.Corrupt) != 2 || rec.Corrupt[0] != a || rec.Corrupt[1] != b {
		t.Errorf("verify: %+v, want corrupt %s and %s", rec, a[:12], b[:12])
	}
	target := t.TempDir()
	_, err = r.Restore(ctx, s.ID, target, RestoreOptions{})
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.ID != a || !strings.Contains(err.Error(), "chunk "+a[:12]) || !strings.Contains(err.Error(), "failed authentication") {
		t.Errorf("restore of a tampered chunk: %v", err)
	}
	rel := strings.TrimPrefix(filepath.ToSlash(src), "/")
	if _, err := os.Stat(filepath.Join(target, rel, "blob")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("restore left the damaged file behind: %v", err)
	}
	if _, err := r.Restore(ctx, s.ID, target, RestoreOptions{Paths: []string{rel + "/note"}}); err != nil {
		t.Errorf("restore of an intact file: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(target, rel, "note")); string(got) != "t" {
		t.Errorf("note restored as %q", got)
	}
}

// TestTamperedManifest: an altered manifest, or one snapshot's manifest
// under another's name, fails authentication; verify records it as
// damaged naming the snapshot, restore refuses naming it.
func TestTamperedManifest(t *testing.T) {
	ctx := context.Background()
	r := newRepoWith(t, InitOptions{Encrypt: true, Password: testPassword, scryptLogN: 10})
	s1, _ := backupTree(t, r, "m1", 5, time.Unix(1.7e9, 0))
	s2, _ := backupTree(t, r, "m2", 6, time.Unix(1.7e9+60, 0))
	tamper(t, r.manifestPath(s1.ID), 50)
	m2, _ := os.ReadFile(r.manifestPath(s2.ID))
	s3, _ := backupTree(t, r, "m3", 7, time.Unix(1.7e9+120, 0))
	if err := os.WriteFile(r.manifestPath(s3.ID), m2, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{s1.ID, s3.ID} {
		rec, err := r.Verify(ctx, id, time.Now())
		if err != nil || rec.OK || !strings.Contains(rec.Manifest, "snapshot "+id) || !strings.Contains(rec.Manifest, "failed authentication") {
			t.Errorf("verify %s: %+v, %v", id, rec, err)
		}
		if v, ok, err := r.Verified(id); err != nil || !ok || v.OK {
			t.Errorf("recorded verification of %s: %+v %v %v", id, v, ok, err)
		}
		_, err = r.Restore(ctx, id, t.TempDir(), RestoreOptions{})
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Object != kindSnapshot || ce.ID != id {
			t.Errorf("restore %s: %v", id, err)
		}
	}
	if rec, err := r.Verify(ctx, s2.ID, time.Now()); err != nil || !rec.OK {
		t.Errorf("intact snapshot: %+v, %v", rec, err)
	}
}

// TestRawOrCompressed: the encoding byte says raw for data zstd cannot
// shrink by 1/64 and zstd for data it can, in plain and encrypted
// repositories, and every object decodes back to its plaintext.
func TestRawOrCompressed(t *testing.T) {
	random := randBytes(9, 300<<10)
	text := logBytes(9, 300<<10)
	// Half random, half zeros: compresses to about half, still worth it.
	mixed := append(randBytes(10, 150<<10), make([]byte, 150<<10)...)
	for _, f := range formats[1:] {
		t.Run(f.name, func(t *testing.T) {
			r := newRepoWith(t, f.opts)
			for _, c := range []struct {
				name string
				data []byte
				zstd bool
			}{
				{"empty", nil, false},
				{"byte", []byte{7}, false},
				{"random", random, false},
				{"text", text, true},
				{"mixed", mixed, true},
			} {
				cio := r.newChunkIO()
				id := cio.id(c.data)
				stored, err := r.encode(cio, kindChunk, id, c.data)
				if err != nil {
					t.Fatal(err)
				}
				stored = bytes.Clone(stored)
				body := stored
				if r.Encrypted() {
					if len(c.data) > 16 && bytes.Contains(stored, c.data[:64]) {
						t.Errorf("%s: plaintext visible", c.name)
					}
					body, err = r.aead.Open(nil, stored[:nonceSize], stored[nonceSize:], []byte("vigil-backup/2 chunk "+id))
					if err != nil {
						t.Fatalf("%s: %v", c.name, err)
					}
				}
				wantZstd := c.zstd && r.Compression() == CompressZstd
				switch {
				case wantZstd && (body[0] != encZstd || len(body) > len(c.data)/2+len(c.data)/4):
					t.Errorf("%s: encoding %d, %d bytes for %d", c.name, body[0], len(body), len(c.data))
				case !wantZstd && (body[0] != encRaw || !bytes.Equal(body[1:], c.data)):
					t.Errorf("%s: encoding %d, want raw", c.name, body[0])
				}
				got, err := r.decode(r.newChunkIO(), kindChunk, id, stored)
				if err != nil || !bytes.Equal(got, c.data) {
					t.Errorf("%s: decode: %v (%d bytes, want %d)", c.name, err, len(got), len(c.data))
				}
				// The same object under another name does not decode in
				// an encrypted repository.
				if _, err := r.decode(r.newChunkIO(), kindChunk, strings.Repeat("0", 64), stored); r.Encrypted() != (err != nil) {
					t.Errorf("%s: decode under another name: %v", c.name, err)
				}
			}
		})
	}
	if !worthIt(100, 1000) || worthIt(985, 1000) || !worthIt(984, 1000) {
		t.Error("worthIt threshold is not 1/64")
	}
}

// TestVersion1Fixture: a repository written by the version-1 code
// (testdata/v1repo, made before format 2 existed) lists, verifies,
// restores hash-exact, and takes new snapshots in version 1 format.
func TestVersion1Fixture(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "v1")
	for name, b := range repoFiles(t, "testdata/v1repo") {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "verified"), 0o700); err != nil { // git keeps no empty directory
		t.Fatal(err)
	}
	cfg0, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	r, err := OpenWith(dir, testPassword) // a password is not needed, nor harmful
	if err != nil {
		t.Fatal(err)
	}
	if r.Version() != 1 || r.Encrypted() || r.Compression() != CompressNone {
		t.Fatalf("fixture opened as version %d, encrypted %v, compression %s", r.Version(), r.Encrypted(), r.Compression())
	}
	snaps, err := r.Snapshots()
	if err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots: %d, %v", len(snaps), err)
	}
	conf := []string{"listen = 0.0.0.0:8080\nworkers = 4\n", "listen = 0.0.0.0:9090\nworkers = 8\n"}
	blob := randBytes(42, 20<<10)
	for i, s := range snaps {
		if rec, err := r.Verify(ctx, s.ID, time.Now()); err != nil || !rec.OK || rec.Chunks != 2 {
			t.Errorf("verify %s: %+v %v", s.ID, rec, err)
		}
		target := t.TempDir()
		if _, err := r.Restore(ctx, s.ID, target, RestoreOptions{}); err != nil {
			t.Fatal(err)
		}
		root := filepath.Join(target, "tmp", "vigil-v1-fixture", "src")
		for p, want := range map[string][]byte{"etc/app.conf": []byte(conf[i]), "data/blob.bin": blob, "data/empty": {}} {
			got, err := os.ReadFile(filepath.Join(root, p))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("snapshot %d: %s restored as %d bytes (%v), want %d", i, p, len(got), err, len(want))
			}
		}
		if l, err := os.Readlink(filepath.Join(root, "data", "conf-link")); err != nil || l != "../etc/app.conf" {
			t.Errorf("symlink: %q %v", l, err)
		}
	}
	// A new snapshot is written in version 1 format: raw chunks named by
	// their SHA-256, a JSON manifest.
	src := filepath.Join(t.TempDir(), "new")
	text := logBytes(3, 100<<10)
	writeFile(t, filepath.Join(src, "new.log"), text, 0o644, time.Unix(1.7e9, 0))
	s, err := r.Backup(ctx, Options{Name: "app", Kind: Incremental, Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(text)
	id := hex.EncodeToString(sum[:])
	if got, err := os.ReadFile(filepath.Join(dir, "chunks", id[:2], id)); err != nil || !bytes.Equal(got, text) {
		t.Errorf("version-1 chunk not stored raw under its SHA-256: %v", err)
	}
	var m Snapshot
	if b, err := os.ReadFile(filepath.Join(dir, "snapshots", s.ID+".json")); err != nil || json.Unmarshal(b, &m) != nil || m.ID != s.ID {
		t.Errorf("version-1 manifest not JSON: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "config.json")); !bytes.Equal(b, cfg0) {
		t.Error("config.json changed")
	}
	if v, ok, err := r.Verified(snaps[0].ID); err != nil || !ok || !v.OK {
		t.Errorf("version-1 verification record: %+v %v %v", v, ok, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "verified", snaps[0].ID+".json")); err != nil {
		t.Errorf("version-1 verification record not JSON-named: %v", err)
	}
}

// TestCopyAcrossFormats copies v1 -> v2 encrypted -> v2 zstd -> v1 and
// checks each restores hash-exact, chunk ids are translated where the
// naming differs, a second copy of an incremental reads only the changed
// chunks, and copying again writes nothing.
func TestCopyAcrossFormats(t *testing.T) {
	ctx := context.Background()
	v1 := newRepoWith(t, InitOptions{Version: 1})
	enc := newRepoWith(t, InitOptions{Encrypt: true, Password: testPassword, scryptLogN: 10})
	plain := newRepoWith(t, InitOptions{})
	back := newRepoWith(t, InitOptions{Version: 1})
	src := filepath.Join(t.TempDir(), "src")
	t0 := time.Unix(1.7e9, 0)
	writeFile(t, filepath.Join(src, "random.bin"), randBytes(20, 5<<20), 0o644, t0)
	writeFile(t, filepath.Join(src, "app.log"), logBytes(20, 2<<20), 0o640, t0)
	want1 := treeState(t, src)
	s1, err := v1.Backup(ctx, Options{Name: "x", Paths: []string{src}, Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	chain := []*Repo{v1, enc, plain, back}
	for i := 1; i < len(chain); i++ {
		res, err := chain[i-1].Copy(ctx, chain[i], nil)
		if err != nil || len(res.Snapshots) != 1 || res.Bytes != s1.Size {
			t.Fatalf("copy %d: %+v %v", i, res, err)
		}
	}
	idsOf := func(r *Repo, id string) []string {
		s, err := r.Snapshot(id)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range s.Files {
			out = append(out, f.Chunks...)
		}
		return out
	}
	a, e, p, b := idsOf(v1, s1.ID), idsOf(enc, s1.ID), idsOf(plain, s1.ID), idsOf(back, s1.ID)
	if strings.Join(a, ",") != strings.Join(p, ",") || strings.Join(a, ",") != strings.Join(b, ",") || len(e) != len(a) {
		t.Fatalf("chunk ids: v1 %d, encrypted %d, zstd %d, back %d", len(a), len(e), len(p), len(b))
	}
	for i := range a {
		if a[i] == e[i] {
			t.Errorf("chunk %d keeps its SHA-256 name in the encrypted copy", i)
		}
	}
	rel := strings.TrimPrefix(filepath.ToSlash(src), "/")
	for _, r := range chain {
		target := t.TempDir()
		if _, err := r.Restore(ctx, s1.ID, target, RestoreOptions{}); err != nil {
			t.Fatalf("restore from copy: %v", err)
		}
		sameState(t, "copy", treeState(t, filepath.Join(target, rel)), want1)
		if rec, err := r.Verify(ctx, s1.ID, time.Now()); err != nil || !rec.OK {
			t.Errorf("verify copy: %+v %v", rec, err)
		}
	}
	// An incremental with one changed file, copied v1 -> encrypted: the
	// unchanged file's chunks are translated through the parent, not read.
	t1 := t0.Add(time.Hour)
	writeFile(t, filepath.Join(src, "app.log"), logBytes(21, 2<<20), 0o640, t1)
	want2 := treeState(t, src)
	s2, err := v1.Backup(ctx, Options{Name: "x", Kind: Incremental, Paths: []string{src}, Time: t1})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range s1.Files {
		if strings.HasSuffix(f.Path, "random.bin") {
			for _, c := range f.Chunks {
				if err := os.Rename(v1.chunkPath(c), v1.chunkPath(c)+".away"); err != nil {
					t.Fatal(err)
				}
				defer os.Rename(v1.chunkPath(c)+".away", v1.chunkPath(c))
			}
		}
	}
	res, err := v1.Copy(ctx, enc, nil)
	if err != nil || len(res.Snapshots) != 1 || res.Bytes != 2<<20 {
		t.Fatalf("incremental copy: %+v %v", res, err)
	}
	target := t.TempDir()
	if _, err := enc.Restore(ctx, s2.ID, target, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	sameState(t, "incremental copy", treeState(t, filepath.Join(target, rel)), want2)
	if res, err := v1.Copy(ctx, enc, nil); err != nil || len(res.Snapshots) != 0 || res.Chunks != 0 {
		t.Errorf("repeated copy: %+v %v", res, err)
	}
}
