// Package natsembed starts an in-process nats-server with JetStream, for
// tests and for `vigil demo`. Production uses an external NATS cluster.
package natsembed

import (
	"fmt"
	"net"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options of an embedded server. The zero value picks a random loopback
// port and a fresh temporary store directory.
type Options struct {
	// Port 0 picks a free port (-1 in nats-server terms).
	Port int
	// StoreDir holds JetStream files; "" creates a temporary directory that
	// Shutdown removes.
	StoreDir string
}

// Server is a running embedded nats-server.
type Server struct {
	srv     *server.Server
	tempDir string
	opts    Options
}

// Start runs a nats-server with JetStream on 127.0.0.1 and waits until it
// accepts connections.
func Start(o Options) (*Server, error) {
	s := &Server{opts: o}
	if o.StoreDir == "" {
		dir, err := os.MkdirTemp("", "vigil-nats-*")
		if err != nil {
			return nil, fmt.Errorf("nats store dir: %w", err)
		}
		s.tempDir = dir
		s.opts.StoreDir = dir
	}
	if err := s.start(); err != nil {
		s.removeTemp()
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	port := s.opts.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	srv, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  s.opts.StoreDir,
		NoLog:     true,
		NoSigs:    true,
		// Telemetry batches may be large; leave headroom above the
		// controller's own limit so it can count oversize batches.
		MaxPayload: 8 << 20,
	})
	if err != nil {
		return fmt.Errorf("nats server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return fmt.Errorf("nats server: not ready after 10s")
	}
	s.srv = srv
	// Keep the chosen port so that a restart serves the same address and
	// clients reconnect to it.
	if addr, ok := srv.Addr().(*net.TCPAddr); ok {
		s.opts.Port = addr.Port
	}
	return nil
}

// URL is the client URL, nats://127.0.0.1:<port>.
func (s *Server) URL() string { return s.srv.ClientURL() }

// Port is the client port.
func (s *Server) Port() int { return s.opts.Port }

// StoreDir is the JetStream store directory.
func (s *Server) StoreDir() string { return s.opts.StoreDir }

// Stop shuts the server down but keeps its store, so Restart can bring it
// back with the same streams, on the same port (for outage tests).
func (s *Server) Stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	}
}

// Restart starts the server again after Stop, on the same port and store.
func (s *Server) Restart() error { return s.start() }

// Shutdown stops the server and removes a temporary store.
func (s *Server) Shutdown() {
	s.Stop()
	s.removeTemp()
}

func (s *Server) removeTemp() {
	if s.tempDir != "" {
		_ = os.RemoveAll(s.tempDir)
	}
}
