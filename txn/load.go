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
	x := newIndex()
	cat, ok, err := readCatalog(db.catalogPath())
	if err != nil || !ok {
		return x, err
	}
	pos, _ := cat.Log.pos() // INVARIANT: readCatalog checked it
	// The log after the checkpoint is read from its segment on: check that segment's header (a
	// store of another layout version is refused, not misread).
	f, err := os.Open(filepath.Join(db.logDir, segName(pos.seg)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", errSegmentGone, segName(pos.seg))
	}
	if err != nil {
		return nil, fmt.Errorf("open log segment: %w", err)
	}
	_, _, err = readHeader(f, pos.seg)
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

// contents returns the objects of version v of page n of incarnation inc, loading them from the
// page file, or from the version's predecessors, if they are not in memory. The objects are
// shared: callers never modify them.
func (db *DB) contents(x *index, inc string, n uint64, v *version) ([]pages.Object, error) {
	x.mu.RLock()
	if v.loaded {
		objs := v.objs
		x.mu.RUnlock()
		return objs, nil
	}
	// Walk back to a version whose contents are known or on disk.
	var chain []*version
	cur := v
	for !cur.loaded && !cur.onDisk && cur.base != nil {
		chain = append(chain, cur)
		cur = cur.base
	}
	root, loaded, onDisk := cur, cur.loaded, cur.onDisk
	objs := cur.objs
	dir := ""
	if in := x.incs[inc]; in != nil {
		dir = in.dir
	}
	x.mu.RUnlock()
	if !loaded {
		if !onDisk {
			panic("txn: version with no contents") // INVARIANT: every version has a source
		}
		var err error
		if objs, err = db.readPageFile(x, inc, dir, n, root.tsn); err != nil {
			return nil, err
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if !root.loaded {
		root.loaded, root.objs = true, objs
	}
	for _, c := range slices.Backward(chain) {
		if !c.loaded {
			c.loaded, c.objs = true, slices.Concat(c.base.objs, c.delta)
		}
		c.base, c.delta = nil, nil
	}
	return v.objs, nil
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
