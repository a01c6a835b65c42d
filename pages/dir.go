package pages

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// Dir is a data directory. Every file access goes through one os.Root, so no
// name, symbolic link or crafted page ID reaches outside the directory: names
// are validated first (ErrInvalidName), and os.Root refuses any path, or
// symbolic link, that would leave it.
//
// Methods take a namespace's folder path as NamespacePath returns it
// ("app/users"), not its name ("app.users", which is rejected).
//
// The methods of a Dir are safe for concurrent use by multiple goroutines, and
// by many processes sharing the directory: version files are immutable, and
// are published atomically so a reader sees a whole file or none.
type Dir struct {
	root *os.Root

	// Test hooks for faults; nil means the real call.
	syncFile func(*os.File) error        // replaces (*os.File).Sync
	link     func(old, new string) error // replaces root.Link

	closeOnce sync.Once
	closeErr  error // set by closeOnce
}

const (
	// defaultFilePerm is the permission of version files when WriteVersion
	// is given 0.
	defaultFilePerm fs.FileMode = 0o644
	// tempSuffix ends the names of temporary files (part of the format).
	tempSuffix = ".tmp"
)

// OpenDir opens the existing data directory at path; it does not create it. A
// missing directory gives an error matching fs.ErrNotExist.
func OpenDir(path string) (*Dir, error) {
	root, err := os.OpenRoot(path)
	if err != nil {
		return nil, fmt.Errorf("open data directory: %w", err)
	}
	return &Dir{root: root}, nil
}

// Close closes the directory; later calls of its methods fail. Close is
// idempotent and returns the first call's error.
func (d *Dir) Close() error {
	d.closeOnce.Do(func() { d.closeErr = d.root.Close() })
	return d.closeErr
}

// Root returns the os.Root that confines every access, for other files of the
// data directory (the metadata folder, for example). It is closed by Close.
func (d *Dir) Root() *os.Root { return d.root }

// VersionPath returns the slash-separated path, relative to the data
// directory, of version tsn of page pageID in folder nsPath (as NamespacePath
// returns it), after validating the names: a
// bad folder path, page ID or format, or a TSN of 0, gives an error matching
// ErrInvalidName or ErrFormat.
func VersionPath(nsPath, pageID string, f Format, tsn TSN) (string, error) {
	if _, err := Namespace(nsPath); err != nil {
		return "", err
	}
	if _, err := ParsePageID(pageID); err != nil {
		return "", err
	}
	if err := checkFormat(f); err != nil {
		return "", err
	}
	name := VersionFileName(pageID, f, tsn)
	if tsn == 0 {
		return "", &NameError{Kind: kindPage, Name: name, Reason: "TSN 0 is not a version"}
	}
	return nsPath + "/" + name, nil
}

// WriteVersion writes the version file of (nsPath, pageID, tsn) holding objs
// (see EncodePage) atomically: a temporary file in the same folder, fsync,
// publish under the final name, fsync the folder. Missing folders are created
// (permission perm plus search bits where it has read bits) and their parents
// fsynced. perm 0 means 0644; the process umask applies.
//
// Versions are immutable: if the version exists, WriteVersion returns an
// error matching fs.ErrExist and leaves it alone. The file is published with
// a hard link, which fails if the name is taken, so of two processes writing
// the same version at the same time exactly one succeeds. (Where hard links
// are not supported it falls back to checking, then renaming, which is not
// atomic against a concurrent writer of the same version.)
//
// Bad names give an error matching ErrInvalidName, objects of another format
// one matching ErrFormat. After any other error the version file is either
// absent or whole, never partial, though it may not be durable.
func (d *Dir) WriteVersion(nsPath, pageID string, f Format, tsn TSN, objs []Object, perm os.FileMode) error {
	rel, err := VersionPath(nsPath, pageID, f, tsn)
	if err != nil {
		return fmt.Errorf("write version: %w", err)
	}
	data, err := EncodePage(f, objs)
	if err != nil {
		return fmt.Errorf("write version %s: %w", rel, err)
	}
	if err := d.publish(nsPath, rel, data, perm, true); err != nil {
		return fmt.Errorf("write version %s: %w", rel, err)
	}
	return nil
}

// WriteVersionIn writes a version file into any folder inside the directory (a namespace folder,
// or a folder of the engine's under MetaDir) for a caller that publishes it by other means (the
// engine's checkpoint catalog names the files only once they are durable): the file is created
// under its final name (exclusively: fs.ErrExist if it is there) and written, with no temporary
// name and no fsync of the folder, and with no fsync of the file unless syncFile. Until the
// caller has made it durable (SyncAll or SyncFolder) and published it, a reader may find it
// partly written. folder must be a clean, slash-separated relative path (fs.ValidPath).
func (d *Dir) WriteVersionIn(folder, pageID string, f Format, tsn TSN, objs []Object, perm os.FileMode, syncFile bool) error {
	if !fs.ValidPath(folder) || folder == "." {
		return fmt.Errorf("write version: %w", &NameError{Kind: "folder", Name: folder, Reason: "not a clean relative path"})
	}
	if _, err := ParsePageID(pageID); err != nil {
		return fmt.Errorf("write version: %w", err)
	}
	if err := checkFormat(f); err != nil {
		return fmt.Errorf("write version: %w", err)
	}
	rel := path.Join(folder, VersionFileName(pageID, f, tsn))
	data, err := EncodePage(f, objs)
	if err != nil {
		return fmt.Errorf("write version %s: %w", rel, err)
	}
	if err := d.writeNew(folder, rel, data, perm, syncFile); err != nil {
		return fmt.Errorf("write version %s: %w", rel, err)
	}
	return nil
}

