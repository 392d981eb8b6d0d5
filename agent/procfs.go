package agent

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// Helpers for the collectors that read /proc and /sys themselves (psi, fd,
// netstat, boot, procstat, sensors): paths that follow HOST_PROC and
// HOST_SYS as gopsutil does, and reads into reused buffers, so that a tick
// allocates nothing.

// hostProc is /proc/<elem...>, below $HOST_PROC when set.
func hostProc(elem ...string) string {
	root := os.Getenv("HOST_PROC")
	if root == "" {
		root = "/proc"
	}
	return filepath.Join(append([]string{root}, elem...)...)
}

// hostSys is /sys/<elem...>, below $HOST_SYS when set.
func hostSys(elem ...string) string {
	root := os.Getenv("HOST_SYS")
	if root == "" {
		root = "/sys"
	}
	return filepath.Join(append([]string{root}, elem...)...)
}

// readInto reads the whole (small) file at path into buf, growing it when
// needed, and returns the content.
func readInto(path string, buf *[]byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if cap(*buf) == 0 {
		*buf = make([]byte, 0, 4096)
	}
	b := (*buf)[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) || n == 0 && err == nil {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	*buf = b
	return b, nil
}

// parseUint parses a decimal unsigned integer without allocating.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// parseFloat parses a decimal number (as /proc writes them).
func parseFloat(b []byte) (float64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	// Fast path: digits with at most one '.', as in "12.05".
	var ip, fp, scale uint64 = 0, 0, 1
	dot := false
	for _, c := range b {
		switch {
		case c == '.' && !dot:
			dot = true
		case c >= '0' && c <= '9' && !dot && ip < 1<<50:
			ip = ip*10 + uint64(c-'0')
		case c >= '0' && c <= '9' && dot && scale < 1e15:
			fp = fp*10 + uint64(c-'0')
			scale *= 10
		default:
			v, err := strconv.ParseFloat(string(b), 64)
			return v, err == nil
		}
	}
	return float64(ip) + float64(fp)/float64(scale), true
}

// fieldsN splits line at runs of spaces and tabs into at most len(dst)
// fields, without allocating; it returns how many it found.
func fieldsN(line []byte, dst [][]byte) int {
	n := 0
	for len(line) > 0 && n < len(dst) {
		i := 0
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		line = line[i:]
		if len(line) == 0 {
			break
		}
		j := bytes.IndexAny(line, " \t")
		if j < 0 {
			j = len(line)
		}
		dst[n] = line[:j]
		n++
		line = line[j:]
	}
	return n
}

// nextLine splits off the first line of b.
func nextLine(b []byte) (line, rest []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

// procFile is a /proc file kept open and re-read from offset 0 on every
// read: procfs regenerates the content for each read at offset 0, and one
// pread replaces open, read and close.
type procFile struct {
	path string
	f    *os.File
	buf  []byte
}

// read returns the file's current content, valid until the next read. A
// failed read closes the file; the next read opens it again.
func (p *procFile) read() ([]byte, error) {
	if p.f == nil {
		f, err := os.Open(p.path)
		if err != nil {
			return nil, err
		}
		p.f = f
	}
	if cap(p.buf) == 0 {
		p.buf = make([]byte, 4096)
	}
	for {
		p.buf = p.buf[:cap(p.buf)]
		n, err := p.f.ReadAt(p.buf, 0)
		if n == len(p.buf) && len(p.buf) < 1<<20 {
			p.buf = make([]byte, 2*len(p.buf)) // did not fit: read again, larger
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			p.close()
			return nil, err
		}
		return p.buf[:n], nil
	}
}

func (p *procFile) close() error {
	if p.f == nil {
		return nil
	}
	err := p.f.Close()
	p.f = nil
	return err
}
