package vigil_test

import (
	"bufio"
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/vigil-sre/vigil/agent"
	"github.com/vigil-sre/vigil/controller"
	"github.com/vigil-sre/vigil/rules"
)

// TestDockerCompose loads docker-compose.yml with the compose-spec parser
// (Docker cannot run here) and checks that it can work: every part of the
// stack is there, images are pinned or built by the Dockerfile (whose
// copied paths and built packages exist), every bind-mounted file exists in
// the repository, the controller and agent configs it mounts load and
// validate with Vigil's own loaders in the environment the compose file
// gives them, and the URLs in them, in the rules and in Grafana's
// provisioning name compose services and ports that exist.
func TestDockerCompose(t *testing.T) {
	p := loadCompose(t, "docker-compose.yml")
	checkCompose(t, p)
}

func loadCompose(t *testing.T, file string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{file}, cli.WithWorkingDirectory("."), cli.WithEnv(nil), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return p
}

// stack sorts the services by what they run.
type stack struct {
	p                           *types.Project
	root                        string
	controllers, agents, models []types.ServiceConfig
}

func checkCompose(t *testing.T, p *types.Project) {
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{p: p, root: root}
	built := checkDockerfile(t, root)
	for _, name := range p.ServiceNames() {
		svc := p.Services[name]
		s.checkImage(t, svc, built)
		s.checkBinds(t, svc)
		switch program(svc) {
		case "vigil-controller":
			s.controllers = append(s.controllers, svc)
		case "vigil-agent":
			s.agents = append(s.agents, svc)
		case "vigil":
			if len(svc.Command) > 1 && svc.Command[1] == "demo-model" {
				s.models = append(s.models, svc)
			}
		}
	}
	for _, name := range []string{"nats", "influxdb", "grafana"} {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	if len(s.controllers) != 2 || len(s.agents) < 2 || len(s.agents) > 3 || len(s.models) != 2 {
		t.Errorf("controllers %d, agents %d, demo models %d; want 2, 2–3 and 2 (primary and standby)", len(s.controllers), len(s.agents), len(s.models))
	}
	if nats, ok := p.Services["nats"]; ok && !slices.Contains(nats.Command, "-js") {
		t.Errorf("nats command %q: JetStream (-js) is off", nats.Command)
	}
	if ifx, ok := p.Services["influxdb"]; ok {
		if env(ifx, "INFLUXDB_HTTP_FLUX_ENABLED") != "true" || env(ifx, "INFLUXDB_DB") == "" || !strings.HasPrefix(ifx.Image, "influxdb:1.8") {
			t.Errorf("influxdb: image %q, flux %q, database %q: want 1.8 with Flux on and a database created at start",
				ifx.Image, env(ifx, "INFLUXDB_HTTP_FLUX_ENABLED"), env(ifx, "INFLUXDB_DB"))
		}
	}
	hostnames := map[string]bool{}
	for _, c := range append(append([]types.ServiceConfig{}, s.controllers...), s.agents...) {
		if c.Hostname == "" || hostnames[c.Hostname] {
			t.Errorf("service %s: hostname %q empty or shared: controllers and agents are named after it", c.Name, c.Hostname)
		}
		hostnames[c.Hostname] = true
	}
	bucket := ""
	for _, c := range s.controllers {
		bucket = s.checkController(t, c)
		s.dependsOn(t, c, "nats", "influxdb")
	}
	for _, a := range s.agents {
		s.checkAgent(t, a)
		s.dependsOn(t, a, "nats")
	}
	s.checkGrafana(t, bucket)
}

func program(svc types.ServiceConfig) string {
	if len(svc.Command) == 0 {
		return ""
	}
	return svc.Command[0]
}

func env(svc types.ServiceConfig, k string) string {
	if v := svc.Environment[k]; v != nil {
		return *v
	}
	return ""
}

// checkDockerfile checks the Dockerfile's COPY sources exist and returns
// the binaries it builds (name → package directory, which must exist).
func checkDockerfile(t *testing.T, root string) map[string]bool {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	built, shipped := map[string]bool{}, map[string]bool{}
	goBuild := regexp.MustCompile(`go build .*-o /out/([\w-]+) (\./cmd/[\w-]+)`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		if len(fields) > 2 && fields[0] == "COPY" {
			if strings.HasPrefix(fields[1], "--from=") {
				for _, src := range fields[2 : len(fields)-1] {
					shipped[strings.TrimPrefix(src, "/out/")] = true
				}
				continue
			}
			for _, src := range fields[1 : len(fields)-1] {
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("Dockerfile: COPY %s: %v", src, err)
				}
			}
		}
		if m := goBuild.FindStringSubmatch(line); m != nil {
			if _, err := os.Stat(filepath.Join(root, m[2], "main.go")); err != nil {
				t.Errorf("Dockerfile builds %s from %s: %v", m[1], m[2], err)
			}
			built[m[1]] = true
		}
	}
	for name := range built {
		if !shipped[name] {
			t.Errorf("Dockerfile builds %s but the final image does not copy it", name)
		}
	}
	if len(built) != 3 {
		t.Errorf("Dockerfile builds %v, want vigil, vigil-agent and vigil-controller", built)
	}
	return built
}

