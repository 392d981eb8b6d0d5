package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

const (
	maxReportedErrors = 10  // errors listed in a response
	applyChunk        = 256 // decoded lines applied per lock
)

// ingestResult is the response to one request (and the tally of one log poll).
type ingestResult struct {
	Accepted int      `json:"accepted"`
	Rejected int      `json:"rejected"`
	Errors   []string `json:"errors,omitempty"` // the first few, "line N: field "x": ..."
	Error    string   `json:"error,omitempty"`  // a problem with the whole request
}

func (r *ingestResult) reject(line int, err error) {
	r.Rejected++
	if len(r.Errors) < maxReportedErrors {
		r.Errors = append(r.Errors, fmt.Sprintf("line %d: %v", line, err))
	}
}

// batcher decodes lines and applies them to m in chunks, one lock per chunk.
type batcher struct {
	m     *Models
	res   ingestResult
	obs   []observation
	nums  []int // line numbers of obs
	isLog bool
}

func (b *batcher) line(n int, line []byte) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return
	}
	o, err := decodeObservation(line)
	if err != nil {
		b.res.reject(n, err)
		return
	}
	b.obs = append(b.obs, o)
	b.nums = append(b.nums, n)
	if len(b.obs) >= applyChunk {
		b.flush()
	}
}

// flush applies the decoded lines and counts the lines seen since the last flush.
func (b *batcher) flush() {
	now := time.Now()
	m := b.m
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range b.obs {
		if err := m.apply(&b.obs[i], now); err != nil {
			b.res.reject(b.nums[i], err)
		} else {
			b.res.Accepted++
		}
	}
	b.obs, b.nums = b.obs[:0], b.nums[:0]
}

// done flushes and adds the result to the counters.
func (b *batcher) done() {
	b.flush()
	m := b.m
	m.mu.Lock()
	defer m.mu.Unlock()
	n := uint64(b.res.Accepted + b.res.Rejected)
	m.st.Lines += n
	m.st.Accepted += uint64(b.res.Accepted)
	m.st.Rejected += uint64(b.res.Rejected)
	if b.isLog {
		m.st.LogLines += n
		m.st.LogRejected += uint64(b.res.Rejected)
	}
}

func (m *Models) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/observations", m.handleObservations)
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	return mux
}

// handleObservations reads an NDJSON body line by line. Good lines are kept even when others
// are bad; any bad line makes the answer 400 with the first errors. A body over max_body_bytes
// gets 413 (lines before the limit are kept and counted in the answer).
func (m *Models) handleObservations(w http.ResponseWriter, r *http.Request) {
	m.sem <- struct{}{}
	defer func() { <-m.sem }()
	b := &batcher{m: m}
	m.mu.Lock()
	m.st.Requests++
	m.mu.Unlock()
	limit := int64(m.cfg.MaxBodyBytes)
	if r.ContentLength > limit {
		m.countTooLarge()
		b.res.Error = fmt.Sprintf("body of %d bytes is larger than max_body_bytes %d", r.ContentLength, limit)
		writeResult(w, http.StatusRequestEntityTooLarge, &b.res)
		return
	}
	err := readLines(http.MaxBytesReader(w, r.Body, limit), m.cfg.MaxLineBytes, b.line, func(n int) {
		b.res.reject(n, fmt.Errorf("longer than max_line_bytes %d", m.cfg.MaxLineBytes))
	})
	b.done()
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		m.countTooLarge()
		b.res.Error = fmt.Sprintf("body larger than max_body_bytes %d: read stopped there", limit)
		writeResult(w, http.StatusRequestEntityTooLarge, &b.res)
	case err != nil:
		b.res.Error = "reading the body: " + err.Error()
		writeResult(w, http.StatusBadRequest, &b.res)
	case b.res.Rejected > 0:
		writeResult(w, http.StatusBadRequest, &b.res)
	case b.res.Accepted == 0:
		b.res.Error = "no observation in the body (NDJSON: one JSON object per line)"
		writeResult(w, http.StatusBadRequest, &b.res)
	default:
		writeResult(w, http.StatusOK, &b.res)
	}
}

func (m *Models) countTooLarge() {
	m.mu.Lock()
	m.st.TooLarge++
	m.mu.Unlock()
}

func writeResult(w http.ResponseWriter, status int, res *ingestResult) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(res)
}

// readLines calls fn for every line of r (numbered from 1, without the newline; a last line
// may lack it) and long(n) for lines over maxLine bytes, which are skipped.
func readLines(r io.Reader, maxLine int, fn func(n int, line []byte), long func(n int)) error {
	br := bufio.NewReaderSize(r, maxLine+1)
	n := 0
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			n++
			long(n)
			for errors.Is(err, bufio.ErrBufferFull) { // skip the rest of the line
				_, err = br.ReadSlice('\n')
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			continue
		}
		if len(line) > 0 {
			n++
			fn(n, line)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// followLogs polls every prediction log each poll_interval until ctx ends.
func (m *Models) followLogs(ctx context.Context) {
	if len(m.tailers) == 0 {
		<-ctx.Done()
		return
	}
	tick := time.NewTicker(m.cfg.PollInterval)
	defer tick.Stop()
	for {
		for _, t := range m.tailers {
			m.pollLog(t)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// pollLog reads the new lines of one log; bad lines are counted and the first of a minute
// logged.
func (m *Models) pollLog(t *modelTail) {
	b := &batcher{m: m, isLog: true}
	n := 0
	_, err := t.t.Poll(func(line []byte) {
		n++
		if len(line) > m.cfg.MaxLineBytes {
			b.res.reject(n, fmt.Errorf("longer than max_line_bytes %d", m.cfg.MaxLineBytes))
			return
		}
		b.line(n, line)
	})
	b.done()
	now := time.Now()
	if err != nil && now.Sub(t.lastWarn) >= time.Minute {
		t.lastWarn = now
		m.log.Warn("prediction log unreadable", "path", t.path, "err", err)
	}
	if len(b.res.Errors) > 0 && now.Sub(t.lastWarn) >= time.Minute {
		t.lastWarn = now
		m.log.Warn("bad lines in prediction log (line numbers count from this poll's first)", "path", t.path,
			"rejected", b.res.Rejected, "lines", n, "first_error", b.res.Errors[0])
	}
}
