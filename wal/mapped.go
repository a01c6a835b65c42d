package wal

import (
	"errors"
	"io"
	"os"
	"sync"
)

// MappedFile reads a small file of fixed-size slots (state, horizon, the commit board) that
// other processes overwrite in place, from a read-only shared mapping where it can, so that a
// read is a copy from memory, not a pread(2): every Begin reads state and horizon. The page cache is one per
// host, so what any process writes with pwrite(2) is what the mapping shows. Until the file
// holds all its bytes (a file still to be written), and where it cannot be mapped, reads use
// pread. The file is never truncated by txtdb. If something else cuts it short, the process does
// not die of SIGBUS: a read that touches a page wholly past the new end gets what is left, as
// pread would, and reads with pread from then on; within the last page that is left, the bytes
// past the end read as zeros (which no slot's checksum accepts). Safe for concurrent use.
type MappedFile struct {
	f    *os.File
	size int

	mu     sync.Mutex
	mapped []byte // the file's first size bytes, nil: read with pread
	tried  bool   // mapping was tried: it is not tried again
}

// NewMappedFile returns a reader of f's first size bytes. f stays the caller's to write and to
// close, after Unmap.
func NewMappedFile(f *os.File, size int) *MappedFile {
	mf := &MappedFile{f: f, size: size}
	mf.tryMap()
	return mf
}

// tryMap maps the file if it holds size bytes by now (then it is not tried again).
// REQUIRES: mu held, or mf not yet shared.
func (mf *MappedFile) tryMap() {
	fi, err := mf.f.Stat()
	if err != nil || fi.Size() < int64(mf.size) {
		return
	}
	mf.tried = true
	mf.mapped = mapFile(mf.f, mf.size)
}

// Read reads the file's first size bytes into buf (len(buf) >= size) and returns how many it
// read: fewer if the file is shorter.
func (mf *MappedFile) Read(buf []byte) (int, error) { return mf.ReadAt(buf[:mf.size], 0) }

// ReadAt reads len(buf) bytes at off (off+len(buf) <= size) and returns how many it read: fewer
// if the file ends before.
func (mf *MappedFile) ReadAt(buf []byte, off int64) (int, error) {
	mf.mu.Lock()
	defer mf.mu.Unlock()
	if m := mf.mapped; m != nil {
		if copyMapped(buf, m[off:off+int64(len(buf))]) {
			return len(buf), nil
		}
		unmapFile(m) // cut short under the mapping: read what is there
		mf.mapped = nil
	}
	n, err := mf.f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, err
	}
	if n == len(buf) && !mf.tried {
		mf.tryMap() // maybe written in full since it was opened (a file read in part is not)
	}
	return n, nil
}

// Unmap drops the mapping: later reads use pread (on a closed file, they fail).
func (mf *MappedFile) Unmap() {
	mf.mu.Lock()
	defer mf.mu.Unlock()
	unmapFile(mf.mapped)
	mf.mapped, mf.tried = nil, true
}

// WriteOrClear writes b at off with writeAt (a file's WriteAt) and, if that fails, writes zeros
// over the same bytes, whether or not that succeeds: a write that failed may still show in a
// mapping of the file (on FUSE the kernel copies the bytes into the page cache before the file
// server refuses them, and a mapped page keeps them), and zeros fail every slot's checksum, so
// readers of the mapping do not take the failed bytes as written. It returns the first error.
func WriteOrClear(writeAt func([]byte, int64) (int, error), b []byte, off int64) error {
	if _, err := writeAt(b, off); err != nil {
		_, _ = writeAt(make([]byte, len(b)), off)
		return err
	}
	return nil
}
