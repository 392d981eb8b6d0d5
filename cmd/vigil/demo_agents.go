package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigil-sre/vigil/agent"
)

// demoAgents builds the demo's two agents: one collecting this machine's
// real signals, one for the simulated host whose only collector is the
// simulated data disk.
func demoAgents(url string, disk *simDisk, log *slog.Logger) ([]demoAgent, error) {
	local, err := agent.ParseConfig("demo-agent.yaml", []byte(fmt.Sprintf("nats:\n  url: %q\ninterval: 1s\njitter: 100ms\n", url)))
	if err != nil {
		return nil, err
	}
	la, err := agent.New(local, log.With("component", "agent"))
	if err != nil {
		return nil, err
	}
	sim, err := agent.ParseConfig("demo-sim-agent.yaml", []byte(fmt.Sprintf("host: sim-gpu-1\nnats:\n  url: %q\ninterval: 1s\njitter: 0s\nself_metrics: false\n", url)))
	if err != nil {
		return nil, err
	}
	sim.DisableCollectors()
	sa, err := agent.New(sim, log.With("component", "agent"))
	if err != nil {
		return nil, err
	}
	sa.AddCollector(disk)
	return []demoAgent{{host: local.Host, agent: la}, {host: sim.Host, agent: sa}}, nil
}

// cmdDemoBackup is the demo's backup action: it copies every regular file
// of SRC into a new snapshot directory under DST and reports what it did.
// The controller runs it through the exec action.
func cmdDemoBackup(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 {
		fmt.Fprintln(stderr, "usage: vigil demo-backup SRC DST")
		return 2
	}
	src, dst := args[0], args[1]
	snap := filepath.Join(dst, "snapshot-"+strings.ReplaceAll(nowStamp(), ":", ""))
	if err := os.MkdirAll(snap, 0o755); err != nil {
		fmt.Fprintln(stderr, "demo-backup:", err)
		return 1
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		fmt.Fprintln(stderr, "demo-backup:", err)
		return 1
	}
	var files int
	var bytes int64
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		n, err := copyFile(filepath.Join(src, e.Name()), filepath.Join(snap, e.Name()))
		if err != nil {
			fmt.Fprintln(stderr, "demo-backup:", err)
			return 1
		}
		files++
		bytes += n
	}
	fmt.Fprintf(stdout, "backed up %d files, %d bytes to %s\n", files, bytes, snap)
	return 0
}

func copyFile(src, dst string) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}
