package txn

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// indexFromCheckpoint builds a fresh index from the checkpoint: the page files are the history up
// to the checkpoint TSN, and the log after it is applied by the caller (follow). It reads the
// catalog and lists the folders of the live incarnations; it reads no page file (they load on
// first read). Without a checkpoint the index starts empty, at the beginning of the log.
//
// Snapshots of an index built this way are never older than the checkpoint TSN (state is at or
// past it), so it needs nothing of the history before it: per page only the newest version, per
// name only what it denotes. REQUIRES: catchMu held (or the index not yet shared).
func (db *DB) indexFromCheckpoint() (*index, error) {
	x := db.freshIndex()
	cat, ok, err := readCatalog(db.catalogPath())
	if err != nil || !ok {
		return x, err
	}
	pos, _ := cat.Log.pos() // INVARIANT: readCatalog checked it
	// The log after the checkpoint is read from its segment on: check that segment's header (a
	// store of another layout version is refused, not misread).
	f, err := os.Open(filepath.Join(db.logDir, wal.SegName(pos.Seg)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", errSegmentGone, wal.SegName(pos.Seg))
	}
	if err != nil {
		return nil, fmt.Errorf("open log segment: %w", err)
	}
	_, _, err = wal.ReadHeader(f, pos.Seg)
	_ = f.Close()
	if errors.Is(err, ErrVersion) {
		return nil, err
	}
	if err != nil {
		return nil, corrupt(f.Name(), 0, err)
	}
	pending := map[pendingKey]bool{}
	for _, p := range cat.Pending {
		pending[pendingKey{p.Inc, p.Page, p.TSN}] = true
	}
	for _, ci := range cat.Incs {
		if ci.NS == "" {
			continue // dropped at or before the checkpoint: no snapshot of this index can see it
		}
		in := &incarnation{id: ci.Inc, dir: ci.Dir, pages: map[uint64]*pageHist{}, reserved: max(ci.Reserved, 1)}
		for _, dir := range []string{ci.Dir, ci.To} {
			if dir == "" {
				continue
			}
			files, err := db.listVersions(dir)
			if err != nil {
				return nil, err
			}
			for _, f := range files {
				if f.TSN > cat.TSN || pending[pendingKey{ci.Inc, f.PageID, f.TSN}] {
					continue // newer than the checkpoint (a run that died), or superseded
				}
				n, _ := pages.ParsePageID(f.PageID) // INVARIANT: listVersions parsed it
				h := in.pages[n]
				if h == nil {
					h = &pageHist{}
					in.pages[n] = h
				}
				if len(h.vs) == 0 || h.latest().tsn < f.TSN {
					h.vs = []*version{{tsn: f.TSN, onDisk: true}}
				}
				in.reserved = max(in.reserved, n+1)
			}
		}
		x.incs[ci.Inc] = in
		x.names[ci.NS] = []nameVer{{tsn: 0, inc: ci.Inc}}
	}
	x.applied, x.pos, x.base = cat.TSN, pos, cat.TSN
	return x, nil
}

type pendingKey struct {
	inc, page string
	tsn       pages.TSN
}

func (db *DB) catalogPath() string { return filepath.Join(db.meta, checkpointName) }

// listVersions lists the version files of the store's format in a folder (relative to the data
// directory). A missing folder has none.
func (db *DB) listVersions(dir string) ([]pages.Version, error) {
	ents, err := fs.ReadDir(db.root.FS(), dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var out []pages.Version
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		id, f, tsn, err := pages.ParseVersionFileName(e.Name())
		if err != nil || f != db.format {
			continue
		}
		out = append(out, pages.Version{PageID: id, TSN: tsn})
	}
	return out, nil
}

// freshIndex is an empty index of this handle (its versions share the handle's page cache).
func (db *DB) freshIndex() *index {
	x := newIndex()
	x.cache = &db.cache
	return x
}

// contents returns the objects of version v of page n of incarnation inc, loading them from the
// page file or the log (and, for an append, its predecessors) if they are not in memory. The
// objects are shared: callers never modify them. Takes no file lock; does I/O only on a miss.
func (db *DB) contents(x *index, inc string, n uint64, v *version) ([]pages.Object, error) {
	x.mu.RLock()
	if v.loaded {
		objs := v.objs
		db.cache.touch(v)
		x.mu.RUnlock()
		db.cache.hits.Add(1)
		return objs, nil
	}
	x.mu.RUnlock()
	db.cache.misses.Add(1)
	objs, err := db.load(x, inc, n, v, 0)
	db.cache.drain()
	return objs, err
}

// load returns v's contents and keeps them in v (and on the cache's list). Its sources, in order:
// memory; for a version known to be in a page file, that file; the log record that wrote it (an
// append also needs its base); the page file of that TSN (the log may have been trimmed past the
// record once a checkpoint covered it). REQUIRES: no index mu held.
func (db *DB) load(x *index, inc string, n uint64, v *version, depth int) ([]pages.Object, error) {
	x.mu.RLock()
	loaded, objs, onDisk, loc, isAppend, base, delta := v.loaded, v.objs, v.onDisk, v.loc, v.append, v.base, v.delta
	dir := ""
	if in := x.incs[inc]; in != nil {
		dir = in.dir
	}
	x.mu.RUnlock()
	if loaded {
		return objs, nil
	}
	var err error
	objs, err = nil, errNoSource
	if onDisk {
		objs, err = db.readPageFile(x, inc, dir, n, v.tsn)
	}
	if err != nil && loc.seg != 0 && depth <= maxAppends+1 {
		var lerr error
		if objs, lerr = db.loadFromLog(x, inc, n, loc, isAppend, base, delta, depth); lerr == nil {
			err = nil
		} else if !onDisk {
			err = lerr
			// Trimmed, or a base that is gone: a checkpoint may have written this version whole.
			if fobjs, ferr := db.readPageFile(x, inc, dir, n, v.tsn); ferr == nil {
				objs, err = fobjs, nil
			}
		}
	}
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	if !v.loaded {
		v.loaded, v.objs = true, objs
		x.cache.add(x, v)
	}
	objs = v.objs
	x.mu.Unlock()
	return objs, nil
}

var errNoSource = errors.New("version has no contents source")

// loadFromLog rebuilds a version from its record: a put holds the page, an append the objects
// added to its base.
func (db *DB) loadFromLog(x *index, inc string, n uint64, loc recLoc, isAppend bool, base *version, delta []pages.Object, depth int) ([]pages.Object, error) {
	if delta == nil {
		op, err := db.readOp(loc, inc, n)
		if err != nil {
			return nil, err
		}
		delta = op.Objects
	}
	if !isAppend {
		return delta, nil
	}
	if base == nil {
		return nil, corrupt(wal.SegName(loc.seg), loc.off, errors.New("append without a base version"))
	}
	b, err := db.load(x, inc, n, base, depth+1)
	if err != nil {
		return nil, err
	}
	return slices.Concat(b, delta), nil
}

// readOp reads the record at loc, checks it and returns its op on page n of inc.
func (db *DB) readOp(loc recLoc, inc string, n uint64) (*op, error) {
	f, err := os.Open(filepath.Join(db.logDir, wal.SegName(loc.seg)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", errSegmentGone, wal.SegName(loc.seg))
	}
	if err != nil {
		return nil, fmt.Errorf("open log segment: %w", err)
	}
	defer f.Close()
	line := make([]byte, loc.n)
	if _, err := f.ReadAt(line, loc.off); err != nil {
		return nil, corrupt(f.Name(), loc.off, err)
	}
	var r record
	if _, err := wal.Unframe(line, &r, loc.prev); err != nil {
		return nil, corrupt(f.Name(), loc.off, err)
	}
	if err := wal.DecodeOps(db.format, &r); err != nil {
		return nil, corrupt(f.Name(), loc.off, err)
	}
	for i := range r.Ops {
		o := &r.Ops[i]
		if o.Inc == inc && o.PageNo == n && (o.Kind == opPut || o.Kind == opAppend) {
			return o, nil
		}
	}
	return nil, corrupt(f.Name(), loc.off, fmt.Errorf("record has no change of page %s", pages.PageID(n)))
}

// readPageFile reads version tsn of page n of incarnation inc from its folder. A checkpoint may
// have moved the incarnation's files to another folder since this process last read the catalog:
// on a missing file it reads the catalog again and retries there.
func (db *DB) readPageFile(x *index, inc, dir string, n uint64, tsn pages.TSN) ([]pages.Object, error) {
	name := pages.VersionFileName(pages.PageID(n), db.format, tsn)
	var firstErr error
	for attempt := 0; attempt < 3; attempt++ {
		if dir != "" {
			rel := path.Join(dir, name)
			data, err := db.root.ReadFile(rel)
			if err == nil {
				objs, err := pages.DecodePage(db.format, data)
				if err != nil {
					var ce *pages.CorruptError
					if errors.As(err, &ce) && ce.Path == "" {
						ce.Path = rel
					}
					return nil, fmt.Errorf("read page %s: %w", rel, err)
				}
				return objs, nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("read page %s: %w", rel, err)
			}
			if firstErr == nil {
				firstErr = err
			}
		}
		cat, _, err := readCatalog(db.catalogPath())
		if err != nil {
			return nil, err
		}
		ci := cat.inc(inc)
		if ci == nil {
			break
		}
		// Files move from Dir to To; during a move a file is in one or the other.
		next := ci.Dir
		if ci.To != "" && (next == dir || next == "") {
			next = ci.To
		}
		if next == dir && attempt > 0 {
			break
		}
		dir = next
		x.mu.Lock()
		if in := x.incs[inc]; in != nil {
			in.dir = ci.Dir
		}
		x.mu.Unlock()
	}
	if firstErr == nil {
		firstErr = fs.ErrNotExist
	}
	return nil, corrupt(name, 0, fmt.Errorf("page file of incarnation %s missing: %w", inc, firstErr))
}
