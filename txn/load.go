package txn

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"

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
		in := &incarnation{id: ci.Inc, pages: map[uint64]*pageHist{}, reserved: max(ci.Reserved, 1)}
		// During a move (To set) every file is still in Dir: To may hold this move's links or
		// leftovers of another incarnation, so it is never listed.
		if dir := ci.Dir; dir != "" {
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
	ents, err := db.pdir.ReadFolder(dir)
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
	loaded, objs, onDisk, loc, span, isAppend, base, delta := v.loaded, v.objs, v.onDisk, v.loc, v.span, v.append, v.base, v.delta
	x.mu.RUnlock()
	if loaded {
		return objs, nil
	}
	if depth == 0 && isAppend && !onDisk && loc.seg != 0 {
		if objs, ok := db.loadRun(x, inc, n, v); ok {
			return objs, nil
		}
	}
	var err error
	objs, err = nil, errNoSource
	if onDisk {
		objs, err = db.readPageFile(inc, n, v.tsn)
	}
	if err != nil && loc.seg != 0 && depth <= maxAppends+1 {
		var lerr error
		if objs, lerr = db.loadFromLog(x, inc, n, loc, span, isAppend, base, delta, depth); lerr == nil {
			err = nil
		} else if !onDisk {
			err = lerr
			// Trimmed, or a base that is gone: a checkpoint may have written this version whole.
			if fobjs, ferr := db.readPageFile(inc, n, v.tsn); ferr == nil {
				objs, err = fobjs, nil
			}
		}
	}
	if errors.Is(err, errSegmentGone) || errors.Is(err, errNoSource) {
		// Neither the log nor a page file holds it: for a handle that pins its snapshots this
		// cannot happen (docs/PROTOCOL.md, the horizon); a read-only handle pins nothing.
		err = corrupt(pages.VersionFileName(pages.PageID(n), db.format, v.tsn), 0, err)
	}
	if err != nil {
		return nil, err
	}
	return keepLoaded(x, v, objs), nil
}

// keepLoaded makes objs v's contents, on the cache's list, unless another load did first, and
// returns v's contents. REQUIRES: no index mu held.
func keepLoaded(x *index, v *version, objs []pages.Object) []pages.Object {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !v.loaded {
		v.loaded, v.objs = true, objs
		x.cache.add(x, v)
	}
	return v.objs
}

var errNoSource = errors.New("version has no contents source")

