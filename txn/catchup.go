package txn

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// errStale means a state read is older than what the index already reflects (another commit
// landed between the read of state and the catch-up): read state again.
var errStale = errors.New("state read older than the index")

// catchUp brings the current index up to target and returns it. Records at or below target are
// durable and never erased, so any bad one is corruption, not a torn tail.
//
// If target names another lineage (history was rebuilt or rewound), a fresh index is built from
// the whole log and swapped in whole: transactions that hold the old index keep reading their
// old, consistent history, and fail validation if they try to commit.
// With pin, target's TSN is registered as a snapshot of the returned index before catchMu is
// released: pruning happens only under catchMu, so nothing that snapshot reads can be pruned.
// Safe for concurrent use; takes no file lock.
func (db *DB) catchUp(target state, pin bool) (x *index, err error) {
	db.catchMu.Lock()
	defer db.catchMu.Unlock()
	defer func() {
		if pin && err == nil {
			x.pin(target.TSN)
		}
	}()
	if db.closed.Load() {
		return nil, ErrClosed
	}
	return db.catchUpLocked(target)
}

// catchUpAhead applies, before a group waits for the commit lock, what others committed since this
// handle last caught up, so that under the lock only what was committed meanwhile is left to
// apply. It only moves work: errors are left for the catch-up under the lock.
func (db *DB) catchUpAhead() {
	if !db.verified.Load() {
		return // the group's recovery comes first
	}
	st, err := db.readState()
	if err != nil {
		return
	}
	x := db.idxp.Load()
	x.mu.RLock()
	behind := x.seq < st.Seq && x.lineage == st.Lineage
	x.mu.RUnlock()
	if behind {
		_, _ = db.catchUp(st, false)
	}
}

// catchUpGroup is catchUp for a commit group, also once Close began: Close waits for the group
// before it closes any file, and a group whose offer another process took must learn its outcome
// (a plain ErrClosed would report a committed transaction as not done). REQUIRES: commit lock
// held, by a group of this handle.
func (db *DB) catchUpGroup(target state) (*index, error) {
	db.catchMu.Lock()
	defer db.catchMu.Unlock()
	return db.catchUpLocked(target)
}

// catchUpLocked is catchUp's work. REQUIRES: catchMu held.
func (db *DB) catchUpLocked(target state) (x *index, err error) {
	x = db.idxp.Load()
	x.mu.RLock()
	seq, lineage := x.seq, x.lineage
	x.mu.RUnlock()
	if target.Seq < seq {
		return x, fmt.Errorf("%w: state seq %d (lineage %.8s, tsn %d), index seq %d (lineage %.8s)",
			errStale, target.Seq, target.Lineage, target.TSN, seq, lineage)
	}
	if lineage != target.Lineage && lineage != "" {
		return db.rebuildIndex(x, target, true)
	}
	if lineage == "" {
		x.mu.Lock()
		x.lineage = target.Lineage
		x.mu.Unlock()
	}
	err = db.follow(x, target)
	if errors.Is(err, errSegmentGone) {
		// Idle while others checkpointed and trimmed the log: start again from the page files.
		return db.rebuildIndex(x, target, false)
	}
	return x, err
}

// rebuildIndex builds a fresh index from the checkpoint and the log after it, up to target, and
// swaps it in whole. Transactions that hold the old index keep reading their old, consistent
// history; they cannot commit (a lineage conflict). A history rewound under a new lineage also
// loses this process's reserved page numbers and hot pages. REQUIRES: catchMu held.
func (db *DB) rebuildIndex(old *index, target state, newLineage bool) (*index, error) {
	for tries := 0; ; tries++ {
		y, err := db.indexFromCheckpoint()
		if err != nil {
			return old, err
		}
		y.lineage = target.Lineage
		y.seq = target.Seq
		db.closeReaders()
		err = db.follow(y, target)
		if errors.Is(err, errSegmentGone) && tries < 100 {
			continue // trimmed again while we read: the catalog has moved on too
		}
		if err != nil {
			return old, err
		}
		db.idxp.Store(y)
		db.cache.forget(old)
		db.rebuilds.Add(1)
		if newLineage {
			db.alloc.reset()
			db.floor.rewind(target.TSN) // TSNs of the old history mean nothing now
		}
		return y, nil
	}
}

