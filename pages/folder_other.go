//go:build !linux

package pages

import (
	"errors"
	"io/fs"
	"os"
	"path"
)

// folderSys goes through the Dir's root (each call opens the file by its path in the folder).
type folderSys struct{}

func (s *folderSys) init(fo *Folder) error { return nil }

func (s *folderSys) create(fo *Folder, name, rel string, data []byte, perm fs.FileMode) error {
	return fo.d.writeNew(fo.path, path.Join(fo.path, name), data, perm, false)
}

func (s *folderSys) recycle(fo *Folder, old, name, rel string, data []byte, syncFile bool) error {
	return errors.ErrUnsupported
}

func (s *folderSys) remove(fo *Folder, name, rel string) error {
	return fo.d.root.Remove(rel)
}

// readEntries lists the open folder f.
func readEntries(d *Dir, f *os.File, folder string) ([]fs.DirEntry, error) {
	return f.ReadDir(-1)
}
