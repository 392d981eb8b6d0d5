package nab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
)

// ScoreFunc scores one observation (t in Unix nanoseconds) of one series; it returns the
// anomaly score in [0,1] to write for that row.
type ScoreFunc func(t int64, x float64) float64

// RunStats summarises a corpus run.
type RunStats struct {
	Files int
	Rows  int
}

// Run streams every file through a fresh ScoreFunc from newScorer, row by row, and writes
// ResultPath(out, detector, key) for each. Files are processed by `workers` goroutines (≥ 1),
// all of which have returned when Run does. The first error stops the run and is returned.
func Run(ctx context.Context, files []DataFile, out, detector string, workers int,
	newScorer func() (ScoreFunc, error)) (RunStats, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan DataFile)
	var (
		mu    sync.Mutex
		stats RunStats
		first error
		wg    sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
		cancel()
	}
	for range max(workers, 1) {
		wg.Go(func() {
			for df := range jobs {
				n, err := runFile(df, ResultPath(out, detector, df.Key), newScorer)
				if err != nil {
					fail(err)
					continue
				}
				mu.Lock()
				stats.Files++
				stats.Rows += n
				mu.Unlock()
			}
		})
	}
feed:
	for _, df := range files {
		select {
		case jobs <- df:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if first == nil {
		first = ctx.Err() // the caller's context ended the run
	}
	return stats, first
}

func runFile(df DataFile, dst string, newScorer func() (ScoreFunc, error)) (int, error) {
	score, err := newScorer()
	if err != nil {
		return 0, err
	}
	in, err := os.Open(df.Path)
	if err != nil {
		return 0, fmt.Errorf("nab: %w", err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, fmt.Errorf("nab: %w", err)
	}
	f, err := os.Create(dst)
	if err != nil {
		return 0, fmt.Errorf("nab: %w", err)
	}
	n, err := stream(NewReader(in, df.Path), f, score)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("nab: %w", cerr)
	}
	return n, err
}

func stream(r *Reader, w io.Writer, score ScoreFunc) (int, error) {
	rw, err := NewResultWriter(w)
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		row, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, fmt.Errorf("nab: %w", err)
		}
		s := score(row.Time.UnixNano(), row.Value)
		if !(s >= 0) { // NaN too
			s = 0
		}
		if err := rw.Write(row.Stamp, row.Value, math.Min(s, 1)); err != nil {
			return n, fmt.Errorf("nab: %w", err)
		}
		n++
	}
	return n, rw.Flush()
}
