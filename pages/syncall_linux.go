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
