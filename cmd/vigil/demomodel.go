package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

const demoModelUsage = `Usage: vigil demo-model [--listen ADDR] [--name NAME]

A stand-in model server for the docker-compose demo's failover: two of them
are the primary and the hot standby of the service "llm". It answers
  GET  /healthz      200 "ok", or 503 after POST /fault (until POST /recover)
  POST /v1/predict   {"member": NAME, "score": S}, S in [0,1) from the request body
SIGINT or SIGTERM stops it.

Flags:
`

func cmdDemoModel(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil demo-model", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, demoModelUsage); fs.PrintDefaults() }
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve on")
	name := fs.String("name", "", "member name in answers (default: the host name)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *name == "" {
		*name, _ = os.Hostname()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Addr: *listen, Handler: demoModelHandler(*name), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Fprintf(stdout, "demo model %s serving on %s\n", *name, *listen)
	err := srv.ListenAndServe()
	stop()
	<-done
	if !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(stderr, "vigil demo-model:", err)
		return 1
	}
	return 0
}

// demoModelHandler serves health, fault injection and predictions. The
// score is a hash of the request body, so the same input gets the same
// answer from either member.
func demoModelHandler(name string) http.Handler {
	var faulty atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if faulty.Load() {
			http.Error(w, "fault injected", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("POST /fault", func(w http.ResponseWriter, _ *http.Request) { faulty.Store(true) })
	mux.HandleFunc("POST /recover", func(w http.ResponseWriter, _ *http.Request) { faulty.Store(false) })
	mux.HandleFunc("POST /v1/predict", func(w http.ResponseWriter, r *http.Request) {
		h := fnv.New64a()
		if _, err := io.Copy(h, http.MaxBytesReader(w, r.Body, 1<<20)); err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"member": name, "score": float64(h.Sum64()%1000) / 1000})
	})
	return mux
}
