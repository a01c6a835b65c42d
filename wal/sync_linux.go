package wal

import (
	"os"
	"syscall"
)

// Datasync flushes a log segment's data and the metadata needed to read it back (its size), but
// not its timestamps: fdatasync(2).
func Datasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return f.Sync()
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}
