package agent

import (
	"context"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-sre/vigil/internal/wire"
)

func TestDiskCollector(t *testing.T) {
	c := newCollector(t, "disk", Options{})
	pts := collect(t, c)
	var root *point
	devices := map[string]string{}
	for i, p := range pts {
		if p.m != "disk" {
			t.Fatalf("measurement %q", p.m)
		}
		path, dev, fs := p.tags["path"], p.tags["device"], p.tags["fstype"]
		if path == "" || dev == "" || fs == "" {
			t.Errorf("missing tag: %v", p.tags)
		}
		for _, ign := range DefaultIgnoreFS {
			if fs == ign {
				t.Errorf("%s: fstype %s should be ignored", path, fs)
			}
		}
		if other, dup := devices[dev]; dup && dev[0] != '/' && len(dev) > 2 && fs != "overlay" {
			t.Errorf("device %s reported twice (%s, %s)", dev, other, path)
		}
		devices[dev] = path
		total := p.num(t, "total")
		inRange(t, path+" used", p.num(t, "used"), 0, total)
		inRange(t, path+" free", p.num(t, "free"), 0, total)
		inRange(t, path+" used_percent", p.num(t, "used_percent"), 0, 100)
		inRange(t, path+" inodes_used_percent", p.num(t, "inodes_used_percent"), 0, 100)
		it := p.num(t, "inodes_total")
		inRange(t, path+" inodes_used", p.num(t, "inodes_used"), 0, it)
		inRange(t, path+" inodes_free", p.num(t, "inodes_free"), 0, it)
		if path == "/" {
			root = &pts[i]
		}
	}
	if root == nil {
		t.Fatalf("no point for /; got %d points", len(pts))
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs("/", &st); err != nil {
		t.Fatal(err)
	}
	if want := float64(st.Blocks) * float64(st.Bsize); root.num(t, "total") != want {
		t.Errorf("/ total = %v, statfs says %v", root.num(t, "total"), want)
	}
	if root.num(t, "inodes_total") != float64(st.Files) {
		t.Errorf("/ inodes_total = %v, statfs says %v", root.num(t, "inodes_total"), st.Files)
	}
	// A second tick reuses the cached mount list and reports the same mounts.
	if again := collect(t, c); len(again) != len(pts) {
		t.Errorf("second tick: %d points, first %d", len(again), len(pts))
	}
}

func TestDiskFilter(t *testing.T) {
	c, err := newDiskCollector(Options{IgnoreMounts: []string{"/var/lib/docker/", "/boot"}})
	if err != nil {
		t.Fatal(err)
	}
	in := []mount{
		{"/dev/sda1", "/", "ext4"},
		{"proc", "/proc", "proc"},
		{"tmpfs", "/dev/shm", "tmpfs"},
		{"/dev/sda1", "/etc/hosts", "ext4"}, // bind mount of /: reported once
		{"overlay", "/var/lib/docker/overlay2/x/merged", "overlay"},
		{"/dev/sdb1", "/var/lib/dockerdata", "xfs"}, // not below /var/lib/docker
		{"/dev/sda2", "/boot", "ext4"},
		{"/dev/sda3", "/boot/efi", "vfat"},
		{"overlay", "/", "overlay"}, // container root: kept
		{"/dev/sdc1", "/data/b", "ext4"},
		{"/dev/sdc1", "/d", "ext4"}, // shorter mount point of the same device wins
	}
	got := c.(*diskCollector).filter(in)
	want := []mount{
		{"/dev/sda1", "/", "ext4"},
		{"/dev/sdb1", "/var/lib/dockerdata", "xfs"},
		{"overlay", "/", "overlay"},
		{"/dev/sdc1", "/d", "ext4"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("filter:\n got %v\nwant %v", got, want)
	}
	// An explicit empty ignore list keeps pseudo file systems.
	c2, _ := newDiskCollector(Options{IgnoreFS: []string{}, IgnoreMounts: []string{}})
	if got := c2.(*diskCollector).filter(in[:3]); len(got) != 3 {
		t.Fatalf("empty ignore lists: got %v", got)
	}
}

func TestDiskMountPrefix(t *testing.T) {
	t.Setenv("HOST_MOUNT_PREFIX", "/nonexistent-prefix")
	c := newCollector(t, "disk", Options{})
	var got []point
	err := c.Collect(context.Background(), time.Now(), func(m string, tags []wire.Tag, fields []wire.Field) {
		got = append(got, point{m: m})
	})
	// Every statfs goes below the prefix, which does not exist.
	if err == nil || !strings.Contains(err.Error(), "statfs /") || len(got) != 0 {
		t.Fatalf("with a missing prefix: err %v, %d points", err, len(got))
	}
}
