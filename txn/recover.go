package txn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/uuid"
	"github.com/txtdb/txtdb/lockfs"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// recoverLocked repairs what a dead committer left and returns the authoritative state:
//   - whole, valid records past state's position are fsynced, then adopted (state is rewritten);
//   - a torn or checksum-failing tail past state's position is erased with zeros (and fdatasynced);
//   - segments past the last good record (a rotation that never got a record) are removed;
//   - no readable state slot: state is rebuilt from the log under a new lineage;
//   - a NoSync state from another boot (a power cut may have cost the log its unsynced tail, or
//     a page inside it): state is rebuilt from the longest valid chain of records, under a new
//     lineage, and whatever follows the first broken link is cut off (it was never durable).
//
// Otherwise nothing at or below state's position is ever erased. REQUIRES: commit lock held.
//
// Until the handle is verified (see DB.verified), the fast path is not taken: the first
// recovery since this process started looks past the first zero, as after a reboot. A successful
// recovery verifies the handle.
func (db *DB) recoverLocked() (st state, err error) {
	defer func() {
		if err == nil && !db.verified.Load() {
			db.verified.Store(true)
		}
	}()
	st, err = db.state.Read()
	if err == nil {
		db.noteBoot(st)
	}
	if errors.Is(err, wal.ErrNoState) {
		faults.didRecover(db, true)
		db.dropWriter()
		if err := wal.CheckVersions(db.logDir); err != nil { // before anything changes
			return st, err
		}
		if err := wal.RemoveTemps(db.logDir); err != nil {
			return st, fmt.Errorf("recover: %w", err)
		}
		return db.rebuildLocked(state{}, false)
	}
	if err != nil {
		return st, err
	}
	if db.cleanTail(st) {
		faults.didRecover(db, false)
		return st, nil
	}
	faults.didRecover(db, true)
	// Off the fast path files may be erased, removed or re-created: reopen the writer afterwards.
	db.dropWriter()
	if err := wal.CheckVersions(db.logDir); err != nil { // before anything changes
		return st, err
	}
	if err := wal.RemoveTemps(db.logDir); err != nil { // what a rotation killed midway left
		return st, fmt.Errorf("recover: %w", err)
	}
	if st.NoSync && st.Boot != db.boot && !db.verified.Load() {
		// A NoSync state from before this handle started, written in another boot.
		return db.rebuildLocked(st, true)
	}
	if st.NoSync && db.boot == "" && !db.verified.Load() && !db.livePeers() {
		// No boot signal: a NoSync state cannot be told from one a live peer wrote in this boot,
		// unless no other process is alive. Then nobody can have seen TSNs past the log's durable
		// part in this boot, and a power cut may have cost the log its tail: a new lineage, so
		// TSNs lost to the cut are never issued again under the old one.
		return db.rebuildLocked(st, true)
	}
	// A state slot older than the checkpoint survived a power cut (state is not fsynced; the
	// checkpoint is, after the log it covers): it may name a segment cleanup has trimmed since.
	// The log from the checkpoint's position on is the truth then.
	orig := st
	if cat, ok, err := readCatalog(db.catalogPath()); err != nil {
		return st, err
	} else if pos, _ := cat.Log.pos(); ok && (cat.TSN > st.TSN || posAfter(pos, st.Pos)) {
		// (Equal TSNs: reservations after the last commit, in a segment started for them.)
		st.TSN, st.Pos = cat.TSN, pos
	}
	segs, err := wal.ListSegments(db.logDir)
	if err != nil {
		return st, err
	}
	if !containsSeg(segs, st.Pos.Seg) {
		if !st.NoSync {
			return st, corrupt(filepath.Join(db.logDir, wal.SegName(st.Pos.Seg)), 0, errors.New("segment named by state is missing"))
		}
		return db.rebuildLocked(st, true)
	}
	cur := st
	var dirty []*os.File // files holding adopted records, to fsync before adopting
	defer func() {
		for _, f := range dirty {
			_ = f.Close()
		}
	}()
	stopped := false // a segment was cut short or dropped: nothing after it can be valid
	for _, seg := range segs {
		if seg < st.Pos.Seg {
			continue
		}
		path := filepath.Join(db.logDir, wal.SegName(seg))
		later := seg != st.Pos.Seg
		// A later segment is valid only if a rotation made it right after cur (rotation names
		// the new segment by the TSN after the last committed one).
		if later && (stopped || seg != cur.TSN+1) {
			if err := removeSegment(path); err != nil {
				return st, err
			}
			stopped = true
			continue
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return st, fmt.Errorf("recover: %w", err)
		}
		from := cur.Pos
		if later {
			if _, from, err = wal.ReadHeader(f, seg); err != nil {
				_ = f.Close()
				if errors.Is(err, ErrVersion) {
					return st, err
				}
				if err := removeSegment(path); err != nil {
					return st, err
				}
				stopped = true
				continue
			}
		} else if ok, err := endsRecordAt(f, st.Pos.Off); err != nil || !ok {
			_ = f.Close()
			if err != nil {
				return st, err
			}
			if !st.NoSync {
				// With sync on, the log is fsynced before state names it: a shorter log is
				// damage from outside, reported and not papered over.
				return st, corrupt(path, st.Pos.Off, errors.New("no record ends where state says the log ends"))
			}
			return db.rebuildLocked(st, true) // a NoSync tail lost in a power cut
		}
		data, err := wal.ReadRange(f, from.Off, -1)
		if err != nil {
			_ = f.Close()
			return st, fmt.Errorf("recover: read %s: %w", path, err)
		}
		recs, bad := wal.ScanRecords(db.format, data, from)
		good, adopted := from.Off, 0
		for _, r := range recs {
			if !follows(cur.TSN, &r.Rec) {
				bad = fmt.Errorf("%w: tsn %d does not follow %d", wal.ErrBadRecord, r.Rec.TSN, cur.TSN)
				break
			}
			cur.TSN, cur.Pos, good = r.Rec.TSN, r.End, r.End.Off
			adopted++
		}
		if later && adopted == 0 {
			_ = f.Close()
			if err := removeSegment(path); err != nil {
				return st, err
			}
			stopped = true
			continue
		}
		// Erase everything past the good records, up to the last non-zero byte: stale bytes of a
		// failed batch behind zeros would otherwise be found again once a new record ends where
		// one of them starts (and a retried, byte-identical record even continues their chain).
		if end := from.Off + int64(wal.DataEnd(data)); end > good {
			if err := eraseSync(f, good, end); err != nil {
				_ = f.Close()
				return st, fmt.Errorf("recover: erase torn tail of %s at %d: %w (%v)", path, good, err, bad)
			}
			stopped = true
			crashAt(crashRecoverTruncate)
		}
		if adopted > 0 {
			dirty = append(dirty, f)
		} else {
			_ = f.Close()
		}
	}
	if cur.Pos != st.Pos {
		for _, f := range dirty {
			if err := f.Sync(); err != nil {
				return st, fmt.Errorf("recover: fsync adopted records: %w", err)
			}
		}
		crashAt(crashRecoverAdopted)
	}
	cur.Boot = db.boot // off the fast path: state then records a boot that has recovered
	if cur != orig {
		cur.Seq = orig.Seq + 1
		if err := writeState(db.state, cur, false); err != nil {
			return st, err
		}
	}
	return cur, nil
}

