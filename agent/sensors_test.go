package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree writes files (path -> content) below root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sensorTemps(t *testing.T, c Collector) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, p := range collect(t, c) {
		if p.m != "sensors" {
			t.Fatalf("measurement %q", p.m)
		}
		out[p.tags["sensor"]] = p.num(t, "temp_c")
	}
	return out
}

// The sysfs tree is written by the test (this machine has no sensors); the
// files are real and read as on a host.
func TestSensorsHwmon(t *testing.T) {
	root := t.TempDir()
	t.Setenv("HOST_SYS", root)
	writeTree(t, root, map[string]string{
		"class/hwmon/hwmon0/name":          "coretemp\n",
		"class/hwmon/hwmon0/temp1_input":   "45000\n",
		"class/hwmon/hwmon0/temp1_label":   "Package id 0\n",
		"class/hwmon/hwmon0/temp2_input":   "41500\n",
		"class/hwmon/hwmon1/name":          "nvme\n",
		"class/hwmon/hwmon1/temp1_input":   "-2000\n",
		"class/hwmon/hwmon1/temp1_label":   "Composite\n",
		"class/hwmon/hwmon2/name":          "nvme\n",
		"class/hwmon/hwmon2/temp1_input":   "38000\n",
		"class/hwmon/hwmon2/temp1_label":   "Composite\n",
		"class/hwmon/hwmon3/temp1_input":   "garbage\n",
		"class/thermal/thermal_zone0/type": "acpitz\n",
		"class/thermal/thermal_zone0/temp": "30000\n",
	})
	c := newCollector(t, "sensors", Options{})
	got := sensorTemps(t, c)
	want := map[string]float64{"coretemp_package_id_0": 45, "coretemp_temp2": 41.5, "nvme_composite": -2, "nvme_composite_2": 38}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	// Values are re-read every tick.
	writeTree(t, root, map[string]string{"class/hwmon/hwmon0/temp1_input": "71000\n"})
	if got := sensorTemps(t, c); got["coretemp_package_id_0"] != 71 {
		t.Fatalf("second tick: %v", got)
	}
}

func TestSensorsThermalZones(t *testing.T) {
	root := t.TempDir()
	t.Setenv("HOST_SYS", root)
	writeTree(t, root, map[string]string{
		"class/thermal/thermal_zone0/type": "x86_pkg_temp\n",
		"class/thermal/thermal_zone0/temp": "52000\n",
	})
	if got := sensorTemps(t, newCollector(t, "sensors", Options{})); len(got) != 1 || got["x86_pkg_temp"] != 52 {
		t.Fatalf("got %v", got)
	}
}

func TestSensorsNone(t *testing.T) {
	t.Setenv("HOST_SYS", t.TempDir())
	log, buf := logBuffer()
	c := newCollector(t, "sensors", Options{Log: log})
	for range sensorsRefresh + 2 { // across a refresh
		if got := sensorTemps(t, c); len(got) != 0 {
			t.Fatalf("got %v", got)
		}
	}
	if n := strings.Count(buf.String(), "no temperature sensors"); n != 1 {
		t.Fatalf("logged %d times:\n%s", n, buf)
	}
	if c.(Availability).Unavailable() == "" {
		t.Fatal("Unavailable() empty")
	}
}
