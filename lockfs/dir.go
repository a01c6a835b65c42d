package lockfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// SyncDir fsyncs the directory dir, which makes the creates, renames and unlinks done in it so
// far durable. It fails if dir is not a directory. Safe for concurrent use.
func SyncDir(dir string) error {
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("lockfs: sync dir: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	err = syncFile(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// MkdirAll creates dir and any missing parents with perm (0 means 0755; the umask applies)
// and fsyncs the parent of each directory it created, so the new directories are durable
// when it returns. A dir that exists already is success, with no fsync; a path component that
// is not a directory is an error. A directory created at the same time by another process
// counts as created (its parent is fsynced too).
func MkdirAll(dir string, perm os.FileMode) error {
	if perm == 0 {
		perm = 0o755
	}
	if err := mkdirAll(filepath.Clean(dir), perm); err != nil {
		return fmt.Errorf("lockfs: mkdir %s: %w", dir, err)
	}
	return nil
}

func mkdirAll(dir string, perm os.FileMode) error {
	// Find the missing directories, deepest first.
	var missing []string
	for p := dir; ; {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return &fs.PathError{Op: "mkdir", Path: p, Err: syscall.ENOTDIR}
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, p)
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		p = parent
	}
	// Create them top down; each create is made durable by an fsync of its parent.
	for i := len(missing) - 1; i >= 0; i-- {
		p := missing[i]
		if err := os.Mkdir(p, perm); err != nil {
			if !errors.Is(err, fs.ErrExist) {
				return err
			}
			if fi, serr := os.Stat(p); serr != nil || !fi.IsDir() {
				return err
			}
		}
		if err := syncDir(filepath.Dir(p)); err != nil {
			return err
		}
	}
	return nil
}