// cleanTail is recovery's fast path: the log ends exactly where state says, and no rotation left
// a newer segment behind (a rotation names it by the TSN after state's, so one stat tells).
// REQUIRES: commit lock held.
func (db *DB) cleanTail(st state) bool {
	if !db.verified.Load() {
		// State may predate a reboot: a power cut can leave a batch's later pages on disk
		// behind zeros; only the slow path looks past the first zero. Once verified, state
		// was written in this boot, whatever boot id it carries.
		return false
	}
	if db.openWriter(st.Pos.Seg) != nil {
		return false
	}
	return db.logEndsAt(db.wr.f, st)
}

// logEndsAt reports whether the log ends exactly at st's position: a record ends there in seg (a
// handle on st's segment) and zeros or the file's end follow, and no rotation left a newer
// segment behind.
func (db *DB) logEndsAt(seg *os.File, st state) bool {
	if !tailClean(seg, st.Pos.Off) {
		return false
	}
	if st.Pos.Seg == st.TSN+1 {
		return true // the segment was started after the last commit; no newer one can exist
	}
	if st.Pos.Off < db.storeSegBytes {
		// Nobody rotates before state's segment reaches the store's segment size (a setting
		// every process shares), so no rotation can have published a newer segment.
		return true
	}
	_, err := os.Lstat(filepath.Join(db.logDir, wal.SegName(st.TSN+1)))
	return errors.Is(err, os.ErrNotExist)
}

