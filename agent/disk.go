package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v3/disk"

	"github.com/vigil-sre/vigil/internal/wire"
)

// diskCollector measures space and inodes of every real mounted file
// system (measurement disk; tags path, device, fstype).
//
// Fields, from statfs(2) (gopsutil disk.Usage): total, free (available to
// unprivileged users), used (total − all free blocks) in bytes;
// used_percent = 100·used/(used+free), which is what df shows and what
// fills up for ordinary processes; inodes_total, inodes_free, inodes_used
// and inodes_used_percent = 100·inodes_used/inodes_total.
//
// Which mounts: the mount table (/proc/1/mountinfo, following HOST_PROC)
// is re-read every refresh_every ticks (default 6). Skipped are file-system
// types in ignore_fs (default DefaultIgnoreFS: kernel pseudo file systems,
// tmpfs, squashfs, ...) and mount points in ignore_mounts together with
// everything below them (default DefaultIgnoreMounts: container runtimes'
// per-container mounts). overlay is kept, because it is the root of a
// container. A block device mounted several times (bind mounts) is reported
// once, at its shortest mount point. Statfs of a mount that fails (e.g.
// permission) skips that mount; the tick's error names the first one.
//
// In a container watching its host (HOST_PROC=/host/proc and the host's
// root mounted at, say, /hostfs), set HOST_MOUNT_PREFIX=/hostfs: statfs
// then looks at /hostfs/<path> and the path tag stays <path>.
//
// Memory: the filtered mount list.
type diskCollector struct {
	ignoreFS     map[string]bool
	ignoreMounts []string
	refreshEvery int
	prefix       string // HOST_MOUNT_PREFIX
	ticks        int
	mounts       []mount
	tags         []wire.Tag
	fields       []wire.Field
}

// mount is one mounted file system, without gopsutil types.
type mount struct {
	device, path, fstype string
}

// DefaultIgnoreFS are the file-system types the disk collector skips.
var DefaultIgnoreFS = []string{
	"autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs",
	"devfs", "devpts", "devtmpfs", "efivarfs", "fuse.lxcfs", "fusectl",
	"hugetlbfs", "iso9660", "mqueue", "nsfs", "proc", "pstore", "ramfs",
	"rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs", "tmpfs",
	"tracefs",
}

// DefaultIgnoreMounts are the mount points (with everything below) the disk
// collector skips.
var DefaultIgnoreMounts = []string{
	"/var/lib/docker", "/var/lib/containerd", "/run/containerd",
	"/var/lib/kubelet/pods", "/run/docker", "/snap",
}

func init() {
	Register("disk", newDiskCollector, "ignore_fs", "ignore_mounts", "refresh_every")
}

func newDiskCollector(o Options) (Collector, error) {
	fs := o.IgnoreFS
	if fs == nil {
		fs = DefaultIgnoreFS
	}
	mounts := o.IgnoreMounts
	if mounts == nil {
		mounts = DefaultIgnoreMounts
	}
	if o.RefreshEvery < 0 {
		return nil, fmt.Errorf("refresh_every must not be negative")
	}
	c := &diskCollector{
		ignoreFS:     make(map[string]bool, len(fs)),
		refreshEvery: o.RefreshEvery,
		prefix:       os.Getenv("HOST_MOUNT_PREFIX"),
		tags:         make([]wire.Tag, 3),
		fields:       make([]wire.Field, 0, 8),
	}
	if c.refreshEvery == 0 {
		c.refreshEvery = 6
	}
	for _, f := range fs {
		c.ignoreFS[f] = true
	}
	for _, m := range mounts {
		if m != "/" {
			m = strings.TrimRight(m, "/")
		}
		c.ignoreMounts = append(c.ignoreMounts, m)
	}
	return c, nil
}

// Name implements Collector.
func (c *diskCollector) Name() string { return "disk" }

// Collect implements Collector.
func (c *diskCollector) Collect(ctx context.Context, _ time.Time, emit Emit) error {
	if c.mounts == nil || c.ticks%c.refreshEvery == 0 {
		parts, err := disk.PartitionsWithContext(ctx, true)
		if err != nil {
			return fmt.Errorf("mount table: %w", err)
		}
		all := make([]mount, len(parts))
		for i, p := range parts {
			all[i] = mount{device: p.Device, path: p.Mountpoint, fstype: p.Fstype}
		}
		c.mounts = c.filter(all)
	}
	c.ticks++
	var firstErr error
	for _, m := range c.mounts {
		if err := ctx.Err(); err != nil {
			return err
		}
		u, err := disk.UsageWithContext(ctx, filepath.Join(c.prefix, m.path))
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("statfs %s: %w", m.path, err)
			}
			continue
		}
		c.tags[0] = wire.Tag{Key: "device", Value: strings.TrimPrefix(m.device, "/dev/")}
		c.tags[1] = wire.Tag{Key: "fstype", Value: m.fstype}
		c.tags[2] = wire.Tag{Key: "path", Value: m.path}
		c.fields = append(c.fields[:0],
			wire.I("total", i64(u.Total)),
			wire.I("free", i64(u.Free)),
			wire.I("used", i64(u.Used)),
			wire.F("used_percent", u.UsedPercent),
			wire.I("inodes_total", i64(u.InodesTotal)),
			wire.I("inodes_free", i64(u.InodesFree)),
			wire.I("inodes_used", i64(u.InodesUsed)),
			wire.F("inodes_used_percent", u.InodesUsedPercent),
		)
		emit("disk", c.tags, c.fields)
	}
	return firstErr
}

// filter drops ignored file systems and mount points, and reports a block
// device mounted several times once, at its shortest mount point (first
// one on a tie). The order of the mount table is kept.
func (c *diskCollector) filter(all []mount) []mount {
	out := make([]mount, 0, len(all))
	byDevice := map[string]int{} // block device -> index in out
	for _, m := range all {
		if c.ignoreFS[m.fstype] || c.ignoredMount(m.path) {
			continue
		}
		if strings.HasPrefix(m.device, "/dev/") {
			if i, ok := byDevice[m.device]; ok {
				if len(m.path) < len(out[i].path) {
					out[i] = m
				}
				continue
			}
			byDevice[m.device] = len(out)
		}
		out = append(out, m)
	}
	return out
}

func (c *diskCollector) ignoredMount(p string) bool {
	for _, m := range c.ignoreMounts {
		if p == m || m == "/" || strings.HasPrefix(p, m) && p[len(m)] == '/' {
			return true
		}
	}
	return false
}

var _ Collector = (*diskCollector)(nil)
