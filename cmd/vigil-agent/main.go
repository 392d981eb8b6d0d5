// Command vigil-agent runs on every host: it collects the host's signals
// (CPU, memory, load, disks, network) every interval and publishes them to
// NATS JetStream as InfluxDB line protocol, one batch per tick, keeping
// unacknowledged batches and re-sending them in order when NATS is back.
//
// It deliberately links no controller dependency (expr, the InfluxDB
// client, nats-server); a test enforces it.
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
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/vigil-sre/vigil/agent"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version is used.
var version = ""

const usage = `vigil-agent collects host signals and publishes them to NATS JetStream.

Usage:
  vigil-agent [-config FILE] [-log-format text|json] [-log-level LEVEL]
  vigil-agent -check-config -config FILE
  vigil-agent -print-example
  vigil-agent -version

Every tick (interval, default 10s) the enabled collectors (%s)
run in parallel; their points, tagged host=<host>, go as one InfluxDB
line-protocol message to vigil.telemetry.<host> with the headers
Vigil-Run, Vigil-Seq and Nats-Msg-Id. While NATS is away or not
acknowledging, batches go to the disk spool (<state_dir>/spool, bounded by
spool.max_bytes; the oldest are dropped and counted when it is full) and are
re-sent in order with their original headers and timestamps, also after a
restart. state_dir defaults to $STATE_DIRECTORY (systemd), /var/lib/vigil-agent
as root, else $XDG_STATE_HOME/vigil-agent. Without -config the built-in
defaults apply (host name of the system, NATS at nats://127.0.0.1:4222, every
default collector). SIGINT or SIGTERM stops the agent after it tried to send
its backlog for publish.shutdown_grace; what is left stays in the spool.

Flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main with its outputs and exit code made testable.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration `file` (strict: unknown keys are errors)")
	check := fs.Bool("check-config", false, "validate the configuration, print the errors (file:line:col) and exit 0 or 1")
	example := fs.Bool("print-example", false, "print a documented example configuration and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	logFormat := fs.String("log-format", "text", "log format on stderr: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), usage, strings.Join(agent.Registered(), ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vigil-agent: unexpected argument %q (see -help)\n", fs.Arg(0))
		return 2
	}
	switch {
	case *showVersion:
		fmt.Fprintln(stdout, "vigil-agent", versionString())
		return 0
	case *example:
		_, _ = stdout.Write(agent.ExampleConfig)
		return 0
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "vigil-agent:", err)
		return 2
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *check {
		fmt.Fprintf(stdout, "%s: ok (host %s, interval %s, nats %s, spool %s, metrics %s)\n", configName(*configPath),
			cfg.Host, cfg.Interval, cfg.NATS.URL, orOff(cfg.SpoolDir()), orOff(cfg.MetricsAddr()))
		return 0
	}
	a, err := agent.New(cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, "vigil-agent:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("vigil-agent starting", "version", versionString(), "config", configName(*configPath))
	if err := a.Run(ctx); err != nil {
		log.Error("vigil-agent failed", "err", err)
		return 1
	}
	return 0
}

// loadConfig reads path, or returns the validated defaults for "", and
// sets the command's default state directory when none is configured.
func loadConfig(path string) (cfg agent.Config, err error) {
	if path != "" {
		cfg, err = agent.LoadConfig(path)
	} else if err = cfg.WithDefaults(); err == nil {
		err = cfg.Validate(nil)
	}
	if err == nil && cfg.StateDir == "" {
		cfg.StateDir = agent.DefaultStateDir()
	}
	return cfg, err
}

func orOff(s string) string {
	if s == "" {
		return "off"
	}
	return s
}

func configName(path string) string {
	if path == "" {
		return "built-in defaults"
	}
	return path
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: want text or json", format)
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