// rebuildLocked rebuilds state from the whole log under a new lineage. Strict (no readable
// state): only a torn last line of the last segment may go; a bad record followed by more is
// ErrCorrupt. Lenient (a NoSync state after a reboot, whose unsynced tail may have holes): the
// log is cut at the first broken link, and later segments are removed.
// REQUIRES: commit lock held.
func (db *DB) rebuildLocked(old state, lenient bool) (state, error) {
	db.dropReaders() // segments may be erased, removed and later re-created under their names
	segs, err := wal.ListSegments(db.logDir)
	if err != nil {
		return old, err
	}
	if len(segs) == 0 {
		return old, corrupt(db.logDir, 0, errors.New("no log segment"))
	}
	// The new state must order after anything any process has seen: with no readable old
	// state, jump far ahead of what this process knows.
	seq := max(old.Seq, db.idxp.Load().seqSeen()) + 1
	if old.Lineage == "" {
		seq += 1 << 32
	}
	// The log starts at its first retained segment, not at TSN 1: segment F holds the records
	// from TSN F on (and reservations at F-1).
	cur := state{Seq: seq, Lineage: uuid.NewString(), Boot: db.boot, TSN: segs[0] - 1}
	cat, haveCat, err := readCatalog(db.catalogPath())
	if err != nil {
		return old, err
	}
	cut := false // the chain broke: every later segment goes
	for i, seg := range segs {
		path := filepath.Join(db.logDir, wal.SegName(seg))
		if cut {
			if err := removeSegment(path); err != nil {
				return old, err
			}
			continue
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return old, fmt.Errorf("rebuild state: %w", err)
		}
		_, from, err := wal.ReadHeader(f, seg)
		if err == nil && i > 0 && seg != cur.TSN+1 {
			err = fmt.Errorf("%w: segment %s does not follow tsn %d", wal.ErrBadRecord, wal.SegName(seg), cur.TSN)
		}
		if err != nil {
			_ = f.Close()
			if errors.Is(err, ErrVersion) {
				return old, err
			}
			if lenient && i > 0 {
				cut = true
				if err := removeSegment(path); err != nil {
					return old, err
				}
				continue
			}
			return old, corrupt(path, 0, err)
		}
		if i == 0 {
			cur.Pos = from
		}
		data, err := wal.ReadRange(f, from.Off, -1)
		if err != nil {
			_ = f.Close()
			return old, corrupt(path, from.Off, err)
		}
		recs, bad := wal.ScanRecords(db.format, data, from)
		end := from
		for _, r := range recs {
			if !follows(cur.TSN, &r.Rec) {
				bad = fmt.Errorf("%w: tsn %d does not follow %d", wal.ErrBadRecord, r.Rec.TSN, cur.TSN)
				break
			}
			cur.TSN, cur.Pos, end = r.Rec.TSN, r.End, r.End
		}
		if bad == nil && from.Off+int64(wal.DataEnd(data)) > end.Off {
			// Bytes behind zeros past the chain's end: never acknowledged (every fdatasync
			// covers the chain up to its record), and dangerous to keep (see recoverLocked).
			if lenient {
				cut = true
			}
			if err := eraseSync(f, end.Off, from.Off+int64(wal.DataEnd(data))); err != nil {
				_ = f.Close()
				return old, err
			}
		}
		if bad != nil {
			dirty := wal.NulAt(data, int(end.Off-from.Off))
			switch {
			case lenient:
				cut = true
				err = eraseSync(f, end.Off, from.Off+int64(len(data)))
			case i == len(segs)-1 && bytes.IndexByte(data[end.Off-from.Off:dirty], '\n') < 0:
				err = eraseSync(f, end.Off, from.Off+int64(wal.DataEnd(data))) // a torn last line
			default:
				err = corrupt(path, end.Off, bad)
			}
			if err != nil {
				_ = f.Close()
				return old, err
			}
		}
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return old, fmt.Errorf("rebuild state: fsync %s: %w", path, err)
		}
		_ = f.Close()
	}
	if haveCat && cur.TSN < cat.TSN {
		// Page files exist for TSNs the log no longer holds: the log was fsynced before they
		// were written, so this is damage, not a lost NoSync tail.
		return old, corrupt(db.logDir, 0, fmt.Errorf("log ends at tsn %d, below the checkpoint at %d", cur.TSN, cat.TSN))
	}
	if err := writeState(db.state, cur, true); err != nil {
		return old, err
	}
	return cur, nil
}

// follows reports whether r may come right after a record that left the committed TSN at tsn.
func follows(tsn pages.TSN, r *record) bool {
	if r.IsReservation() {
		return r.TSN == tsn
	}
	return r.TSN == tsn+1
}

func containsSeg(segs []pages.TSN, seg pages.TSN) bool {
	for _, s := range segs {
		if s == seg {
			return true
		}
	}
	return false
}

func removeSegment(path string) error {
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("recover: remove unused segment: %w", err)
	}
	return lockfs.SyncDir(filepath.Dir(path))
}

// endsRecordAt reports whether a record (or the header) ends at off: the byte before it is a
// newline.
func endsRecordAt(f *os.File, off int64) (bool, error) {
	var b [1]byte
	n, err := f.ReadAt(b[:], off-1)
	if n == 1 {
		return b[0] == '\n', nil
	}
	if errors.Is(err, io.EOF) {
		return false, nil
	}
	return false, err
}

// tailClean reports whether the log ends exactly at off: a record ends there and nothing (or
// only preallocated zeros) follows.
func tailClean(f *os.File, off int64) bool {
	var b [2]byte
	n, err := f.ReadAt(b[:], off-1)
	if n == 0 || b[0] != '\n' {
		return false
	}
	return (n == 1 && errors.Is(err, io.EOF)) || (n == 2 && b[1] == 0)
}

// posAfter reports whether log position a lies after b.
func posAfter(a, b logPos) bool {
	return a.Seg > b.Seg || (a.Seg == b.Seg && a.Off > b.Off)
}