// checkImage: a service is built by the Dockerfile (and runs one of its
// binaries) or uses a pinned image.
func (s *stack) checkImage(t *testing.T, svc types.ServiceConfig, built map[string]bool) {
	if svc.Build != nil {
		if svc.Build.Context != s.root || svc.Build.Dockerfile != "Dockerfile" {
			t.Errorf("service %s: build %s/%s, want the repository's Dockerfile", svc.Name, svc.Build.Context, svc.Build.Dockerfile)
		}
		if !built[program(svc)] {
			t.Errorf("service %s runs %q, which the Dockerfile does not build", svc.Name, program(svc))
		}
		return
	}
	if i := strings.LastIndexByte(svc.Image, ':'); i < 0 || svc.Image[i+1:] == "latest" || strings.Contains(svc.Image[i:], "/") {
		t.Errorf("service %s: image %q is not pinned to a version", svc.Name, svc.Image)
	}
}

// checkBinds: every bind-mounted source exists inside the repository.
func (s *stack) checkBinds(t *testing.T, svc types.ServiceConfig) {
	for _, v := range svc.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if _, err := os.Stat(v.Source); err != nil {
			t.Errorf("service %s mounts %s: %v", svc.Name, v.Source, err)
		}
		if rel, err := filepath.Rel(s.root, v.Source); err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("service %s mounts %s, outside the repository", svc.Name, v.Source)
		}
	}
}

// hostPath maps a path inside svc's container to the repository file
// bind-mounted there, or "".
func hostPath(svc types.ServiceConfig, p string) string {
	for _, v := range svc.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if p == v.Target {
			return v.Source
		}
		if rel, ok := strings.CutPrefix(p, v.Target+"/"); ok {
			return filepath.Join(v.Source, rel)
		}
	}
	return ""
}

// configFile is the repository file behind svc's -config argument.
func configFile(t *testing.T, svc types.ServiceConfig) string {
	t.Helper()
	i := slices.Index(svc.Command, "-config")
	if i < 0 || i+1 >= len(svc.Command) {
		t.Fatalf("service %s: command %q has no -config FILE", svc.Name, svc.Command)
	}
	f := hostPath(svc, svc.Command[i+1])
	if f == "" {
		t.Fatalf("service %s: %s is not mounted from the repository", svc.Name, svc.Command[i+1])
	}
	return f
}

