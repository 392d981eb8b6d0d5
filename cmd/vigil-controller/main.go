// Command vigil-controller consumes telemetry from NATS JetStream, runs
// detectors, forecasts and rules, dispatches actions and records history.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/vigil-sre/vigil/controller"
	"github.com/vigil-sre/vigil/internal/version"
	"github.com/vigil-sre/vigil/rules"
)

const usage = `vigil-controller — Vigil's controller: detectors, forecasts, rules, actions, history.

Usage:
  vigil-controller -config FILE        run
  vigil-controller -config FILE -check-config
                                       validate the config and its rule files, exit 0 or 1
  vigil-controller -print-example      print the documented example config
  vigil-controller -version

SIGHUP reloads the rule files (a set that does not load keeps the old rules).
Flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil-controller", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	cfgPath := fs.String("config", "", "config `file` (YAML)")
	check := fs.Bool("check-config", false, "validate config and rule files, then exit")
	example := fs.Bool("print-example", false, "print the example config and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	logJSON := fs.Bool("log-json", false, "log JSON instead of text")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	switch {
	case *showVersion:
		fmt.Fprintln(stdout, "vigil-controller", version.String())
		return 0
	case *example:
		_, _ = stdout.Write(controller.ExampleConfig)
		return 0
	case *cfgPath == "":
		fmt.Fprintln(stderr, "vigil-controller: -config is required (see -print-example)")
		return 2
	}
	var h slog.Handler = slog.NewTextHandler(stderr, nil)
	if *logJSON {
		h = slog.NewJSONHandler(stderr, nil)
	}
	log := slog.New(h)

	cfg, err := controller.LoadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	set, err := rules.LoadFiles(cfg.Rules...)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *check {
		fmt.Fprintf(stdout, "%s: ok (%d rules)\n", *cfgPath, len(set.Rules()))
		return 0
	}
	if err := serve(cfg, set, log); err != nil {
		log.Error("controller stopped", "err", err)
		return 1
	}
	return 0
}

func serve(cfg *controller.Config, set *rules.Set, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	nc, err := controller.Connect(cfg.NATS, "vigil-controller "+cfg.Name, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	c, err := controller.New(cfg, nc, set, log)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	if cfg.API.Listen != "off" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.ServeAPI(ctx, cfg.API.Listen); err != nil {
				log.Error("api", "err", err)
			}
		}()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := c.Reload(ctx); err != nil {
					log.Error("rule reload refused, old rules kept", "err", err)
				} else {
					log.Info("rules reloaded")
				}
			}
		}
	}()
	log.Info("controller starting", "name", cfg.Name, "nats", cfg.NATS.URL.String(), "rules", len(set.Rules()), "version", version.String())
	err = c.Run(ctx)
	stop()
	wg.Wait()
	return err
}