// loadFromLog rebuilds a version from its record: a put holds the page, an append the objects
// added to its base.
func (db *DB) loadFromLog(x *index, inc string, n uint64, loc recLoc, span wal.Span, isAppend bool, base *version, delta []pages.Object, depth int) ([]pages.Object, error) {
	if delta == nil {
		op, err := db.readOp(loc, span, inc, n)
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

// loadRun is load for an append version whose run of appends is not in memory, back to a version
// that is (or has a page file, or was written whole): it reads the objects each record of the run
// appended, with one descriptor per segment, and joins them to the base once. Going through load
// version by version instead opens a segment and copies the page for each of up to maxAppends
// records. Only v is kept loaded (the versions before it are older than any reader asked for).
// ok is false when the run is longer than maxAppends or a record of it cannot be read: load then
// takes the way that knows every fallback (page files of versions on the way). REQUIRES: no
// index mu held.
func (db *DB) loadRun(x *index, inc string, n uint64, v *version) (objs []pages.Object, ok bool) {
	type link struct {
		loc   recLoc
		span  wal.Span
		delta []pages.Object
	}
	var run []link
	root := v
	x.mu.RLock()
	for root != nil && !root.loaded && !root.onDisk && root.append && root.loc.seg != 0 && len(run) <= maxAppends {
		run = append(run, link{root.loc, root.span, root.delta})
		root = root.base
	}
	x.mu.RUnlock()
	if root == nil || len(run) < 2 || len(run) > maxAppends {
		return nil, false // one record: load does no more than this; too long: load's fallbacks
	}
	base, err := db.load(x, inc, n, root, len(run))
	if err != nil {
		return nil, false
	}
	files := map[pages.TSN]*os.File{}
	defer func() {
		for _, f := range files {
			_ = f.Close()
		}
	}()
	total := len(base)
	for i := range run {
		if run[i].delta == nil {
			f := files[run[i].loc.seg]
			if f == nil {
				if f, err = db.openSegment(run[i].loc.seg); err != nil {
					return nil, false
				}
				files[run[i].loc.seg] = f
			}
			o, err := readOpFrom(f, run[i].loc, run[i].span, inc, n, db.format)
			if err != nil {
				return nil, false
			}
			run[i].delta = o.Objects
		}
		total += len(run[i].delta)
	}
	all := make([]pages.Object, 0, total)
	all = append(all, base...)
	for i := len(run) - 1; i >= 0; i-- {
		all = append(all, run[i].delta...)
	}
	db.runLoads.Add(1)
	return keepLoaded(x, v, all), true
}

// openSegment opens a log segment for reading (errSegmentGone if it is not there).
func (db *DB) openSegment(seg pages.TSN) (*os.File, error) {
	f, err := os.Open(filepath.Join(db.logDir, wal.SegName(seg)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", errSegmentGone, wal.SegName(seg))
	}
	if err != nil {
		return nil, fmt.Errorf("open log segment: %w", err)
	}
	return f, nil
}

// readOp returns the op on page n of inc of the record at loc. With the op's span it reads and
// checks that op's text alone (a record can hold hundreds of pages); without it, the whole record.
func (db *DB) readOp(loc recLoc, span wal.Span, inc string, n uint64) (*op, error) {
	f, err := db.openSegment(loc.seg)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readOpFrom(f, loc, span, inc, n, db.format)
}

// readOpFrom is readOp on the segment f.
func readOpFrom(f *os.File, loc recLoc, span wal.Span, inc string, n uint64, format pages.Format) (*op, error) {
	if span.Len != 0 && int64(span.Off)+int64(span.Len) <= loc.n {
		text := make([]byte, span.Len)
		at := loc.off + int64(span.Off)
		if _, err := f.ReadAt(text, at); err != nil {
			return nil, corrupt(f.Name(), at, err)
		}
		o, err := wal.DecodeOp(format, text, span)
		if err != nil {
			return nil, corrupt(f.Name(), at, err)
		}
		if o.Inc != inc || o.PageNo != n || (o.Kind != opPut && o.Kind != opAppend) {
			return nil, corrupt(f.Name(), at, fmt.Errorf("op is no change of page %s", pages.PageID(n)))
		}
		return &o, nil
	}
	line := make([]byte, loc.n)
	if _, err := f.ReadAt(line, loc.off); err != nil {
		return nil, corrupt(f.Name(), loc.off, err)
	}
	var r record
	if _, err := wal.Unframe(line, &r, loc.prev); err != nil {
		return nil, corrupt(f.Name(), loc.off, err)
	}
	if err := wal.DecodeOps(format, &r); err != nil {
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

// readPageFile reads version tsn of page n of incarnation inc from the folder the catalog gives
// it. A checkpoint may move an incarnation's files and give its old folder to another one (whose
// files can carry the same names), so the folder is looked up in the current catalog, and the
// read counts only if the catalog did not change while it ran; otherwise it is done again.
func (db *DB) readPageFile(inc string, n uint64, tsn pages.TSN) ([]pages.Object, error) {
	name := pages.VersionFileName(pages.PageID(n), db.format, tsn)
	var lastErr error = fs.ErrNotExist
	for attempt := 0; attempt < 10; attempt++ {
		dir, id, err := db.dirs.lookup(db, inc)
		if err != nil {
			return nil, err
		}
		if dir == "" {
			break
		}
		rel := path.Join(dir, name)
		data, err := db.readNamedFile(rel)
		if same, serr := db.dirs.unchanged(db, id); serr != nil {
			return nil, serr
		} else if !same {
			continue // moved meanwhile, perhaps: look again
		}
		if errors.Is(err, fs.ErrNotExist) {
			lastErr = err
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read page %s: %w", rel, err)
		}
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
	return nil, corrupt(name, 0, fmt.Errorf("page file of incarnation %s missing: %w", inc, lastErr))
}

// catalogDirs caches which folder the catalog gives each incarnation, for the catalog file it was
// read from (a checkpoint replaces the file, so its identity changes with every new catalog).
type catalogDirs struct {
	mu   sync.Mutex
	id   os.FileInfo       // guarded by mu: the catalog file the map was read from
	dirs map[string]string // guarded by mu: incarnation -> folder (during a move: still Dir)
}

// lookup returns the folder of inc in the current catalog and that catalog file's identity.
func (c *catalogDirs) lookup(db *DB, inc string) (string, os.FileInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fi, err := os.Stat(db.catalogPath())
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil, nil // never checkpointed: no page files
	}
	if err != nil {
		return "", nil, fmt.Errorf("read checkpoint: %w", err)
	}
	if !sameCatalog(c.id, fi) {
		cat, _, err := readCatalog(db.catalogPath())
		if err != nil {
			return "", nil, err
		}
		c.dirs = map[string]string{}
		for _, ci := range cat.Incs {
			c.dirs[ci.Inc] = ci.Dir
		}
		c.id = fi // the file read may already be newer than fi: unchanged then asks again
	}
	return c.dirs[inc], c.id, nil
}

// unchanged reports whether the catalog file is still the one id names.
func (c *catalogDirs) unchanged(db *DB, id os.FileInfo) (bool, error) {
	fi, err := os.Stat(db.catalogPath())
	if err != nil {
		return false, fmt.Errorf("read checkpoint: %w", err)
	}
	return sameCatalog(id, fi), nil
}

// sameCatalog reports whether two stats are of one catalog file: the same inode (and, since an
// inode number is reused once freed, the same modification time and size).
func sameCatalog(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

// readNamedFile reads the file rel and makes sure that what it read was still the file of that
// name when it finished: a checkpoint reuses the file of a superseded version below the horizon
// (rename to a new version's name, then rewrite), so a reader without a floor (a read-only
// handle) that opened it before the rename may read the new version's bytes. Such a read, like
// one of a deleted file, gives an error matching fs.ErrNotExist.
func (db *DB) readNamedFile(rel string) ([]byte, error) {
	f, err := db.root.Open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fn := faults.page.Load(); fn != nil {
		(*fn)(rel)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	if faults.plantNoIdentity.Load() {
		return data, nil
	}
	held, err := f.Stat()
	if err != nil {
		return nil, err
	}
	named, err := db.root.Lstat(rel)
	if err != nil {
		return nil, err
	}
	if !os.SameFile(held, named) {
		return nil, &fs.PathError{Op: "read", Path: rel, Err: fs.ErrNotExist}
	}
	return data, nil
}
