package pages

import (
	"io/fs"
	"runtime"

	"golang.org/x/sys/unix"
)

// folderSys creates and removes files with openat(2) and unlinkat(2) on the folder's descriptor:
// a version file costs openat, write and close.
type folderSys struct {
	fd int
}

func (s *folderSys) init(fo *Folder) error {
	s.fd = int(fo.f.Fd())
	return nil
}

func (s *folderSys) create(fo *Folder, name, rel string, data []byte, perm fs.FileMode) error {
	defer runtime.KeepAlive(fo.f)
	var fd int
	var err error
	for {
		fd, err = unix.Openat(s.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm))
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return &fs.PathError{Op: "open", Path: rel, Err: err}
	}
	for len(data) > 0 && err == nil {
		var n int
		n, err = unix.Write(fd, data)
		switch {
		case err == unix.EINTR:
			err = nil
		case err == nil && n == 0:
			err = unix.EIO
		case err == nil:
			data = data[n:]
		}
	}
	if err != nil {
		_ = unix.Close(fd)
		return &fs.PathError{Op: "write", Path: rel, Err: err}
	}
	if err := unix.Close(fd); err != nil {
		return &fs.PathError{Op: "close", Path: rel, Err: err}
	}
	return nil
}

func (s *folderSys) remove(fo *Folder, name, rel string) error {
	defer runtime.KeepAlive(fo.f)
	for {
		err := unix.Unlinkat(s.fd, name, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "remove", Path: rel, Err: err}
		}
		return nil
	}
}