// follow applies the log from x's position up to target's, following segments in order.
// REQUIRES: catchMu held.
func (db *DB) follow(x *index, target state) error {
	x.mu.RLock()
	pos := x.pos
	x.mu.RUnlock()
	if pos.Seg == 0 {
		f, err := db.segFile(1)
		if err != nil {
			return corrupt(db.logDir, 0, fmt.Errorf("no checkpoint and no first log segment: %w", err))
		}
		_, hdr, err := wal.ReadHeader(f, 1)
		if err != nil {
			return corrupt(f.Name(), 0, err)
		}
		pos = hdr
		x.mu.Lock()
		x.pos = pos
		x.mu.Unlock()
	}
	r := logReader{open: db.segFile, done: func(seg pages.TSN) {
		if f := db.segs[seg]; f != nil {
			_ = f.Close()
			delete(db.segs, seg)
		}
	}, buf: &db.readBuf}
	if !db.cfg.ReadOnly {
		// A read-only handle registers no floor: cleanup may trim the log under its snapshots,
		// so it keeps what it catches up decoded (reading it later could need a trimmed record).
		r.skip = x.cold
	}
	// Cleared once applied (and on a failed walk): nothing of the records stays reachable from
	// the scratch kept for the next catch-up.
	batch := db.batch[:0]
	defer func() {
		clear(batch)
		db.batch = batch[:0]
	}()
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := applyRecords(x, batch)
		clear(batch)
		batch = batch[:0]
		return err
	}
	for tries := 0; ; tries++ {
		x.mu.RLock()
		applied := x.applied
		x.mu.RUnlock()
		end, err := db.walk(r, pos, target.Pos, applied, func(sc *scanned) bool {
			batch = append(batch, *sc)
			return true
		}, flush)
		if errors.Is(err, errSegmentGone) && tries == 0 {
			// The segment this index stands in was trimmed after it applied every commit in
			// it: go on at the segment of the next commit, if it is there.
			if next, ok := db.skipTrimmed(x, end); ok {
				pos = next
				continue
			}
		}
		if err != nil {
			return err
		}
		x.mu.Lock()
		x.pos = end
		x.seq = max(x.seq, target.Seq)
		x.mu.Unlock()
		return nil
	}
}

