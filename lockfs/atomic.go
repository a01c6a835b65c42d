package lockfs

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// syncFile is fsync(2) of f. Tests replace it to count or fail the calls; nothing else does.
var syncFile = (*os.File).Sync

// tempMarker separates a published name from the random suffix in a temporary file's name:
// WriteFile("dir/name") writes "dir/.name" + tempMarker + 16 hex digits, then renames it.
const tempMarker = ".tmp-"

// WriteFile publishes data at path atomically: it writes a new temporary file in the same
// directory, fsyncs it, renames it over path and fsyncs the directory, so a reader (in any
// process) sees the old contents or the new, never a mix, and after a crash the path holds
// one of them. The file is created with perm (0 means 0644; the umask applies), whatever the
// permissions of the file it replaces. On error the temporary file is removed and the old
// file is untouched, unless only the final directory fsync failed: then the new file is in
// place but may not survive a power cut.
//
// A process killed during WriteFile may leave its temporary file behind; IsTempName
// recognises such names. Concurrent WriteFiles of one path are safe (the last rename wins)
// but callers that need an order hold a lock.
func WriteFile(path string, data []byte, perm os.FileMode) (err error) {
	if perm == 0 {
		perm = 0o644
	}
	dir := filepath.Dir(path)
	f, tmp, err := createTemp(dir, filepath.Base(path), perm)
	if err != nil {
		return fmt.Errorf("lockfs: write %s: %w", path, err)
	}
	renamed := false
	defer func() {
		if err == nil {
			return
		}
		_ = f.Close() // a second Close after a failed one only reports os.ErrClosed
		if !renamed {
			_ = os.Remove(tmp)
		}
		err = fmt.Errorf("lockfs: write %s: %w", path, err)
	}()

	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = syncFile(f); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	renamed = true
	return syncDir(dir)
}

// createTemp creates a new file for WriteFile in dir, named after base, with perm.
func createTemp(dir, base string, perm os.FileMode) (*os.File, string, error) {
	for range 100 {
		name := filepath.Join(dir, "."+base+tempMarker+fmt.Sprintf("%016x", rand.Uint64()))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, name, err
	}
	return nil, "", &fs.PathError{Op: "createtemp", Path: filepath.Join(dir, "."+base+tempMarker+"*"), Err: fs.ErrExist}
}

// IsTempName reports whether name (a base name or a path) is that of a temporary file of
// WriteFile. Such a file belongs to a WriteFile in progress or to a process that died in one;
// removing it makes a WriteFile in progress fail, never corrupts the published file.
func IsTempName(name string) bool {
	name = filepath.Base(name)
	i := strings.LastIndex(name, tempMarker)
	if i < 2 || name[0] != '.' { // "." plus at least one byte of the published name
		return false
	}
	suffix := name[i+len(tempMarker):]
	if len(suffix) != 16 {
		return false
	}
	_, err := strconv.ParseUint(suffix, 16, 64)
	return err == nil
}
