package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// tailFile is a log file a test writes to, as a program would.
type tailFile struct {
	t    *testing.T
	path string
	f    *os.File
}

func newTailFile(t *testing.T, path string) *tailFile {
	t.Helper()
	w := &tailFile{t: t, path: path}
	w.create()
	t.Cleanup(func() { w.f.Close() })
	return w
}

func (w *tailFile) create() {
	w.t.Helper()
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		w.t.Fatal(err)
	}
	if w.f != nil {
		w.f.Close()
	}
	w.f = f
}

func (w *tailFile) write(s string) {
	w.t.Helper()
	if _, err := w.f.WriteString(s); err != nil {
		w.t.Fatal(err)
	}
}

// poll returns the lines of one Poll.
func poll(t *testing.T, tl *Tailer) []string {
	t.Helper()
	var got []string
	n, err := tl.Poll(func(line []byte) { got = append(got, string(line)) })
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	if n != len(got) {
		t.Fatalf("Poll returned %d, delivered %d lines", n, len(got))
	}
	return got
}

func wantLines(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

func TestTailerStartAndAppend(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app.log")
	w := newTailFile(t, p)
	w.write("old 1\nold 2\n")
	tl := NewTailer(p, false, 0)
	defer tl.Close()
	w.write("after new\n") // written after NewTailer: read
	wantLines(t, "first poll", poll(t, tl), "after new")
	wantLines(t, "nothing new", poll(t, tl))
	w.write("a\r\nb\npart")
	wantLines(t, "crlf and partial", poll(t, tl), "a", "b")
	w.write("ial\n\n")
	wantLines(t, "partial completed, empty line", poll(t, tl), "partial", "")

	all := NewTailer(p, true, 0)
	defer all.Close()
	wantLines(t, "from start", poll(t, all), "old 1", "old 2", "after new", "a", "b", "partial", "")
	if st := tl.Stats(); st.Lines != 5 || st.Rotations != 0 || st.Truncations != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTailerMissingThenCreated(t *testing.T) {
	p := filepath.Join(t.TempDir(), "later.log")
	tl := NewTailer(p, false, 0)
	defer tl.Close()
	wantLines(t, "missing", poll(t, tl))
	w := newTailFile(t, p)
	w.write("first\nsecond\n")
	// A file that appears after NewTailer is read from its start.
	wantLines(t, "created", poll(t, tl), "first", "second")
}

func TestTailerRenameCreate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	w := newTailFile(t, p)
	tl := NewTailer(p, false, 0)
	defer tl.Close()
	w.write("one\n")
	wantLines(t, "before", poll(t, tl), "one")

	// logrotate "create": rename, the program goes on writing to the old
	// file until it reopens.
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	w.write("two\n")
	wantLines(t, "renamed, not re-created", poll(t, tl), "two")
	w.write("three\nunterminated")
	w.create() // re-created at the path
	w.write("four\n")
	wantLines(t, "switch", poll(t, tl), "three", "unterminated", "four")
	w.write("five\n")
	wantLines(t, "new file", poll(t, tl), "five")
	if st := tl.Stats(); st.Rotations != 1 || st.Lines != 6 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTailerRemoveRecreate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app.log")
	w := newTailFile(t, p)
	tl := NewTailer(p, true, 0)
	defer tl.Close()
	w.write("a\n")
	wantLines(t, "before", poll(t, tl), "a")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	wantLines(t, "removed", poll(t, tl))
	w.create()
	w.write("b\nc\n")
	wantLines(t, "re-created", poll(t, tl), "b", "c")
	if st := tl.Stats(); st.Rotations != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTailerTruncate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app.log")
	w := newTailFile(t, p)
	tl := NewTailer(p, true, 0)
	defer tl.Close()
	w.write("a long first line\nsecond line\n")
	wantLines(t, "before", poll(t, tl), "a long first line", "second line")

	// copytruncate: copy elsewhere, truncate in place; the writer appends
	// (O_APPEND) at the new end.
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	w.write("after\n")
	wantLines(t, "copytruncate", poll(t, tl), "after")

	// Truncated by another writer to zero, then written again.
	if err := os.WriteFile(p, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantLines(t, "truncate and rewrite", poll(t, tl), "x")
	if st := tl.Stats(); st.Truncations != 2 || st.Rotations != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTailerLongLines(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app.log")
	w := newTailFile(t, p)
	tl := NewTailer(p, true, 8)
	defer tl.Close()
	w.write("short\n0123456789abc\nok\n")
	wantLines(t, "long in one chunk", poll(t, tl), "short", "01234567", "ok")
	w.write("abcdef")
	wantLines(t, "partial", poll(t, tl))
	w.write("ghijkl")
	wantLines(t, "grown past max", poll(t, tl), "abcdefgh")
	w.write("mnop\nnext\n")
	wantLines(t, "rest skipped", poll(t, tl), "next")
	if st := tl.Stats(); st.LongLines != 2 || st.Lines != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTailerBigFile(t *testing.T) {
	// More than maxPollBytes: delivered over several Polls, none lost.
	p := filepath.Join(t.TempDir(), "big.log")
	line := strings.Repeat("x", 999) + "\n"
	data := bytes.Repeat([]byte(line), maxPollBytes/len(line)*2+10)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	tl := NewTailer(p, true, 0)
	defer tl.Close()
	total, polls := 0, 0
	for {
		n := len(poll(t, tl))
		if n == 0 {
			break
		}
		total += n
		polls++
	}
	if want := len(data) / len(line); total != want || polls < 3 {
		t.Fatalf("%d lines in %d polls, want %d in at least 3", total, polls, want)
	}
}

func TestTailerUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads everything")
	}
	p := filepath.Join(t.TempDir(), "secret.log")
	if err := os.WriteFile(p, []byte("x\n"), 0o000); err != nil {
		t.Fatal(err)
	}
	tl := NewTailer(p, true, 0)
	if _, err := tl.Poll(func([]byte) {}); err == nil || !strings.Contains(err.Error(), "permission") {
		t.Fatalf("unreadable file: %v", err)
	}
}

// FuzzTailerSplit checks that however the input is cut into reads, the
// Tailer delivers the same lines as splitting it whole.
func FuzzTailerSplit(f *testing.F) {
	f.Add([]byte("a\nbb\r\nccc\n"), uint8(1), uint8(4))
	f.Add([]byte("0123456789\nx\n"), uint8(3), uint8(5))
	f.Fuzz(func(t *testing.T, data []byte, cut, maxLine uint8) {
		ml := int(maxLine%16) + 1
		want := referenceLines(data, ml)
		tl := &Tailer{maxLine: ml}
		var got []string
		fn := func(l []byte) { got = append(got, string(l)) }
		step := int(cut%7) + 1
		for i := 0; i < len(data); i += step {
			tl.split(fn, data[i:min(i+step, len(data))])
		}
		if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("cut %d max %d: got %q want %q", step, ml, got, want)
		}
	})
}

// referenceLines is what the Tailer must deliver for data read at once.
func referenceLines(data []byte, maxLine int) []string {
	var out []string
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if len(data) > maxLine { // cut as soon as it is too long
				out = append(out, trimCR(data[:maxLine]))
			}
			return out
		}
		l := data[:i]
		if len(l) > maxLine {
			l = l[:maxLine]
		}
		out = append(out, trimCR(l))
		data = data[i+1:]
	}
}

func trimCR(b []byte) string { return string(bytes.TrimSuffix(b, []byte("\r"))) }