// withEnv sets svc's environment for the duration of the check; ${VAR}
// in Vigil's configs must resolve from it alone.
func withEnv(t *testing.T, svc types.ServiceConfig, check func()) {
	t.Helper()
	saved := map[string]*string{}
	for k := range svc.Environment {
		if v, ok := os.LookupEnv(k); ok {
			saved[k] = &v
		} else {
			saved[k] = nil
		}
		os.Setenv(k, env(svc, k))
	}
	defer func() {
		for k, v := range saved {
			if v == nil {
				os.Unsetenv(k)
			} else {
				os.Setenv(k, *v)
			}
		}
	}()
	check()
}

// endpoint checks that raw (a URL) names a compose service and a port it
// exposes, and returns the service.
func (s *stack) endpoint(t *testing.T, from, what, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Errorf("%s: %s %q: %v", from, what, raw, err)
		return ""
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		t.Errorf("%s: %s %q: want host:port", from, what, raw)
		return ""
	}
	svc, ok := s.p.Services[host]
	if !ok {
		t.Errorf("%s: %s %q: no compose service %q", from, what, raw, host)
		return ""
	}
	if !slices.Contains([]string(svc.Expose), port) {
		t.Errorf("%s: %s %q: service %s does not expose port %s (expose %q)", from, what, raw, host, port, svc.Expose)
	}
	return host
}

func (s *stack) dependsOn(t *testing.T, svc types.ServiceConfig, deps ...string) {
	for _, d := range deps {
		if _, ok := svc.DependsOn[d]; !ok {
			t.Errorf("service %s does not depend on %s", svc.Name, d)
		}
	}
}

// checkController loads the mounted controller config and its rules, and
// checks its endpoints; it returns the history bucket.
func (s *stack) checkController(t *testing.T, svc types.ServiceConfig) (bucket string) {
	withEnv(t, svc, func() {
		file := configFile(t, svc)
		cfg, err := controller.LoadConfig(file)
		if err != nil {
			t.Errorf("service %s: %v", svc.Name, err)
			return
		}
		from := svc.Name + " (" + filepath.Base(file) + ")"
		if h, _ := os.Hostname(); cfg.Name != h {
			t.Errorf("%s: name %q set in the shared file: both controllers would have it (want the container's host name)", from, cfg.Name)
		}
		s.endpoint(t, from, "nats.url", cfg.NATS.URL.String())
		if s.endpoint(t, from, "history.url", cfg.History.URL.String()) != "influxdb" {
			t.Errorf("%s: history.url %q does not name the influxdb service", from, cfg.History.URL.String())
		}
		bucket = cfg.History.Bucket
		if db, _, _ := strings.Cut(bucket, "/"); db != env(s.p.Services["influxdb"], "INFLUXDB_DB") {
			t.Errorf("%s: history.bucket %q is not in the database influxdb creates (%q)", from, bucket, env(s.p.Services["influxdb"], "INFLUXDB_DB"))
		}
		if cfg.Lease.Bucket == "off" {
			t.Errorf("%s: the leader lease is off, two controllers would both lead", from)
		}
		if host, port, err := net.SplitHostPort(cfg.API.Listen); err != nil || host == "127.0.0.1" || !slices.Contains([]string(svc.Expose), port) {
			t.Errorf("%s: api.listen %q: want a non-loopback address on an exposed port (%q)", from, cfg.API.Listen, svc.Expose)
		}
		var ruleFiles []string
		for _, r := range cfg.Rules {
			f := hostPath(svc, r)
			if f == "" {
				t.Errorf("%s: rules %s are not mounted from the repository", from, r)
				continue
			}
			ruleFiles = append(ruleFiles, f)
		}
		if set, err := rules.LoadFiles(ruleFiles...); err != nil || len(set.Rules()) == 0 {
			t.Errorf("%s: rules %q: %v (want at least one rule)", from, ruleFiles, err)
		}
		agents := map[string]bool{}
		for _, a := range s.agents {
			agents[a.Hostname] = true
		}
		for _, sv := range cfg.Services {
			for _, m := range sv.Members {
				s.endpoint(t, from, "services."+sv.Name+" member "+m.Name, m.Endpoint)
				if !agents[m.Host] {
					t.Errorf("%s: service %s member %s on host %q, which is no agent's host name", from, sv.Name, m.Name, m.Host)
				}
			}
		}
		if len(cfg.Services) == 0 {
			t.Errorf("%s: no service to fail over (the demo model)", from)
		}
	})
	return bucket
}

