package pages

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path"
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
	return writeClose(fd, rel, data, false)
}

func (s *folderSys) recycle(fo *Folder, old, name, rel string, data []byte, syncFile bool) error {
	defer runtime.KeepAlive(fo.f)
	for {
		err := unix.Renameat2(s.fd, old, s.fd, name, unix.RENAME_NOREPLACE)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EINVAL || err == unix.ENOSYS || err == unix.EPERM {
			// The flag (EINVAL), the call (ENOSYS), or a sandbox's filter of it (EPERM) is
			// not there: nothing renamed. A real lack of permission shows when the caller
			// creates the file instead.
			return errors.ErrUnsupported
		}
		if err != nil {
			return err
		}
		break
	}
	if fo.AfterRename != nil {
		fo.AfterRename()
	}
	var fd int
	var err error
	for {
		// Not O_TRUNC: the file is overwritten from its start, then cut to the new length.
		// On ext4, a file truncated to zero and written again is written back when it is
		// closed (auto_da_alloc, meant for programs that replace a file's contents without an
		// fsync): the close then costs more than creating a new file. Overwriting the blocks
		// the file has costs a fifth of truncating (measured on ext4: 12 against 65 µs of
		// system time per file of 100 bytes).
		fd, err = unix.Openat(s.fd, name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return &fs.PathError{Op: "open", Path: rel, Err: err}
	}
	return writeAt0(fd, rel, data, true, syncFile)
}

// writeClose writes data to the new file fd, fsyncs it if asked, and closes it.
func writeClose(fd int, rel string, data []byte, syncFile bool) error {
	return writeAt0(fd, rel, data, false, syncFile)
}

// writeAt0 writes data to fd from offset 0; with cut, it then truncates the file to len(data)
// (an old file's longer contents go). It fsyncs fd if asked, and closes it.
func writeAt0(fd int, rel string, data []byte, cut, syncFile bool) error {
	var err error
	var off int64
	for len(data) > 0 && err == nil {
		var n int
		n, err = unix.Pwrite(fd, data, off)
		switch {
		case err == unix.EINTR:
			err = nil
		case err == nil && n == 0:
			err = unix.EIO
		case err == nil:
			data, off = data[n:], off+int64(n)
		}
	}
	if err != nil {
		_ = unix.Close(fd)
		return &fs.PathError{Op: "write", Path: rel, Err: err}
	}
	for cut {
		err = unix.Ftruncate(fd, off)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		_ = unix.Close(fd)
		return &fs.PathError{Op: "truncate", Path: rel, Err: err}
	}
	if syncFile {
		for {
			err = unix.Fsync(fd)
			if err != unix.EINTR {
				break
			}
		}
		if err != nil {
			_ = unix.Close(fd)
			return &fs.PathError{Op: "fsync", Path: rel, Err: err}
		}
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

// readEntries lists the open folder f with getdents64(2): names and types from the directory
// itself, an lstat only for an entry whose type the file system does not report.
func readEntries(d *Dir, f *os.File, folder string) ([]fs.DirEntry, error) {
	defer runtime.KeepAlive(f)
	fd := int(f.Fd())
	var out []fs.DirEntry
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "readdir", Path: folder, Err: err}
		}
		if n <= 0 {
			return out, nil
		}
		for b := buf[:n]; len(b) > 0; {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name (NUL-ended).
			if len(b) < 19 {
				return nil, &fs.PathError{Op: "readdir", Path: folder, Err: unix.EIO}
			}
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < 19 || reclen > len(b) {
				return nil, &fs.PathError{Op: "readdir", Path: folder, Err: unix.EIO}
			}
			typ, name := b[18], b[19:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			b = b[reclen:]
			if string(name) == "." || string(name) == ".." {
				continue
			}
			e := &dirEntry{d: d, rel: path.Join(folder, string(name)), name: string(name)}
			switch typ {
			case unix.DT_REG:
				e.typ = 0
			case unix.DT_DIR:
				e.typ = fs.ModeDir
			case unix.DT_LNK:
				e.typ = fs.ModeSymlink
			case unix.DT_FIFO:
				e.typ = fs.ModeNamedPipe
			case unix.DT_SOCK:
				e.typ = fs.ModeSocket
			case unix.DT_CHR:
				e.typ = fs.ModeDevice | fs.ModeCharDevice
			case unix.DT_BLK:
				e.typ = fs.ModeDevice
			default: // DT_UNKNOWN: ask
				info, err := d.root.Lstat(e.rel)
				if errors.Is(err, fs.ErrNotExist) {
					continue // removed meanwhile
				}
				if err != nil {
					return nil, err
				}
				e.typ, e.info = info.Mode().Type(), info
			}
			out = append(out, e)
		}
	}
}

// dirEntry is an entry readEntries found; Info lstats it (through the Dir's root) then.
type dirEntry struct {
	d    *Dir
	rel  string // its path in the directory
	name string
	typ  fs.FileMode
	info fs.FileInfo
}

func (e *dirEntry) Name() string      { return e.name }
func (e *dirEntry) IsDir() bool       { return e.typ.IsDir() }
func (e *dirEntry) Type() fs.FileMode { return e.typ }
func (e *dirEntry) String() string    { return fs.FormatDirEntry(e) }

func (e *dirEntry) Info() (fs.FileInfo, error) {
	if e.info != nil {
		return e.info, nil
	}
	return e.d.root.Lstat(e.rel)
}
