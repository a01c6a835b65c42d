package pages

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// Folder is an open folder of a Dir, for a caller that creates or removes many files in it (a
// checkpoint writes one version file per changed page): each file is created or removed relative
// to the folder's descriptor, with no walk of the path, no mkdir and, on Linux, none of the
// descriptor set-up an *os.File costs. Its methods are safe for concurrent use; Close it when done.
type Folder struct {
	d    *Dir
	path string
	f    *os.File // the folder, opened through the Dir's root
	sys  folderSys

	// AfterRename, if set, runs in Recycle between the rename and the rewrite (crash tests).
	AfterRename func()
}

// OpenFolder opens folder (a clean, slash-separated relative path), creating it and the missing
// ones above it as WriteVersionIn does (filePerm is the permission of the files it will hold).
func (d *Dir) OpenFolder(folder string, filePerm fs.FileMode) (*Folder, error) {
	if !fs.ValidPath(folder) || folder == "." {
		return nil, fmt.Errorf("open folder: %w", &NameError{Kind: "folder", Name: folder, Reason: "not a clean relative path"})
	}
	perm := filePerm & fs.ModePerm
	if perm == 0 {
		perm = defaultFilePerm
	}
	if err := d.mkdirs(folder, perm|(perm&0o444)>>2); err != nil {
		return nil, fmt.Errorf("open folder %s: %w", folder, err)
	}
	f, err := d.root.Open(folder)
	if err != nil {
		return nil, fmt.Errorf("open folder: %w", err)
	}
	fo := &Folder{d: d, path: folder, f: f}
	if err := fo.sys.init(fo); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("open folder %s: %w", folder, err)
	}
	return fo, nil
}

// Path returns the folder's path in the directory.
func (fo *Folder) Path() string { return fo.path }

// WriteVersion is WriteVersionIn for this folder: the version file of pageID and tsn holding
// objs, created exclusively under its final name (fs.ErrExist if it is there) and written, not
// fsynced unless syncFile, its folder entry not fsynced.
func (fo *Folder) WriteVersion(pageID string, f Format, tsn TSN, objs []Object, perm os.FileMode, syncFile bool) error {
	name, rel, data, err := fo.version("write version", pageID, f, tsn, objs)
	if err != nil {
		return err
	}
	perm &= fs.ModePerm
	if perm == 0 {
		perm = defaultFilePerm
	}
	if syncFile || fo.d.syncFile != nil {
		err = fo.d.writeNew(fo.path, rel, data, perm, syncFile) // the general path, with its fsync hook
	} else {
		err = fo.sys.create(fo, name, rel, data, perm)
	}
	if err != nil {
		return fmt.Errorf("write version %s: %w", rel, err)
	}
	return nil
}

// Recycle writes the version file of pageID and tsn, holding objs, into the inode of the folder's
// file old instead of a new one: old is renamed to the version's name (never over an existing
// file: fs.ErrExist) and rewritten in place, not fsynced unless syncFile, its folder entry not
// fsynced. A caller may recycle only a file nobody reads any more (a superseded version below
// the cleanup horizon): a reader that had it open would see the new contents. A missing old
// gives an error matching fs.ErrNotExist; where the platform or file system cannot rename
// without replacing (or a sandbox refuses the call), an error matching errors.ErrUnsupported
// (and nothing changed). Creating a file costs more than this on some file systems (ext4
// without a journal searches past every inode freed in the last minutes), so a checkpoint
// reuses the files of the versions its page supersedes.
func (fo *Folder) Recycle(old, pageID string, f Format, tsn TSN, objs []Object, syncFile bool) error {
	if err := oneElement("recycle", old); err != nil {
		return err
	}
	name, rel, data, err := fo.version("recycle", pageID, f, tsn, objs)
	if err != nil {
		return err
	}
	if fo.d.syncFile != nil {
		return fmt.Errorf("recycle: %w", errors.ErrUnsupported) // the fsync fault hook needs an *os.File
	}
	if err := fo.sys.recycle(fo, old, name, rel, data, syncFile); err != nil {
		return fmt.Errorf("recycle %s as %s: %w", path.Join(fo.path, old), rel, err)
	}
	return nil
}

// version checks a version file's page ID and format and encodes objs: its name, its path in
// the directory, its contents. Errors name op.
func (fo *Folder) version(op, pageID string, f Format, tsn TSN, objs []Object) (name, rel string, data []byte, err error) {
	if _, err := ParsePageID(pageID); err != nil {
		return "", "", nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := checkFormat(f); err != nil {
		return "", "", nil, fmt.Errorf("%s: %w", op, err)
	}
	name = VersionFileName(pageID, f, tsn)
	rel = path.Join(fo.path, name)
	if data, err = EncodePage(f, objs); err != nil {
		return "", "", nil, fmt.Errorf("%s %s: %w", op, rel, err)
	}
	return name, rel, data, nil
}

// oneElement checks that name is one path element (a file of the folder).
func oneElement(op, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("%s: %w", op, &NameError{Kind: "file", Name: name, Reason: "not one path element"})
	}
	return nil
}

// Remove removes the file name (one path element) from the folder; a missing file gives an error
// matching fs.ErrNotExist.
func (fo *Folder) Remove(name string) error {
	if err := oneElement("remove", name); err != nil {
		return err
	}
	return fo.sys.remove(fo, name, path.Join(fo.path, name))
}

// Close closes the folder's descriptor.
func (fo *Folder) Close() error { return fo.f.Close() }

// ReadFolder lists folder (a clean, slash-separated relative path), sorted by name, as
// fs.ReadDir on the Dir's root does, but with each entry's type as the directory reports it: a
// folder opened through an os.Root is otherwise listed with one lstat per entry, which for a
// namespace folder of many pages costs more than the listing. A missing folder gives an error
// matching fs.ErrNotExist.
func (d *Dir) ReadFolder(folder string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(folder) {
		return nil, fmt.Errorf("read folder: %w", &NameError{Kind: "folder", Name: folder, Reason: "not a clean relative path"})
	}
	f, err := d.root.Open(folder)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ents, err := readEntries(d, f, folder)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, nil
}
