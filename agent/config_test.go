package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExampleConfig(t *testing.T) {
	c, err := ParseConfig("example.yaml", ExampleConfig)
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	if c.Host != "web-1" || c.Interval != 10*time.Second || *c.Jitter != time.Second {
		t.Errorf("decoded %+v", c)
	}
	if c.Publish.MaxPendingBatches != 1000 || c.NATS.URL != "nats://127.0.0.1:4222" {
		t.Errorf("publish/nats: %+v %+v", c.Publish, c.NATS)
	}
	if got := c.Collectors["net"].IgnoreInterfaces; strings.Join(got, ",") != "lo,veth*,docker*" {
		t.Errorf("net ignore_interfaces = %v", got)
	}
	if c.collectorTimeout("disk") != 3*time.Second || c.collectorTimeout("cpu") != 5*time.Second {
		t.Errorf("timeouts: disk %v cpu %v", c.collectorTimeout("disk"), c.collectorTimeout("cpu"))
	}
	// Every registered collector is documented in the example.
	for _, name := range Registered() {
		if _, ok := c.Collectors[name]; !ok {
			t.Errorf("collector %s missing from example.yaml", name)
		}
	}
	// The example builds an agent.
	if _, err := New(c, nil); err != nil {
		t.Fatalf("New(example): %v", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := ParseConfig("empty.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if c.Host != host || c.Interval != DefaultInterval || *c.Jitter != DefaultInterval/10 {
		t.Errorf("defaults: host %q interval %v jitter %v", c.Host, c.Interval, *c.Jitter)
	}
	if c.NATS.URL != DefaultURL || c.NATS.Name != "vigil-agent-"+host || c.NATS.ReconnectWait != 2*time.Second {
		t.Errorf("nats defaults: %+v", c.NATS)
	}
	if c.Publish.Timeout != 5*time.Second || c.Publish.MaxPendingBatches != 1000 || !*c.SelfMetrics {
		t.Errorf("publish defaults: %+v", c.Publish)
	}
	for _, name := range Registered() {
		optIn := name == "procstat" || name == "probes" || name == "logs"
		if c.collectorEnabled(name) == optIn {
			t.Errorf("%s: enabled by default %v, want %v", name, c.collectorEnabled(name), !optIn)
		}
	}
	c, err = ParseConfig("j.yaml", []byte("interval: 1s\njitter: 0s\n"))
	if err != nil || *c.Jitter != 0 {
		t.Fatalf("explicit zero jitter: %v %v", err, c.Jitter)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Setenv("VIGIL_TEST_NATS", "nats://10.0.0.1:4222")
	cases := []struct{ name, yaml, want string }{
		{"unknown key", "host: a\nintervall: 5s\n", `agent.yaml:2:1: unknown key "intervall"`},
		{"unknown nested", "nats:\n  urll: x\n", `agent.yaml:2:3: unknown key "urll" in nats`},
		{"unknown collector", "collectors:\n  gpux: {}\n", `agent.yaml:2:9: unknown collector "gpux"`},
		{"option of another collector", "collectors:\n  cpu:\n    ignore_fs: [tmpfs]\n", `agent.yaml:3:16: collector cpu has no option "ignore_fs"`},
		{"unknown collector option", "collectors:\n  net:\n    ignore: [lo]\n", `agent.yaml:3:5: unknown key "ignore" in collectors.net`},
		{"bad glob", "collectors:\n  net:\n    ignore_interfaces: [\"[\"]\n", `agent.yaml:3:5: collector net: ignore_interfaces: bad pattern`},
		{"jitter too large", "interval: 1s\njitter: 1s\n", `agent.yaml:2:9: jitter 1s must be`},
		{"interval too short", "interval: 1ms\n", `agent.yaml:1:11: interval 1ms is too short`},
		{"bad duration", "publish:\n  timeout: soon\n", `agent.yaml:2:12: publish.timeout:`},
		{"bad url", "nats:\n  url: http://x:4222\n", `agent.yaml:2:8: nats.url "http://x:4222"`},
		{"user without password", "nats:\n  user: vigil\n", `agent.yaml:2:9: nats.user and nats.password go together`},
		{"missing creds", "nats:\n  creds: /nonexistent/x.creds\n", `agent.yaml:2:10: nats.creds:`},
		{"env unset", "nats:\n  url: ${VIGIL_UNSET_FOR_TEST}\n", `VIGIL_UNSET_FOR_TEST is not set`},
		{"backlog", "publish:\n  max_pending_batches: -1\n", `agent.yaml:2:24: publish.max_pending_batches must be at least 1`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig("agent.yaml", []byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, c.want)
			}
		})
	}
	// ${ENV} is expanded in the URL.
	c, err := ParseConfig("agent.yaml", []byte("nats:\n  url: ${VIGIL_TEST_NATS}\n"))
	if err != nil || c.NATS.URL != "nats://10.0.0.1:4222" {
		t.Fatalf("env url: %v %q", err, c.NATS.URL)
	}
}

func TestLoadConfigFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(p, []byte("host: h\ncollectors:\n  mem:\n    enabled: false\n    timeout: -1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(p)
	if err == nil || !strings.Contains(err.Error(), p+":5:14: collectors.mem.timeout must not be negative") {
		t.Fatalf("LoadConfig: %v", err)
	}
	if _, err := LoadConfig(p + ".missing"); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestDisableCollectors(t *testing.T) {
	var c Config
	c.Host = "h"
	c.DisableCollectors()
	a, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(a.Stats().Collectors); n != 0 {
		t.Fatalf("%d collectors after DisableCollectors", n)
	}
}
