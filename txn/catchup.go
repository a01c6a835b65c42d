package txn

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/txtdb/txtdb/pages"
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
			x.pin(target.tsn)
		}
	}()
	if db.closed.Load() {
		return nil, ErrClosed
	}
	x = db.idxp.Load()
	x.mu.RLock()
	seq, lineage := x.seq, x.lineage
	x.mu.RUnlock()
	if target.seq < seq {
		return x, errStale
	}
	if lineage != target.lineage && lineage != "" {
		y := newIndex()
		y.lineage = target.lineage
		if err := db.follow(y, target); err != nil {
			return x, err
		}
		db.idxp.Store(y)
		db.alloc.reset() // reserved numbers and hot pages belonged to the old history
		db.closeReaders()
		return y, nil
	}
	if lineage == "" {
		x.mu.Lock()
		x.lineage = target.lineage
		x.mu.Unlock()
	}
	return x, db.follow(x, target)
}

// follow applies the log from x's position up to target's, following segments in order.
// REQUIRES: catchMu held.
func (db *DB) follow(x *index, target state) error {
	x.mu.RLock()
	pos := x.pos
	x.mu.RUnlock()
	setPos := func(p logPos) {
		x.mu.Lock()
		x.pos = p
		x.mu.Unlock()
	}
	if pos.seg == 0 {
		segs, err := listSegments(db.logDir)
		if err != nil {
			return err
		}
		if len(segs) == 0 {
			return corrupt(db.logDir, 0, fmt.Errorf("no log segment"))
		}
		f, err := db.segFile(segs[0])
		if err != nil {
			return err
		}
		_, hdr, err := readHeader(f, segs[0])
		if errors.Is(err, ErrVersion) {
			return err
		}
		if err != nil {
			return corrupt(f.Name(), 0, err)
		}
		pos = hdr
		setPos(pos)
	}
	for pos != target.pos {
		if pos.seg > target.pos.seg || (pos.seg == target.pos.seg && pos.off > target.pos.off) {
			return corrupt(db.logDir, 0, fmt.Errorf("index at %v is past state %v", pos, target.pos))
		}
		f, err := db.segFile(pos.seg)
		if err != nil {
			return err
		}
		to := int64(-1)
		if pos.seg == target.pos.seg {
			to = target.pos.off
		}
		data, err := readRange(f, pos.off, to)
		if err != nil {
			return corrupt(f.Name(), pos.off, err)
		}
		recs, bad := scanRecords(db.format, data, pos)
		if bad == nil && to >= 0 {
			if end := endOf(recs, pos); end != target.pos {
				bad = fmt.Errorf("%w: records end at %v, state says %v", errBadRecord, end, target.pos)
			}
		}
		if bad != nil {
			return corrupt(f.Name(), pos.off, bad)
		}
		if err := applyRecords(x, recs); err != nil {
			return corrupt(f.Name(), pos.off, err)
		}
		if to >= 0 {
			pos = target.pos
			continue
		}
		next, err := nextSegment(db.logDir, pos.seg)
		if err != nil {
			return err
		}
		if next == 0 || next > target.pos.seg {
			return corrupt(db.logDir, 0, fmt.Errorf("log segment after %s missing", segName(pos.seg)))
		}
		nf, err := db.segFile(next)
		if err != nil {
			return err
		}
		_, hdr, err := readHeader(nf, next)
		if errors.Is(err, ErrVersion) {
			return err
		}
		if err != nil {
			return corrupt(nf.Name(), 0, err)
		}
		_ = f.Close()
		delete(db.segs, pos.seg)
		pos = hdr
		setPos(pos)
	}
	x.mu.Lock()
	x.seq = max(x.seq, target.seq)
	x.mu.Unlock()
	return nil
}

// endOf returns where the last of recs ends (from if there are none).
func endOf(recs []scanned, from logPos) logPos {
	if len(recs) == 0 {
		return from
	}
	return recs[len(recs)-1].end
}

// applyRecords applies records read from segment seg. Each record is checked whole before any
// of it is applied.
func applyRecords(x *index, recs []scanned) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := range recs {
		if err := x.apply(&recs[i].rec, recs[i].end); err != nil {
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
	f, err := os.Open(filepath.Join(db.logDir, segName(seg)))
	if err != nil {
		return nil, fmt.Errorf("open log segment: %w", err)
	}
	db.segs[seg] = f
	return f, nil
}