// writeNew creates rel exclusively and writes data to it (see WriteVersionIn).
func (d *Dir) writeNew(dir, rel string, data []byte, perm fs.FileMode, syncFile bool) (err error) {
	perm &= fs.ModePerm
	if perm == 0 {
		perm = defaultFilePerm
	}
	if err := d.mkdirs(dir, perm|(perm&0o444)>>2); err != nil {
		return err
	}
	file, err := d.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := file.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := file.Write(data); err != nil {
		return err
	}
	if syncFile {
		return d.sync(file)
	}
	return nil
}

// MkdirFolder creates a folder inside the directory and the missing ones above it, and fsyncs the
// parent of every folder on its path, so that the folder survives a power cut. Also the parents
// of folders that already exist: one an earlier attempt made, whose parent's fsync failed, exists
// (mkdir says EEXIST) but may not be durable, and a failed fsync is not reported again.
func (d *Dir) MkdirFolder(folder string, perm os.FileMode) error {
	if !fs.ValidPath(folder) || folder == "." {
		return fmt.Errorf("make folder: %w", &NameError{Kind: "folder", Name: folder, Reason: "not a clean relative path"})
	}
	if err := d.mkdirs(folder, perm); err != nil {
		return err
	}
	for p := path.Dir(folder); ; p = path.Dir(p) {
		if err := d.syncDir(p); err != nil {
			return err
		}
		if p == "." {
			return nil
		}
	}
}

// SyncFolder fsyncs a folder inside the directory (see WriteVersionIn).
func (d *Dir) SyncFolder(folder string) error {
	if !fs.ValidPath(folder) {
		return fmt.Errorf("sync folder: %w", &NameError{Kind: "folder", Name: folder, Reason: "not a clean relative path"})
	}
	return d.syncDir(folder)
}

// publish writes data to the new file rel in folder dir; see WriteVersion.
func (d *Dir) publish(dir, rel string, data []byte, perm fs.FileMode, syncDir bool) (err error) {
	if _, err := d.root.Lstat(rel); err == nil {
		return &fs.PathError{Op: "publish", Path: rel, Err: fs.ErrExist}
	}
	perm &= fs.ModePerm
	if perm == 0 {
		perm = defaultFilePerm
	}
	if err := d.mkdirs(dir, perm|(perm&0o444)>>2); err != nil {
		return err
	}
	tmp := path.Join(dir, "."+path.Base(rel)+"."+rand.Text()+tempSuffix)
	file, err := d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer func() {
		if file != nil {
			_ = file.Close() // the write already failed
		}
		if err != nil {
			_ = d.root.Remove(tmp) // best effort; RemoveTemps cleans up leftovers
		}
	}()
	if _, err := file.Write(data); err != nil {
		return err
	}
	if err := d.sync(file); err != nil {
		return err
	}
	err = file.Close()
	file = nil
	if err != nil {
		return err
	}
	link := d.root.Link
	if d.link != nil {
		link = d.link
	}
	switch err := link(tmp, rel); {
	case err == nil:
		// The version is published; a temporary name that cannot be removed
		// is only a leftover for RemoveTemps.
		_ = d.root.Remove(tmp)
	case errors.Is(err, fs.ErrExist):
		return err
	case errors.Is(err, errors.ErrUnsupported), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EXDEV):
		// No hard links here: check, then rename.
		if _, err := d.root.Lstat(rel); err == nil {
			return &fs.PathError{Op: "publish", Path: rel, Err: fs.ErrExist}
		}
		if err := d.root.Rename(tmp, rel); err != nil {
			return err
		}
	default:
		return err
	}
	if !syncDir {
		return nil
	}
	return d.syncDir(dir)
}

// mkdirs creates the missing folders of dir, then fsyncs the parent of each
// one it created.
func (d *Dir) mkdirs(dir string, perm fs.FileMode) error {
	var created []string
	for i := 0; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		p := dir[:i]
		switch err := d.root.Mkdir(p, perm); {
		case err == nil:
			created = append(created, p)
		case errors.Is(err, fs.ErrExist):
			// A folder, or something that later calls will reject.
		default:
			return err
		}
	}
	for _, p := range slices.Backward(created) {
		if err := d.syncDir(path.Dir(p)); err != nil {
			return err
		}
	}
	return nil
}

