package influxtest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
)

func TestClientWriteInfluxQLAndFlux(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || s.Bucket() != "vigil/autogen" || s.Database() != "vigil" {
		t.Fatalf("unexpected endpoint: %s %s %s", s.URL(), s.Bucket(), s.Database())
	}
	client := influxdb2.NewClient(s.URL(), s.Token())
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ts := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	w := client.WriteAPIBlocking(s.Org(), s.Bucket())
	line := "cpu,host=web-1 usage=42.5,cores=8i " + strconv.FormatInt(ts.UnixNano(), 10)
	if err := w.WriteRecord(ctx, line); err != nil {
		t.Fatalf("write: %v", err)
	}

	rows := s.Query(t, `SELECT usage, cores, host FROM cpu`)
	if len(rows) != 1 || len(rows[0].Values) != 1 {
		t.Fatalf("influxql rows: %+v", rows)
	}
	r := rows[0]
	if v, ok := r.Float(0, "usage"); !ok || v != 42.5 {
		t.Errorf("usage = %v, %v", v, ok)
	}
	if v, ok := r.Int(0, "cores"); !ok || v != 8 {
		t.Errorf("cores = %v, %v", v, ok)
	}
	if v, ok := r.Int(0, "time"); !ok || v != ts.UnixNano() {
		t.Errorf("time = %v, want %v", v, ts.UnixNano())
	}
	if h := r.String(0, "host"); h != "web-1" {
		t.Errorf("host = %q", h)
	}

	// Flux through the v2 query API (flux-enabled = true).
	res, err := client.QueryAPI(s.Org()).Query(ctx, `from(bucket:"vigil/autogen") |> range(start:-1h) |> filter(fn: (r) => r._measurement == "cpu" and r._field == "usage")`)
	if err != nil {
		t.Fatalf("flux: %v", err)
	}
	var flux []float64
	for res.Next() {
		if f, ok := res.Record().Value().(float64); ok {
			flux = append(flux, f)
		}
	}
	if res.Err() != nil {
		t.Fatalf("flux result: %v", res.Err())
	}
	if len(flux) != 1 || flux[0] != 42.5 {
		t.Fatalf("flux values = %v", flux)
	}

	if got := s.Count(t, "cpu", ""); got != 1 {
		t.Fatalf("count = %d", got)
	}
	if got := s.Count(t, "cpu", `host = 'web-2'`); got != 0 {
		t.Fatalf("count with where = %d", got)
	}
}

func TestStopRefusesThenStartServesSamePort(t *testing.T) {
	s := StartWith(t, Options{DisableFlux: true})
	url := s.URL()
	s.Write(t, "disk,host=a used=1 1000000000\ndisk,host=a used=2 2000000000\ndisk,host=b used=3 3000000000")
	s.Stop(t)
	if s.Running() {
		t.Fatal("still running after Stop")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.QueryContext(ctx, "SHOW DATABASES"); err == nil {
		t.Fatal("query succeeded while stopped")
	}
	s.Restart(t) // Restart of a stopped server starts it
	if s.URL() != url {
		t.Fatalf("URL changed: %s -> %s", url, s.URL())
	}
	if got := s.Count(t, "disk", ""); got != 3 {
		t.Fatalf("count = %d, want 3", got)
	}
	if got := s.Count(t, "disk", `host = 'a'`); got != 2 {
		t.Fatalf("count host=a = %d, want 2", got)
	}
	if _, err := s.QueryContext(ctx, "SELECT nope FROM"); err == nil {
		t.Fatal("bad InfluxQL gave no error")
	}
	if err := s.WriteLines(ctx, "bad line without fields"); err == nil {
		t.Fatal("bad line protocol gave no error")
	}
	client := influxdb2.NewClient(s.URL(), s.Token())
	defer client.Close()
	if _, err := client.QueryAPI(s.Org()).Query(ctx, `from(bucket:"vigil/autogen") |> range(start:-1h)`); err == nil {
		t.Fatal("Flux answered although DisableFlux is set")
	}
	s.Restart(t)
	if got := s.Count(t, "disk", ""); got != 3 {
		t.Fatalf("count after restart = %d, want 3", got)
	}
}

func TestLaunchOwnDirIsRemovedByClose(t *testing.T) {
	s, err := Launch(Options{Database: "other", DisableFlux: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := s.Dir()
	if _, err := os.Stat(filepath.Join(dir, "influxd.conf")); err != nil {
		t.Fatalf("config missing: %v", err)
	}
	if s.Bucket() != "other/autogen" {
		t.Fatalf("bucket = %q", s.Bucket())
	}
	s.Write(t, "m v=1 1")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dir %s not removed: %v", dir, err)
	}
}

func TestRepoRootAndBinary(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "scripts", "install-influxd.sh")); err != nil {
		t.Fatalf("root %s has no install script: %v", root, err)
	}
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	if !isExecutable(bin) {
		t.Fatalf("%s not executable", bin)
	}
}
