package txn

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/txtdb/txtdb/pages"
)

// catchUp applies every record up to target's log position to the index. Records at or below
// target are durable and never truncated, so any bad one is corruption, not a torn tail.
// Safe for concurrent use; takes no file lock.
func (db *DB) catchUp(target state) error {
	db.catchMu.Lock()
	defer db.catchMu.Unlock()
	db.idx.mu.RLock()
	pos, lineage := db.idx.pos, db.idx.lineage
	db.idx.mu.RUnlock()
	if lineage != target.lineage {
		if lineage != "" {
			// The history was rewound (a NoSync store lost its tail): start over from the log.
			fresh := newIndex()
			db.idx.mu.Lock()
			fresh.snaps = db.idx.snaps
			db.idx.incs, db.idx.names, db.idx.applied, db.idx.pos = fresh.incs, fresh.names, 0, logPos{}
			db.idx.mu.Unlock()
			pos = logPos{}
		}
		db.idx.mu.Lock()
		db.idx.lineage = target.lineage
		db.idx.mu.Unlock()
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
		if err != nil {
			return corrupt(f.Name(), 0, err)
		}
		pos = logPos{seg: segs[0], off: hdr}
		db.idx.mu.Lock()
		db.idx.pos = pos
		db.idx.mu.Unlock()
	}
	for pos != target.pos {
		if pos.seg > target.pos.seg || (pos.seg == target.pos.seg && pos.off > target.pos.off) {
			return nil // already past (this process's own commit applied it)
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
		recs, bad := scanRecords(db.format, data, pos.off)
		if bad != nil {
			return corrupt(f.Name(), pos.off, bad)
		}
		if err := db.applyRecords(pos.seg, recs); err != nil {
			return corrupt(f.Name(), pos.off, err)
		}
		if to >= 0 {
			pos.off = to
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
		if err != nil {
			return corrupt(nf.Name(), 0, err)
		}
		_ = f.Close()
		delete(db.segs, pos.seg)
		pos = logPos{seg: next, off: hdr}
		db.idx.mu.Lock()
		db.idx.pos = pos
		db.idx.mu.Unlock()
	}
	return nil
}

// applyRecords applies records read from segment seg.
// REQUIRES: catchMu held.
func (db *DB) applyRecords(seg pages.TSN, recs []scanned) error {
	db.idx.mu.Lock()
	defer db.idx.mu.Unlock()
	for i := range recs {
		if err := db.idx.apply(&recs[i].rec, logPos{seg: seg, off: recs[i].end}); err != nil {
			return err
		}
	}
	return nil
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