// ReadVersion reads and decodes one version file. A missing file gives an
// error matching fs.ErrNotExist; a corrupt one a *CorruptError whose Path is
// the file's path relative to the directory.
func (d *Dir) ReadVersion(nsPath, pageID string, f Format, tsn TSN) ([]Object, error) {
	rel, err := VersionPath(nsPath, pageID, f, tsn)
	if err != nil {
		return nil, fmt.Errorf("read version: %w", err)
	}
	data, err := d.root.ReadFile(rel)
	if err != nil {
		return nil, fmt.Errorf("read version %s: %w", rel, err)
	}
	objs, err := DecodePage(f, data)
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			return nil, &CorruptError{Path: rel, Offset: ce.Offset, Err: ce.Err}
		}
		return nil, fmt.Errorf("read version %s: %w", rel, err)
	}
	return objs, nil
}

// Version names one version file of a namespace folder.
type Version struct {
	PageID string
	TSN    TSN
}

// Versions lists the version files of format f in folder nsPath: regular
// files only, not subfolders (other namespaces) and not names that do not
// parse (temporary files, other formats, anything else), sorted by page
// number, then TSN. A missing folder has no versions (nil, nil).
func (d *Dir) Versions(nsPath string, f Format) ([]Version, error) {
	if _, err := Namespace(nsPath); err != nil {
		return nil, fmt.Errorf("list versions: %w", err)
	}
	if err := checkFormat(f); err != nil {
		return nil, fmt.Errorf("list versions: %w", err)
	}
	entries, err := d.readDir(nsPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list versions in %s: %w", nsPath, err)
	}
	type numbered struct {
		n uint64
		v Version
	}
	var list []numbered
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		id, ff, tsn, err := ParseVersionFileName(e.Name())
		if err != nil || ff != f {
			continue
		}
		n, _ := ParsePageID(id) // INVARIANT: ParseVersionFileName checked it.
		list = append(list, numbered{n, Version{PageID: id, TSN: tsn}})
	}
	slices.SortFunc(list, func(a, b numbered) int {
		return cmp.Or(cmp.Compare(a.n, b.n), cmp.Compare(a.v.TSN, b.v.TSN))
	})
	versions := make([]Version, len(list))
	for i, x := range list {
		versions[i] = x.v
	}
	return versions, nil
}

// RemoveVersion deletes one version file. A missing file gives an error
// matching fs.ErrNotExist. The removal is durable only once the folder is
// synced (SyncNamespace), so a caller removing many versions syncs once.
func (d *Dir) RemoveVersion(nsPath, pageID string, f Format, tsn TSN) error {
	rel, err := VersionPath(nsPath, pageID, f, tsn)
	if err != nil {
		return fmt.Errorf("remove version: %w", err)
	}
	if err := d.root.Remove(rel); err != nil {
		return fmt.Errorf("remove version %s: %w", rel, err)
	}
	return nil
}

// SyncNamespace fsyncs folder nsPath, making removals in it durable.
func (d *Dir) SyncNamespace(nsPath string) error {
	if _, err := Namespace(nsPath); err != nil {
		return fmt.Errorf("sync namespace: %w", err)
	}
	if err := d.syncDir(nsPath); err != nil {
		return fmt.Errorf("sync namespace %s: %w", nsPath, err)
	}
	return nil
}

// RemoveTemps deletes the temporary files that interrupted WriteVersion calls
// left in folder nsPath and returns how many it removed. A missing folder has
// none.
//
// REQUIRES: no WriteVersion into nsPath is running, in any process (for
// example, the caller holds the lock that serializes checkpoints); a running
// one would fail.
func (d *Dir) RemoveTemps(nsPath string) (int, error) {
	if _, err := Namespace(nsPath); err != nil {
		return 0, fmt.Errorf("remove temporary files: %w", err)
	}
	entries, err := d.readDir(nsPath)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("remove temporary files in %s: %w", nsPath, err)
	}
	n := 0
	for _, e := range entries {
		if !e.Type().IsRegular() || !isTempName(e.Name()) {
			continue
		}
		switch err := d.root.Remove(nsPath + "/" + e.Name()); {
		case err == nil:
			n++
		case !errors.Is(err, fs.ErrNotExist):
			return n, fmt.Errorf("remove temporary files in %s: %w", nsPath, err)
		}
	}
	return n, nil
}

// isTempName reports whether name is a temporary name made by publish:
// "." + version file name + "." + random + ".tmp".
func isTempName(name string) bool {
	inner, ok := strings.CutPrefix(name, ".")
	if !ok {
		return false
	}
	inner, ok = strings.CutSuffix(inner, tempSuffix)
	if !ok {
		return false
	}
	i := strings.LastIndexByte(inner, '.')
	if i < 0 {
		return false
	}
	_, _, _, err := ParseVersionFileName(inner[:i])
	return err == nil
}

// readDir lists folder dir.
func (d *Dir) readDir(dir string) ([]fs.DirEntry, error) {
	f, err := d.root.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

// syncDir fsyncs folder dir.
func (d *Dir) syncDir(dir string) error {
	f, err := d.root.Open(dir)
	if err != nil {
		return err
	}
	err = d.sync(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// sync fsyncs f, through the test hook if one is set.
func (d *Dir) sync(f *os.File) error {
	if d.syncFile != nil {
		return d.syncFile(f)
	}
	return f.Sync()
}
