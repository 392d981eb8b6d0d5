package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

// No smartctl and no SMART disks here: the parsers are tested on sample
// outputs (testdata/smartctl-*.json, written after smartctl's JSON format),
// the exec path with a script that prints them; only the absence of the
// tool is tested for real.

func readSample(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func smartFields(t *testing.T, name string, exit int) map[string]float64 {
	t.Helper()
	f, err := parseSmart(readSample(t, name), exit)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	out := map[string]float64{}
	for _, x := range f {
		if x.Kind == wire.FieldFloat {
			out[x.Key] = x.Float
		} else {
			out[x.Key] = float64(x.Int)
		}
	}
	return out
}

func wantFields(t *testing.T, what string, got, want map[string]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %v, want %v", what, k, got[k], v)
		}
	}
}

func TestParseSmart(t *testing.T) {
	wantFields(t, "ata", smartFields(t, "smartctl-ata.json", 64), map[string]float64{
		"healthy": 1, "reallocated_sectors": 24, "pending_sectors": 3, "wear_percent_used": 12,
		"temperature_c": 36, "power_on_hours": 31502})
	wantFields(t, "scsi", smartFields(t, "smartctl-scsi.json", 0), map[string]float64{
		"healthy": 0, "reallocated_sectors": 112, "wear_percent_used": 7, "temperature_c": 41, "power_on_hours": 12000})
	wantFields(t, "nvme", smartFields(t, "smartctl-nvme.json", 0), map[string]float64{
		"healthy": 1, "wear_percent_used": 3, "media_errors": 2, "temperature_c": 44, "power_on_hours": 8760})
	if _, err := parseSmart(readSample(t, "smartctl-standby.json"), 2); err != errStandby {
		t.Errorf("standby: %v", err)
	}
	if _, err := parseSmart(readSample(t, "smartctl-denied.json"), 2); err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Errorf("denied: %v", err)
	}
	if _, err := parseSmart([]byte("not json"), 0); err == nil {
		t.Error("garbage accepted")
	}
	devs, err := parseSmartScan(readSample(t, "smartctl-scan.json"))
	if err != nil || len(devs) != 3 || devs[0] != (smartDevice{"/dev/sda", "sat"}) || devs[2].name != "/dev/nvme0" {
		t.Fatalf("scan %v %v", devs, err)
	}
}

func FuzzParseSmart(f *testing.F) {
	f.Add(readSample(f, "smartctl-ata.json"), 0)
	f.Add(readSample(f, "smartctl-nvme.json"), 4)
	f.Fuzz(func(t *testing.T, b []byte, exit int) {
		fields, err := parseSmart(b, exit)
		if err == nil && len(fields) > 8 {
			t.Fatalf("%d fields", len(fields))
		}
	})
}

func TestSmartCollectorExec(t *testing.T) {
	td, _ := filepath.Abs("testdata")
	tool := fakeTool(t, "smartctl", `
[ "$1" = --scan ] && { cat `+td+`/smartctl-scan.json; exit 0; }
[ "$1 $2 $3 $4" = "--json -a -n standby" ] || exit 1
case "$7" in
/dev/sda) cat `+td+`/smartctl-ata.json; exit 64 ;;
/dev/sdb) cat `+td+`/smartctl-standby.json; exit 2 ;;
/dev/nvme0) cat `+td+`/smartctl-nvme.json ;;
*) exit 1 ;;
esac`)
	c := newCollector(t, "smart", Options{Program: tool})
	defer c.(interface{ Close() error }).Close()
	pts, err := toolPoints(t, c, time.Now())
	if err != nil || len(pts) != 2 {
		t.Fatalf("%d points, %v", len(pts), err)
	}
	if pts[0].m != "smart" || pts[0].tags["device"] != "sda" || pts[0].num(t, "pending_sectors") != 3 ||
		pts[1].tags["device"] != "nvme0" || pts[1].num(t, "media_errors") != 2 {
		t.Fatalf("points %v", pts)
	}

	// Configured devices: no scan, no -d; one that cannot be opened is an
	// error, the others are still reported.
	tool2 := fakeTool(t, "smartctl", `
[ "$1" = --scan ] && exit 1
case "$5" in
/dev/nvme0) cat `+td+`/smartctl-nvme.json ;;
*) cat `+td+`/smartctl-denied.json; exit 2 ;;
esac`)
	c2 := newCollector(t, "smart", Options{Program: tool2, Devices: []string{"/dev/sdd", "/dev/nvme0"}})
	defer c2.(interface{ Close() error }).Close()
	pts, err = toolPoints(t, c2, time.Now())
	if err == nil || !strings.Contains(err.Error(), "/dev/sdd") || !strings.Contains(err.Error(), "Permission denied") {
		t.Fatalf("error %v", err)
	}
	if len(pts) != 1 || pts[0].tags["device"] != "nvme0" {
		t.Fatalf("points %v", pts)
	}
}

func TestSmartCollectorAbsent(t *testing.T) {
	log, buf := logBuffer()
	c := newCollector(t, "smart", Options{Log: log, Program: "/nonexistent/smartctl", Every: time.Second})
	defer c.(interface{ Close() error }).Close()
	t0 := time.Now()
	for i := range 4 {
		if pts := tickAt(t, c, t0.Add(time.Duration(i)*time.Second)); len(pts) != 0 {
			t.Fatalf("points without the tool: %v", pts)
		}
	}
	if n := strings.Count(buf.String(), "smartctl not found"); n != 1 {
		t.Fatalf("logged %d times:\n%s", n, buf)
	}
	if _, err := NewCollector("smart", Options{Devices: []string{"sda"}}); err == nil || !strings.Contains(err.Error(), "devices[0]") {
		t.Fatalf("bad device: %v", err)
	}
}
