package agent

import (
	"bufio"
	"os"
	"path"
	"sort"
	"strings"
	"testing"
)

// diskstatsNames reads /proc/diskstats itself: devices with any non-zero
// counter, except loop and ram devices.
func diskstatsNames(t *testing.T) []string {
	f, err := os.Open("/proc/diskstats")
	if err != nil {
		t.Skip("no /proc/diskstats")
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 14 {
			continue
		}
		nonzero := false
		for _, v := range fs[3:14] {
			nonzero = nonzero || v != "0"
		}
		if m1, _ := path.Match("loop*", fs[2]); m1 || strings.HasPrefix(fs[2], "ram") || !nonzero {
			continue
		}
		names = append(names, fs[2])
	}
	sort.Strings(names)
	return names
}

func TestDiskioCollector(t *testing.T) {
	want := diskstatsNames(t)
	pts := collect(t, newCollector(t, "diskio", Options{}))
	var got []string
	reads := 0.0
	for _, p := range pts {
		if p.m != "diskio" {
			t.Fatalf("measurement %q", p.m)
		}
		got = append(got, p.tags["name"])
		for _, f := range []string{"reads", "writes", "read_bytes", "write_bytes", "read_time", "write_time", "io_time", "iops_in_progress", "weighted_io_time", "merged_reads", "merged_writes"} {
			inRange(t, p.tags["name"]+" "+f, p.num(t, f), 0, 1<<62)
		}
		reads += p.num(t, "reads")
		if p.num(t, "read_bytes") < p.num(t, "reads") {
			t.Errorf("%s: read_bytes %v < reads %v", p.tags["name"], p.num(t, "read_bytes"), p.num(t, "reads"))
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("devices %v, /proc/diskstats has %v", got, want)
	}
	if len(want) > 0 && reads == 0 {
		t.Errorf("no reads on any device")
	}
}

func TestDiskioIgnore(t *testing.T) {
	all := diskstatsNames(t)
	if len(all) == 0 {
		t.Skip("no active block device")
	}
	pts := collect(t, newCollector(t, "diskio", Options{IgnoreDevices: []string{all[0]}}))
	for _, p := range pts {
		if p.tags["name"] == all[0] {
			t.Fatalf("%s not ignored", all[0])
		}
	}
	if _, err := NewCollector("diskio", Options{IgnoreDevices: []string{"["}}); err == nil {
		t.Fatal("bad glob accepted")
	}
}