// skipTrimmed handles an index whose position is in a segment that cleanup trimmed: if the
// segment named by the TSN after the index's last commit exists, no commit of the trimmed
// segment lies past the index, and only reservations may (a segment is started by the commit
// after the last one before it). Those are in the checkpoint, which covers every trimmed segment:
// its page-ID marks are taken, and the index moves to the next segment's first record.
// REQUIRES: catchMu held.
func (db *DB) skipTrimmed(x *index, at logPos) (logPos, bool) {
	x.mu.RLock()
	applied, pos := x.applied, x.pos
	x.mu.RUnlock()
	if at != pos { // the walk got somewhere before it found a gap: not this case
		return logPos{}, false
	}
	if _, err := os.Stat(filepath.Join(db.logDir, wal.SegName(pos.Seg))); !errors.Is(err, fs.ErrNotExist) {
		return logPos{}, false
	}
	f, err := os.Open(filepath.Join(db.logDir, wal.SegName(applied+1)))
	if err != nil {
		return logPos{}, false
	}
	_, hdr, err := wal.ReadHeader(f, applied+1)
	_ = f.Close()
	if err != nil {
		return logPos{}, false
	}
	cat, ok, err := readCatalog(db.catalogPath())
	if err != nil || !ok || cat.Log.Seg <= pos.Seg || cat.TSN < applied {
		return logPos{}, false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, ci := range cat.Incs {
		if in := x.incs[ci.Inc]; in != nil {
			in.reserved = max(in.reserved, ci.Reserved)
		}
	}
	x.pos = hdr
	return hdr, true
}

// logReader opens segments for walk and is told when walk is done with one.
type logReader struct {
	open func(seg pages.TSN) (*os.File, error)
	done func(seg pages.TSN)
	// buf, if set, is where walk reads the log into, when it has room: only for a walk whose
	// fn keeps nothing of the bytes (the parser copies what records keep).
	buf *[]byte
	// skip, if set, names the pages whose objects walk leaves undecoded (wal.ScanRecordsLazy).
	skip func(inc string, page uint64) bool
}

// maxReadBuf bounds the read buffer a handle keeps for catching up (a long catch-up reads into
// a buffer of its own).
const maxReadBuf = 64 << 10

// errSegmentGone means a segment the walk needed is no longer in the log (trimmed after a
// checkpoint): the reader must start again from the checkpoint.
var errSegmentGone = errors.New("log segment trimmed")

// errAheadOfState means the log position to read from (the checkpoint's) is past state: state is
// an older slot that survived a power cut, and recovery under the commit lock must adopt the log.
var errAheadOfState = errors.New("checkpoint is ahead of state")

// walkLog reads the records from from up to to with its own file handles, calling fn for each;
// fn returns false to stop before a record. It returns the end of the last record consumed.
func (db *DB) walkLog(from, to logPos, tsn pages.TSN, fn func(sc *scanned) bool) (logPos, error) {
	open := map[pages.TSN]*os.File{}
	defer func() {
		for _, f := range open {
			_ = f.Close()
		}
	}()
	r := logReader{
		open: func(seg pages.TSN) (*os.File, error) {
			if f := open[seg]; f != nil {
				return f, nil
			}
			f, err := os.Open(filepath.Join(db.logDir, wal.SegName(seg)))
			if err != nil {
				return nil, err
			}
			open[seg] = f
			return f, nil
		},
		done: func(seg pages.TSN) {
			if f := open[seg]; f != nil {
				_ = f.Close()
				delete(open, seg)
			}
		},
	}
	return db.walk(r, from, to, tsn, fn, nil)
}

// walk reads the log from pos up to target, in segment order, checking every record's checksum
// chain and TSN sequence, and hands each record to fn (which may stop the walk by returning
// false). flush, if set, runs after each segment's records. Everything at or below target is
// durable, so a bad record is ErrCorrupt; a segment missing from the log is errSegmentGone.
//
// tsn is the committed TSN at pos; a segment that follows another must be named by the TSN after
// the last commit before it, so a gap (segments trimmed while a cached handle on an older one
// kept it readable) is errSegmentGone, not corruption.
func (db *DB) walk(r logReader, pos, target logPos, tsn pages.TSN, fn func(sc *scanned) bool, flush func() error) (logPos, error) {
	openSeg := func(seg pages.TSN) (*os.File, error) {
		f, err := r.open(seg)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", errSegmentGone, wal.SegName(seg))
		}
		if err != nil {
			return nil, fmt.Errorf("open log segment: %w", err)
		}
		return f, nil
	}
	for pos != target {
		if pos.Seg > target.Seg || (pos.Seg == target.Seg && pos.Off > target.Off) {
			return pos, fmt.Errorf("%w: log position %v is past state %v", errAheadOfState, pos, target)
		}
		f, err := openSeg(pos.Seg)
		if err != nil {
			return pos, err
		}
		to := int64(-1)
		if pos.Seg == target.Seg {
			to = target.Off
		}
		var buf []byte
		if r.buf != nil {
			buf = *r.buf
		}
		data, err := wal.ReadRangeInto(f, pos.Off, to, buf)
		if r.buf != nil && cap(data) <= maxReadBuf && cap(data) > cap(buf) {
			*r.buf = data[:0]
		}
		if err != nil {
			return pos, corrupt(f.Name(), pos.Off, err)
		}
		recs, bad := wal.ScanRecordsLazy(db.format, data, pos, r.skip)
		if bad == nil && to >= 0 {
			if end := endOf(recs, pos); end != target {
				bad = fmt.Errorf("%w: records end at %v, state says %v", wal.ErrBadRecord, end, target)
			}
		}
		if bad != nil {
			return pos, corrupt(f.Name(), pos.Off, bad)
		}
		stopped := false
		for i := range recs {
			if !fn(&recs[i]) {
				stopped = true
				break
			}
			pos = recs[i].End
			tsn = recs[i].Rec.TSN
		}
		if flush != nil {
			if err := flush(); err != nil {
				return pos, corrupt(f.Name(), pos.Off, err)
			}
		}
		if stopped || to >= 0 {
			return pos, nil
		}
		next, err := wal.NextSegment(db.logDir, pos.Seg)
		if err != nil {
			return pos, err
		}
		if next == 0 || next > target.Seg {
			return pos, corrupt(db.logDir, 0, fmt.Errorf("log segment after %s missing", wal.SegName(pos.Seg)))
		}
		if next != tsn+1 {
			return pos, fmt.Errorf("%w: log segments after %s up to %s", errSegmentGone, wal.SegName(pos.Seg), wal.SegName(next))
		}
		nf, err := openSeg(next)
		if err != nil {
			return pos, err
		}
		_, hdr, err := wal.ReadHeader(nf, next)
		if err != nil {
			return pos, corrupt(nf.Name(), 0, err)
		}
		r.done(pos.Seg)
		pos = hdr
	}
	return pos, nil
}

// endOf returns where the last of recs ends (from if there are none).
func endOf(recs []scanned, from logPos) logPos {
	if len(recs) == 0 {
		return from
	}
	return recs[len(recs)-1].End
}

// applyRecords applies records read from segment seg. Each record is checked whole before any
// of it is applied.
func applyRecords(x *index, recs []scanned) error {
	if x.cache != nil {
		defer x.cache.drain() // after the unlock below: evictions take the index's mu
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := range recs {
		if err := x.apply(&recs[i].Rec, recs[i].Start, recs[i].End); err != nil {
			return err
		}
	}
	return nil
}

// dropReaders closes the cached read handles on segments (they are reopened by name).
func (db *DB) dropReaders() {
	db.catchMu.Lock()
	defer db.catchMu.Unlock()
	db.closeReaders()
}

// closeReaders: dropReaders with catchMu held.
func (db *DB) closeReaders() {
	for seg, f := range db.segs {
		_ = f.Close()
		delete(db.segs, seg)
	}
}

// segFile returns a read handle on a segment.
// REQUIRES: catchMu held.
func (db *DB) segFile(seg pages.TSN) (*os.File, error) {
	if f := db.segs[seg]; f != nil {
		return f, nil
	}
	f, err := os.Open(filepath.Join(db.logDir, wal.SegName(seg)))
	if err != nil {
		return nil, fmt.Errorf("open log segment: %w", err)
	}
	db.segs[seg] = f
	return f, nil
}
