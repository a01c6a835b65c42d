package bench

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// fileSystemTypes names the statfs types of common local file systems (linux/magic.h).
var fileSystemTypes = map[int64]string{
	0xEF53:     "ext4",
	0x58465342: "xfs",
	0x9123683E: "btrfs",
	0x01021994: "tmpfs",
	0x794C7630: "overlayfs",
	0x2FC12FC1: "zfs",
	0xF2F52010: "f2fs",
}

// fileSystem names the file system dir is on, and the device of its mount when /proc/mounts
// tells it.
func fileSystem(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return ""
	}
	name, ok := fileSystemTypes[int64(st.Type)]
	if !ok {
		return ""
	}
	if dev := mountDevice(dir); dev != "" {
		name += " (" + dev + ")"
	}
	return name
}

// mountDevice returns the device of the longest mount point in /proc/mounts that holds dir.
func mountDevice(dir string) string {
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return ""
	}
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return ""
	}
	defer f.Close()
	best, dev := "", ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		mp := fields[1]
		if (dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best, dev = mp, fields[0]
		}
	}
	return dev
}
