package pages

import "golang.org/x/sys/unix"

// SyncAll makes everything written to the file system holding the directory durable at once
// (syncfs(2)): one journal commit instead of one per file. It reports false where the platform
// has no such call; the caller then fsyncs file by file.
func (d *Dir) SyncAll() (bool, error) {
	f, err := d.root.Open(".")
	if err != nil {
		return true, err
	}
	defer f.Close()
	for {
		err = unix.Syncfs(int(f.Fd()))
		if err != unix.EINTR {
			return true, err
		}
	}
}

// File systems whose syncfs(2) makes every file written to them durable (statfs f_type, from
// linux/magic.h). Others get no syncfs promise: FUSE file systems, for one, never receive it
// (the kernel does not forward it), so a checkpoint there must fsync file by file.
var syncfsTypes = map[int64]string{
	0xEF53:     "ext2/3/4",
	0x58465342: "xfs",
	0x9123683E: "btrfs",
	0xF2F52010: "f2fs",
	0x2FC12FC1: "zfs",
	0xCA451A4E: "bcachefs",
	0x01021994: "tmpfs",
	0x794C7630: "overlayfs",
}

// CanSyncAll reports whether SyncAll makes the files of this directory's file system durable:
// Linux, and a file system known to implement syncfs(2). False means fsync file by file.
func (d *Dir) CanSyncAll() bool {
	f, err := d.root.Open(".")
	if err != nil {
		return false
	}
	defer f.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return false
	}
	_, ok := syncfsTypes[int64(st.Type)]
	return ok
}