// checkAgent loads the mounted agent config and checks its NATS URL.
func (s *stack) checkAgent(t *testing.T, svc types.ServiceConfig) {
	withEnv(t, svc, func() {
		file := configFile(t, svc)
		cfg, err := agent.LoadConfig(file)
		if err != nil {
			t.Errorf("service %s: %v", svc.Name, err)
			return
		}
		from := svc.Name + " (" + filepath.Base(file) + ")"
		s.endpoint(t, from, "nats.url", cfg.NATS.URL.String())
		if h, _ := os.Hostname(); cfg.Host != h {
			t.Errorf("%s: host %q set in the shared file (want the container's host name)", from, cfg.Host)
		}
		for _, tr := range cfg.Traffic {
			if _, port, err := net.SplitHostPort(tr.Listen); err != nil || !slices.Contains([]string(svc.Expose), port) {
				t.Errorf("%s: traffic switch on %q: want a port the service exposes (%q)", from, tr.Listen, svc.Expose)
			}
		}
	})
}

// checkGrafana: provisioning is mounted from dashboards/, the dashboard
// provider's path is where dashboards/ is mounted, and the datasource
// points at the influxdb service and the controllers' bucket.
func (s *stack) checkGrafana(t *testing.T, bucket string) {
	g, ok := s.p.Services["grafana"]
	if !ok {
		return
	}
	dash := filepath.Join(s.root, "dashboards")
	if got := hostPath(g, "/etc/grafana/provisioning"); got != filepath.Join(dash, "provisioning") {
		t.Errorf("grafana: /etc/grafana/provisioning mounted from %q, want dashboards/provisioning", got)
	}
	var prov struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAMLFile(t, filepath.Join(dash, "provisioning", "dashboards", "vigil.yaml"), &prov)
	if len(prov.Providers) != 1 || prov.Providers[0].Type != "file" || hostPath(g, prov.Providers[0].Options.Path) != dash {
		t.Errorf("grafana: dashboard provider %+v: want one file provider whose path is where dashboards/ is mounted", prov.Providers)
	}
	var ds struct {
		Datasources []struct {
			URL      string `yaml:"url"`
			JSONData struct {
				DefaultBucket string `yaml:"defaultBucket"`
			} `yaml:"jsonData"`
			Secure struct {
				Token string `yaml:"token"`
			} `yaml:"secureJsonData"`
		} `yaml:"datasources"`
	}
	readYAMLFile(t, filepath.Join(dash, "provisioning", "datasources", "vigil-influxdb.yaml"), &ds)
	if len(ds.Datasources) != 1 {
		t.Fatalf("grafana: %d datasources, want 1", len(ds.Datasources))
	}
	d := ds.Datasources[0]
	if s.endpoint(t, "grafana datasource", "url", d.URL) != "influxdb" {
		t.Errorf("grafana datasource url %q does not name the influxdb service", d.URL)
	}
	if d.JSONData.DefaultBucket != bucket {
		t.Errorf("grafana datasource defaultBucket %q, controllers write to %q", d.JSONData.DefaultBucket, bucket)
	}
	for _, c := range s.controllers {
		if tok := env(c, "INFLUX_TOKEN"); tok != d.Secure.Token {
			t.Errorf("grafana datasource token %q, controller %s uses %q", d.Secure.Token, c.Name, tok)
		}
	}
	s.dependsOn(t, g, "influxdb")
}

// readYAMLFile decodes path leniently: Grafana's files have keys the
// checks do not read.
func readYAMLFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
