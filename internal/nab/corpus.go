// Package nab reads the Numenta Anomaly Benchmark corpus, writes detector results in NAB's
// layout and scores them the NAB way (see score.go). It does no detection itself.
package nab

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TimeLayout is the timestamp format of NAB data files; label files add ".000000".
const TimeLayout = "2006-01-02 15:04:05"

// Row is one line of a NAB data file.
type Row struct {
	Stamp string    // the timestamp exactly as written in the file
	Time  time.Time // Stamp parsed, UTC
	Value float64
}

// Reader streams the rows of one NAB data file (`timestamp,value` with a header line).
type Reader struct {
	sc   *bufio.Scanner
	name string
	line int
}

// NewReader returns a Reader over r; name is used in error messages (file name).
func NewReader(r io.Reader, name string) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	return &Reader{sc: sc, name: name}
}

// Next returns the next data row, io.EOF at the end, or an error naming file and line.
// The header line (first line, starting with "timestamp") is skipped; blank lines are skipped.
func (r *Reader) Next() (Row, error) {
	for r.sc.Scan() {
		r.line++
		text := strings.TrimSpace(r.sc.Text())
		if text == "" || (r.line == 1 && strings.HasPrefix(text, "timestamp")) {
			continue
		}
		row, err := parseRow(text)
		if err != nil {
			return Row{}, fmt.Errorf("%s:%d: %w", r.name, r.line, err)
		}
		return row, nil
	}
	if err := r.sc.Err(); err != nil {
		return Row{}, fmt.Errorf("%s:%d: %w", r.name, r.line+1, err)
	}
	return Row{}, io.EOF
}

func parseRow(text string) (Row, error) {
	stamp, val, ok := strings.Cut(text, ",")
	if !ok {
		return Row{}, fmt.Errorf("want \"timestamp,value\", got %q", text)
	}
	ts, err := ParseTime(stamp)
	if err != nil {
		return Row{}, err
	}
	// Results files have a third column; data files only two. Take the second either way.
	val, _, _ = strings.Cut(val, ",")
	v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
	if err != nil {
		return Row{}, fmt.Errorf("value %q: not a number", val)
	}
	return Row{Stamp: stamp, Time: ts, Value: v}, nil
}

// ParseTime parses a NAB timestamp, with or without fractional seconds, as UTC.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	t, err := time.Parse("2006-01-02 15:04:05.999999999", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: want %q", s, TimeLayout)
	}
	return t, nil
}

// DataFile is one series of a corpus: Key is "<category>/<file>.csv", as in label files.
type DataFile struct {
	Key  string
	Path string
}

// ListData returns the CSV files directly under DIR/<category>/, sorted by key.
func ListData(dir string) ([]DataFile, error) {
	cats, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("nab: data dir: %w", err)
	}
	var out []DataFile
	for _, c := range cats {
		if !c.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, c.Name()))
		if err != nil {
			return nil, fmt.Errorf("nab: data dir: %w", err)
		}
		for _, f := range files {
			if f.IsDir() || !strings.HasSuffix(f.Name(), ".csv") {
				continue
			}
			out = append(out, DataFile{
				Key:  c.Name() + "/" + f.Name(),
				Path: filepath.Join(dir, c.Name(), f.Name()),
			})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("nab: no <category>/<file>.csv under %s", dir)
	}
	slices.SortFunc(out, func(a, b DataFile) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// ResultPath returns OUT/<detector>/<category>/<detector>_<file>.csv for a data key.
func ResultPath(out, detector, key string) string {
	cat, file, _ := strings.Cut(key, "/")
	return filepath.Join(out, detector, cat, detector+"_"+file)
}

// ListResults maps the result files under dir (= OUT/<detector>) back to data keys. The detector
// name is the base name of dir; a file not named <detector>_<file>.csv is an error.
func ListResults(dir string) (map[string]string, error) {
	det := filepath.Base(filepath.Clean(dir))
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".csv") {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		cat := filepath.Dir(rel)
		if cat == "." || strings.ContainsRune(cat, filepath.Separator) {
			return fmt.Errorf("%s: want %s/<category>/%s_<file>.csv", path, dir, det)
		}
		file, ok := strings.CutPrefix(d.Name(), det+"_")
		if !ok {
			return fmt.Errorf("%s: file name does not start with %q", path, det+"_")
		}
		out[cat+"/"+file] = path
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("nab: results: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("nab: no result files under %s", dir)
	}
	return out, nil
}

// ReadResults reads a results file (`timestamp,value,anomaly_score`) into times and scores.
func ReadResults(path string) ([]time.Time, []float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var times []time.Time
	var scores []float64
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || (line == 1 && strings.HasPrefix(text, "timestamp")) {
			continue
		}
		cols := strings.Split(text, ",")
		if len(cols) < 3 {
			return nil, nil, fmt.Errorf("%s:%d: want timestamp,value,anomaly_score", path, line)
		}
		ts, err := ParseTime(cols[0])
		if err != nil {
			return nil, nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		s, err := strconv.ParseFloat(strings.TrimSpace(cols[len(cols)-1]), 64)
		if err != nil || s != s {
			return nil, nil, fmt.Errorf("%s:%d: anomaly_score %q is not a number", path, line, cols[len(cols)-1])
		}
		times = append(times, ts)
		scores = append(scores, s)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(times) == 0 {
		return nil, nil, fmt.Errorf("%s: %w", path, errors.New("no rows"))
	}
	return times, scores, nil
}

// ResultWriter writes one results file.
type ResultWriter struct {
	w   *bufio.Writer
	buf []byte
}

// NewResultWriter writes the header and returns a writer of rows to w.
func NewResultWriter(w io.Writer) (*ResultWriter, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.WriteString("timestamp,value,anomaly_score\n"); err != nil {
		return nil, err
	}
	return &ResultWriter{w: bw, buf: make([]byte, 0, 96)}, nil
}

// Write appends one row; the timestamp is written as read, the value in shortest form.
func (rw *ResultWriter) Write(stamp string, value, score float64) error {
	b := append(rw.buf[:0], stamp...)
	b = append(b, ',')
	b = strconv.AppendFloat(b, value, 'g', -1, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, score, 'g', -1, 64)
	b = append(b, '\n')
	rw.buf = b
	_, err := rw.w.Write(b)
	return err
}

// Flush writes buffered rows to the underlying writer.
func (rw *ResultWriter) Flush() error { return rw.w.Flush() }

// LoadResults reads every results file under dir (= OUT/<detector>), sorted by key.
func LoadResults(dir string) ([]File, error) {
	paths, err := ListResults(dir)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	files := make([]File, 0, len(keys))
	for _, k := range keys {
		times, scores, err := ReadResults(paths[k])
		if err != nil {
			return nil, fmt.Errorf("nab: %w", err)
		}
		files = append(files, File{Key: k, Times: times, Scores: scores})
	}
	return files, nil
}
