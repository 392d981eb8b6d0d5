// Package influxtest runs a real InfluxDB 1.8.10 (influxd) for tests and the
// local demo: loopback ports chosen at random, data in a private directory,
// flux enabled, authentication off (any token, e.g. "user:password", is
// accepted). The binary lives in <repo root>/.bin/influxd and is installed by
// scripts/install-influxd.sh when missing.
//
// Tests use Start(t); other programs use Launch and Close.
package influxtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults of a launched server.
const (
	// DefaultDatabase is created at launch.
	DefaultDatabase = "vigil"
	// DefaultToken is accepted because authentication is off.
	DefaultToken = "user:password"
)

// Options of Launch. The zero value is usable.
type Options struct {
	// Dir holds config, data, meta, wal and the log file influxd.log.
	// "" creates a temporary directory that Close removes.
	Dir string
	// Binary is the influxd executable; "" uses Binary().
	Binary string
	// Database created at launch; "" means DefaultDatabase.
	Database string
	// ReadyTimeout bounds the wait for /ping after a start. Default 60s.
	ReadyTimeout time.Duration
	// DisableFlux turns Flux off: every start is then ~2.5 s faster (the
	// Flux standard library is compiled at start), for tests that only use
	// InfluxQL and the write API.
	DisableFlux bool
}

// Server is a running (or stopped) influxd process.
type Server struct {
	opts     Options
	ownDir   bool
	httpPort int
	rpcPort  int
	client   *http.Client

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	waitErr error
	logFile *os.File
}

// Launch writes a config into the directory, starts influxd on free
// loopback ports, waits until it answers /ping and creates the database.
func Launch(o Options) (*Server, error) {
	s := &Server{opts: o, client: &http.Client{Timeout: 30 * time.Second}}
	if s.opts.Database == "" {
		s.opts.Database = DefaultDatabase
	}
	if s.opts.ReadyTimeout == 0 {
		s.opts.ReadyTimeout = 60 * time.Second
	}
	if s.opts.Binary == "" {
		bin, err := Binary()
		if err != nil {
			return nil, err
		}
		s.opts.Binary = bin
	}
	if s.opts.Dir == "" {
		dir, err := os.MkdirTemp("", "vigil-influxd-*")
		if err != nil {
			return nil, fmt.Errorf("influxd dir: %w", err)
		}
		s.opts.Dir, s.ownDir = dir, true
	}
	ports, err := freePorts(2)
	if err != nil {
		s.removeOwnDir()
		return nil, err
	}
	s.httpPort, s.rpcPort = ports[0], ports[1]
	if err := s.writeConfig(); err != nil {
		s.removeOwnDir()
		return nil, err
	}
	if err := s.Resume(); err != nil {
		s.removeOwnDir()
		return nil, err
	}
	if err := s.Exec(context.Background(), "CREATE DATABASE "+quoteIdent(s.opts.Database)); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// URL is the HTTP endpoint, http://127.0.0.1:<port>.
func (s *Server) URL() string { return "http://127.0.0.1:" + strconv.Itoa(s.httpPort) }

// Token for influxdb-client-go; authentication is off, so any is accepted.
func (s *Server) Token() string { return DefaultToken }

// Org for influxdb-client-go; InfluxDB 1.8 ignores it.
func (s *Server) Org() string { return "" }

// Database created at launch.
func (s *Server) Database() string { return s.opts.Database }

// Bucket is "<database>/autogen", the v2-API name of the default retention
// policy.
func (s *Server) Bucket() string { return s.opts.Database + "/autogen" }

// Dir is the directory holding config, data and the log file.
func (s *Server) Dir() string { return s.opts.Dir }

// LogPath is influxd's log file (stdout and stderr of every start).
func (s *Server) LogPath() string { return filepath.Join(s.opts.Dir, "influxd.log") }

// Running reports whether the process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runningLocked()
}

func (s *Server) runningLocked() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// Resume starts the process (again) on the same ports and data and waits
// until it answers /ping. It does nothing when the process is running.
func (s *Server) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runningLocked() {
		return nil
	}
	s.closeLogLocked()
	logFile, err := os.OpenFile(s.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("influxd log: %w", err)
	}
	cmd := exec.Command(s.opts.Binary, "run", "-config", s.configPath())
	cmd.Dir = s.opts.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("start influxd: %w", err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited, s.logFile, s.waitErr = cmd, exited, logFile, nil
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		close(exited)
	}()
	if err := s.waitReady(exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("influxd on %s: %w; log tail:\n%s", s.URL(), err, s.logTail(2048))
	}
	return nil
}

// waitReady polls /ping until it answers 204, the process exits, or the
// ready timeout passes.
func (s *Server) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(s.opts.ReadyTimeout)
	c := &http.Client{Timeout: time.Second}
	for {
		resp, err := c.Get(s.URL() + "/ping")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("process exited before it was ready")
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v", s.opts.ReadyTimeout)
		}
	}
}

// Halt stops the process (SIGTERM, SIGKILL after 10 s) and keeps its data,
// so Resume can bring it back. It does nothing when it is not running.
func (s *Server) Halt() error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	s.mu.Lock()
	s.closeLogLocked()
	s.mu.Unlock()
	return nil
}

// Close stops the process and removes the directory if Launch created it.
func (s *Server) Close() error {
	err := s.Halt()
	s.removeOwnDir()
	return err
}

func (s *Server) closeLogLocked() {
	if s.logFile != nil {
		_ = s.logFile.Close()
		s.logFile = nil
	}
}

func (s *Server) removeOwnDir() {
	if s.ownDir {
		_ = os.RemoveAll(s.opts.Dir)
	}
}

func (s *Server) logTail(n int64) string {
	b, err := os.ReadFile(s.LogPath())
	if err != nil {
		return err.Error()
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}

func (s *Server) configPath() string { return filepath.Join(s.opts.Dir, "influxd.conf") }

// writeConfig writes a quiet single-node configuration: loopback only,
// no usage reporting, no _internal monitoring, flux on unless disabled.
func (s *Server) writeConfig() error {
	d := s.opts.Dir
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"

[meta]
  dir = %q
  logging-enabled = false

[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:%d"
  auth-enabled = false
  log-enabled = false
  flux-enabled = %t
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[continuous_queries]
  log-enabled = false
`, s.rpcPort, filepath.Join(d, "meta"), filepath.Join(d, "data"), filepath.Join(d, "wal"), s.httpPort, !s.opts.DisableFlux)
	if err := os.WriteFile(s.configPath(), []byte(conf), 0o644); err != nil {
		return fmt.Errorf("influxd config: %w", err)
	}
	return nil
}

// freePorts reserves n distinct free loopback ports and releases them.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Exec runs InfluxQL statements that return no rows (CREATE, DROP, ...).
func (s *Server) Exec(ctx context.Context, influxql string) error {
	_, err := s.QueryContext(ctx, influxql)
	return err
}

// WriteLines writes line protocol (nanosecond timestamps) into the database
// through the 1.x /write endpoint.
func (s *Server) WriteLines(ctx context.Context, lines string) error {
	u := s.URL() + "/write?" + url.Values{"db": {s.opts.Database}, "precision": {"ns"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewBufferString(lines))
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("influxd write: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("influxd write: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}
