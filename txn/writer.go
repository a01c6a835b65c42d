package txn

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// segWriter is the commit group leader's read-write handle on the segment it appends to. Owned by
// the goroutine leading a commit group (or Open, before any group).
type segWriter struct {
	f    *os.File
	seg  pages.TSN // the segment's name
	size int64     // the segment's file size (records, then zeros)
}

// appendLog writes the group's records at off and fsyncs them (unless noSync).
// REQUIRES: commit lock held.
func (db *DB) appendLog(b []byte, off int64, noSync bool) error {
	if err := faults.hit(faultLogWrite); err != nil {
		return err
	}
	end := off + int64(len(b))
	if end > db.wr.size {
		// Another process may have grown the segment since this handle last looked.
		if fi, err := db.wr.f.Stat(); err == nil {
			db.wr.size = max(db.wr.size, fi.Size())
		}
	}
	if end > db.wr.size {
		// Grow the segment with real zeros past the batch, so later batches overwrite
		// preallocated space (their fdatasync then has no size change to journal).
		grown := end + db.growBytes()
		if err := faults.hit(faultLogGrow); err != nil {
			return err
		}
		if err := wal.WriteZeros(db.wr.f, max(db.wr.size, end), grown); err != nil {
			return fmt.Errorf("grow log: %w", err)
		}
		db.wr.size = grown
	}
	if crashHit(crashMidRecord) {
		_, _ = db.wr.f.WriteAt(b[:len(b)/2], off)
		die(crashMidRecord)
	}
	if _, err := db.wr.f.WriteAt(b, off); err != nil {
		return fmt.Errorf("write log: %w", err)
	}
	crashAt(crashAfterAppend)
	if noSync {
		return nil
	}
	if err := faults.hit(faultLogSync); err != nil {
		return err
	}
	if err := wal.Datasync(db.wr.f); err != nil {
		return fmt.Errorf("fsync log: %w", err)
	}
	faults.didSync(uint64(db.wr.seg), off+int64(len(b)))
	crashAt(crashAfterSync)
	return nil
}

// undo takes a failed group's bytes back out of the log. If that works, the commits did not happen
// and used no TSN; if not, their outcome is unknown and the handle refuses further work.
// REQUIRES: commit lock held.
func (db *DB) undo(accepted []*request, off int64, n int, cause error) {
	err := fmt.Errorf("txtdb: commit: %w", cause)
	// Erase what may have been written, but not past the file's end: growing the file to erase
	// would need the very space whose lack may have caused the failure.
	to := off + int64(n)
	var terr error
	if fi, serr := db.wr.f.Stat(); serr != nil {
		terr = serr
	} else if to = min(to, fi.Size()); to > off {
		terr = eraseSync(db.wr.f, off, to)
	}
	// Forget the handle: after a failure its segment may be removed by the next lock holder's
	// recovery (an empty rotated segment) and re-created under the same name.
	db.dropWriter()
	if terr != nil {
		e := errors.Join(cause, terr)
		db.broken.Store(&e)
		err = &UnknownError{Err: e}
	}
	for _, r := range accepted {
		r.err = err
		r.tsn = 0
	}
}

// dropWriter closes the group leader's segment handle; the next batch reopens by name.
func (db *DB) dropWriter() {
	if db.wr.f != nil {
		_ = db.wr.f.Close()
		db.wr = segWriter{}
	}
}

// growBytes is how much zeroed space a segment gets ahead of its records.
func (db *DB) growBytes() int64 { return min(db.cfg.SegmentBytes, 1<<20) }

// openWriter makes db.wr the read-write handle on segment seg. Used only by the goroutine leading
// a commit group.
//
// INVARIANT: a cached handle names the live file. Only segments past state are ever removed
// (recovery drops an unused rotated segment) or re-created under their name, and this process
// writes past state only inside a batch: a batch that fails drops the handle (dropWriter), one
// that succeeds moves state onto the segment.
func (db *DB) openWriter(seg pages.TSN) error {
	if db.wr.f != nil && db.wr.seg == seg {
		return nil
	}
	path := filepath.Join(db.logDir, wal.SegName(seg))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open log segment: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("open log segment: %w", err)
	}
	db.dropWriter()
	db.wr = segWriter{f: f, seg: seg, size: fi.Size()}
	return nil
}
