package txn

import (
	"context"
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

// checkpointChunk bounds the records one checkpoint step reads (and so its memory): a long lag is
// worked off in several steps, each of which advances the checkpoint.
const checkpointChunk = 20000

// Checkpoint brings the page files up to the last committed TSN and runs cleanup: superseded
// versions no live snapshot can read are deleted and the log is trimmed to its retention. It
// waits for the checkpoint lock (another process's checkpoint) at most LockTimeout or until ctx
// ends, and never takes the commit lock: commits go on meanwhile. Safe for concurrent use.
func (db *DB) Checkpoint(ctx context.Context) error {
	if err := db.usable(); err != nil {
		return err
	}
	if db.cfg.ReadOnly {
		return ErrReadOnlyDB
	}
	lockCtx, cancel := context.WithTimeout(ctx, db.cfg.LockTimeout)
	unlock, err := db.ckptLock.Lock(lockCtx)
	cancel()
	if err != nil {
		return fmt.Errorf("txtdb: checkpoint: %w", err)
	}
	defer func() { _ = unlock() }()
	return db.checkpointLocked(ctx, false) // LockTimeout bounds the wait, not the work
}

// checkpointLocked checkpoints up to the committed TSN, then cleans up; with keep, cleanup leaves
// the files this run superseded for the next run to reuse (cleanupLocked). REQUIRES: checkpoint
// lock.
func (db *DB) checkpointLocked(ctx context.Context, keep bool) error {
	err := db.checkpointRun(ctx, keep)
	db.ckptStats.record(err)
	if err != nil {
		db.sweepDead.Store(true) // a failed run may leave files: the next cleanup sweeps them
		return fmt.Errorf("txtdb: checkpoint: %w", err)
	}
	return nil
}

func (db *DB) checkpointRun(ctx context.Context, keep bool) error {
	_ = db.floor.settle() // best effort, like the housekeeper's raise: a floor left lower pins more, never less
	h, err := db.horizonNow()
	if err != nil {
		return err
	}
	run := &ckptRun{h: h}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		done, err := db.checkpointStep(ctx, run)
		if err != nil {
			return err
		}
		if done {
			break
		}
	}
	var keepAfter pages.TSN
	if keep {
		keepAfter = run.from
	}
	return db.cleanupLocked(h, run.written, keepAfter)
}

// ckptRun is what a checkpoint run carries from step to step, and on to its cleanup. It lives
// under the checkpoint lock.
type ckptRun struct {
	h       pages.TSN // the horizon the run published
	started bool      // a step read the catalog
	from    pages.TSN // the checkpoint's TSN before the run's first step
	written *catalog  // the catalog the run published last: the one on disk, the lock being held
}

// pageChange is the newest version of one page in the records a checkpoint step reads.
type pageChange struct {
	inc      string
	page     uint64
	tsn      pages.TSN
	deleted  bool
	fromFile bool           // objs were appended to the page's checkpointed version
	objs     []pages.Object // the whole page (or what was appended, if fromFile)
	owned    bool           // objs is the step's own array (not a record's): appends extend it
}

// checkpointStep checkpoints at most checkpointChunk records past the current checkpoint. It
// reports done when the checkpoint has reached state. REQUIRES: checkpoint lock.
func (db *DB) checkpointStep(ctx context.Context, run *ckptRun) (done bool, err error) {
	h := run.h
	old, have := catalog{}, false
	if run.written != nil {
		old, have = cloneCatalog(*run.written), true // what the step before published
	} else if old, have, err = readCatalog(db.catalogPath()); err != nil {
		return false, err
	}
	if !run.started {
		run.started, run.from = true, old.TSN
	}
	st, err := db.readState()
	if err != nil {
		return false, err
	}
	from, err := db.checkpointFrom(old, have)
	if err != nil {
		return false, err
	}
	// Moves left half done by a dead checkpointer are finished first.
	if err := db.finishMoves(&old); err != nil {
		return false, err
	}
	if have && from == st.Pos {
		return true, nil
	}
	// Only durable TSNs are checkpointed: under NoSync the log is fsynced here first.
	if err := db.syncLog(from.Seg, st.Pos.Seg); err != nil {
		return false, err
	}
	next := cloneCatalog(old)
	changes := map[pageKey]*pageChange{}
	var order []pageKey
	n := 0
	end, err := db.walkLog(from, st.Pos, old.TSN, func(sc *scanned) bool {
		r := &sc.Rec
		if !r.IsReservation() && n >= checkpointChunk {
			return false // stop before a commit record: the checkpoint ends at a TSN boundary
		}
		n++
		if !r.IsReservation() {
			next.TSN = r.TSN
		}
		for i := range r.Ops {
			o := &r.Ops[i]
			switch o.Kind {
			case opCreate:
				next.Incs = append(next.Incs, catalogInc{Inc: o.Inc, NS: o.NS, Reserved: 1})
			case opDrop:
				if ci := next.inc(o.Inc); ci != nil {
					ci.NS, ci.Dropped = "", r.TSN
				}
			case opRename:
				if ci := next.inc(o.Inc); ci != nil {
					ci.NS = o.To
				}
			case opReserve:
				if ci := next.inc(o.Inc); ci != nil {
					ci.Reserved = max(ci.Reserved, o.Upto)
				}
			case opPut, opAppend, opDel:
				key := pageKey{o.Inc, o.PageNo}
				if ci := next.inc(o.Inc); ci != nil {
					ci.Reserved = max(ci.Reserved, o.PageNo+1)
				}
				ch := changes[key]
				if ch == nil {
					ch = &pageChange{inc: o.Inc, page: o.PageNo}
					changes[key] = ch
					order = append(order, key)
				}
				switch {
				case o.Kind == opPut:
					ch.objs, ch.deleted, ch.fromFile, ch.owned = o.Objects, false, false, false
				case o.Kind == opDel:
					ch.objs, ch.deleted, ch.fromFile, ch.owned = nil, true, false, false
				case ch.tsn == 0: // an append to the checkpointed version
					ch.objs, ch.fromFile, ch.owned = o.Objects, true, false
				case ch.owned:
					ch.objs = append(ch.objs, o.Objects...) // amortized: a page appended to n times costs n, not n²
				default:
					ch.objs, ch.owned = slices.Concat(ch.objs, o.Objects), true
				}
				ch.tsn = r.TSN
			}
		}
		return true
	})
	if err != nil {
		return false, err
	}
	if !have && next.TSN == 0 {
		next.TSN = 0 // nothing committed yet: no checkpoint to write
		return true, nil
	}
	next.Log = toCatalogPos(end)

	if err := db.removeDroppedLeftovers(&old, &next, order); err != nil {
		return false, err
	}
	// Every folder holds one incarnation's files: first move out the incarnations whose folder
	// is not (or no longer) the one their name gives, then give each live one its folder.
	if err := db.relocate(&old, &next, h); err != nil {
		return false, err
	}

	// Write the newest version of every changed page of a live incarnation.
	pending := map[pendingKey]pendingFile{}
	for _, p := range next.Pending {
		pending[pendingKey{p.Inc, p.Page, p.TSN}] = p
	}
	// Superseded files below the horizon that cleanup has not removed yet: a new version of their
	// page goes into one of them (Recycle) rather than into a new file.
	reusable := map[pageKey][]pages.TSN{}
	for _, p := range next.Pending {
		if (p.Until <= h || db.plantRecycleAny) && db.recycle {
			n, err := pages.ParsePageID(p.Page)
			if err == nil {
				reusable[pageKey{p.Inc, n}] = append(reusable[pageKey{p.Inc, n}], p.TSN)
			}
		}
	}
	folders := db.folderSet()
	defer folders.close()
	listed := map[string]map[uint64][]pages.TSN{} // inc -> page -> existing file TSNs
	synced := map[string]bool{}
	written := 0
	for _, key := range order {
		ch := changes[key]
		ci := next.inc(ch.inc)
		if ci == nil || ci.NS == "" {
			continue // dropped by now: its files go with the incarnation
		}
		files, ok := listed[ch.inc]
		if !ok {
			if ci.Dir == "" {
				// A folder no published catalog names yet (relocate made sure no incarnation
				// owns it): its version files are leftovers of a checkpoint that died or failed
				// before publishing, possibly of pages deleted since or of a dropped namespace
				// of the same name. They go before anything is written there.
				ci.Dir = pathOf(ci.NS)
				if err := db.removeFolderFiles(ci.Dir, false); err != nil {
					return false, err
				}
			}
			if files, err = db.filesByPage(ci.Dir); err != nil {
				return false, err
			}
			listed[ch.inc] = files
		}
		id := pages.PageID(ch.page)
		existing := files[ch.page]
		if !ch.deleted {
			objs := ch.objs
			if ch.fromFile {
				base, err := db.checkpointedVersion(ci.Dir, id, existing, old.TSN, ch.inc, pending)
				if err != nil {
					return false, err
				}
				objs = slices.Concat(base, ch.objs)
			}
			fo, err := folders.open(ci.Dir)
			if err != nil {
				return false, err
			}
			var from pages.TSN // the superseded file the version went into, if any
			if ci.To == "" {
				if from, err = db.recyclePageFile(fo, id, ch.tsn, objs, reusable[key], existing); err != nil {
					return false, err
				}
			}
			if from != 0 {
				delete(pending, pendingKey{ch.inc, id, from})
				existing = slices.DeleteFunc(slices.Clone(existing), func(t pages.TSN) bool { return t == from })
				files[ch.page] = existing
			} else if err := db.writePageFile(fo, id, ch.tsn, objs); err != nil {
				return false, err
			}
			synced[ci.Dir] = false
			crashAt(crashCheckpointPage)
			if written++; written%256 == 0 {
				if err := ctx.Err(); err != nil {
					return false, err // nothing names these files yet: the next run redoes them
				}
			}
		}
		for _, t := range existing {
			if t >= ch.tsn {
				continue
			}
			if t > old.TSN {
				// No catalog named it: a leftover of a run that died or failed, which may hold
				// anything (a reuse killed between rename and rewrite leaves an older version's
				// bytes under this name). Listed as pending it would be read as version t (a
				// read-only handle reads the file of a version whose record is trimmed), so it
				// goes now; the folder's fsync below makes that durable before the catalog.
				fo, err := folders.open(ci.Dir)
				if err != nil {
					return false, err
				}
				if err := fo.Remove(pages.VersionFileName(id, db.format, t)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return false, fmt.Errorf("checkpoint: remove leftover: %w", err)
				}
				synced[ci.Dir] = false
				continue
			}
			k := pendingKey{ch.inc, id, t}
			if p, ok := pending[k]; !ok || p.Until > ch.tsn {
				pending[k] = pendingFile{Inc: ch.inc, Page: id, TSN: t, Until: ch.tsn}
			}
		}
	}
	// Page files were written without an fsync each: one syncfs makes them all durable (where
	// the platform has none, each file was fsynced as it was written).
	if len(synced) > 0 && db.syncAll {
		if _, err := db.pdir.SyncAll(); err != nil {
			return false, fmt.Errorf("sync page files: %w", err)
		}
	}
	for dir := range synced {
		if err := db.pdir.SyncFolder(dir); err != nil {
			return false, fmt.Errorf("fsync %s: %w", dir, err)
		}
	}
	// The folders' own entries too, up to the data directory: a folder made by an earlier attempt
	// whose fsync of the parent failed exists (mkdir says EEXIST) but may not be durable, and a
	// failed fsync is not reported again. A handful of directories per step, nothing pending in
	// them most of the time.
	ancestors := map[string]bool{}
	for dir := range synced {
		for d := path.Dir(dir); !ancestors[d]; d = path.Dir(d) {
			ancestors[d] = true
			if d == "." {
				break
			}
		}
	}
	for d := range ancestors {
		if err := db.pdir.SyncFolder(d); err != nil {
			return false, fmt.Errorf("fsync %s: %w", d, err)
		}
	}
	next.Pending = sortedPending(pending)
	if len(next.Marks) == 0 || next.Marks[len(next.Marks)-1] != next.TSN {
		next.Marks = append(next.Marks, next.TSN)
	}
	if len(next.Marks) > maxMarks {
		next.Marks = next.Marks[len(next.Marks)-maxMarks:]
	}
	crashAt(crashCheckpointBefore)
	if err := writeCatalog(db.catalogPath(), &next, db.cfg.FileMode); err != nil {
		return false, err
	}
	crashAt(crashCheckpointAfter)
	run.written = &next
	db.ckptTSN.Store(uint64(next.TSN))
	return end == st.Pos, nil
}

// removeDroppedLeftovers removes, from the folder of each incarnation dropped by the end of the
// step, the version files above the checkpoint (old.TSN) of the pages the step saw change:
// leftovers of a checkpointer that died or failed before publishing (one killed while reusing a
// file leaves torn bytes under the new name). The step writes nothing for a dropped incarnation,
// so nothing else removes them before relocate links its files into the attic, where the catalog
// then covers their TSNs and Check would take them for corrupt versions. No catalog ever named
// them, so no reader reads them. REQUIRES: checkpoint lock.
func (db *DB) removeDroppedLeftovers(old, next *catalog, order []pageKey) error {
	folders := db.folderSet()
	defer folders.close()
	listed := map[string]map[uint64][]pages.TSN{}
	removed := map[string]bool{}
	for _, key := range order {
		if ci := next.inc(key.inc); ci != nil && ci.NS != "" {
			continue // live: the page loop rewrites or removes its leftovers
		}
		oci := old.inc(key.inc)
		if oci == nil || oci.Dir == "" {
			continue // no folder: no files
		}
		files, ok := listed[oci.Dir]
		if !ok {
			var err error
			if files, err = db.filesByPage(oci.Dir); err != nil {
				return err
			}
			listed[oci.Dir] = files
		}
		for _, t := range files[key.page] {
			if t <= old.TSN {
				continue
			}
			fo, err := folders.open(oci.Dir)
			if err != nil {
				return err
			}
			name := pages.VersionFileName(pages.PageID(key.page), db.format, t)
			if err := fo.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("checkpoint: remove leftover: %w", err)
			}
			removed[oci.Dir] = true
		}
	}
	for dir := range removed {
		if err := db.pdir.SyncFolder(dir); err != nil {
			return fmt.Errorf("fsync %s: %w", dir, err)
		}
	}
	return nil
}

// checkpointFrom is where the log after the checkpoint starts: the catalog's position, or the
// first record of segment 1 when nothing was ever checkpointed.
func (db *DB) checkpointFrom(c catalog, have bool) (logPos, error) {
	if have {
		return c.Log.pos()
	}
	f, err := os.Open(filepath.Join(db.logDir, wal.SegName(1)))
	if err != nil {
		return logPos{}, corrupt(db.logDir, 0, fmt.Errorf("no checkpoint and no first log segment: %w", err))
	}
	defer f.Close()
	_, hdr, err := wal.ReadHeader(f, 1)
	if err != nil {
		return logPos{}, corrupt(f.Name(), 0, err)
	}
	return hdr, nil
}

// checkpointedVersion reads the page's checkpointed version: the newest file at or below tsn that
// is not superseded.
func (db *DB) checkpointedVersion(dir, id string, existing []pages.TSN, tsn pages.TSN, inc string, pending map[pendingKey]pendingFile) ([]pages.Object, error) {
	for _, t := range slices.Backward(existing) {
		if t > tsn {
			continue
		}
		if _, gone := pending[pendingKey{inc, id, t}]; gone {
			break
		}
		rel := path.Join(dir, pages.VersionFileName(id, db.format, t))
		data, err := db.root.ReadFile(rel)
		if err != nil {
			return nil, fmt.Errorf("checkpoint: read %s: %w", rel, err)
		}
		objs, err := pages.DecodePage(db.format, data)
		if err != nil {
			return nil, fmt.Errorf("checkpoint: %s: %w", rel, err)
		}
		return objs, nil
	}
	return nil, corrupt(path.Join(dir, id), 0, errors.New("append to a page with no checkpointed version"))
}

// filesByPage lists a folder's version files by page number, TSNs ascending.
func (db *DB) filesByPage(dir string) (map[uint64][]pages.TSN, error) {
	vs, err := db.listVersions(dir)
	if err != nil {
		return nil, err
	}
	out := map[uint64][]pages.TSN{}
	for _, v := range vs {
		n, _ := pages.ParsePageID(v.PageID) // INVARIANT: listVersions parsed it
		out[n] = append(out[n], v.TSN)
	}
	for _, ts := range out {
		slices.Sort(ts)
	}
	return out, nil
}

// pathOf is the folder of a namespace name (valid by construction: it came through the log).
func pathOf(ns string) string {
	p, err := pages.NamespacePath(ns)
	if err != nil {
		panic(fmt.Sprintf("txn: namespace %q from the log: %v", ns, err)) // INVARIANT: names are validated at commit
	}
	return p
}

func atticOf(inc string) string { return path.Join(pages.MetaDir, atticDirName, inc) }

func cloneCatalog(c catalog) catalog {
	c.Incs = slices.Clone(c.Incs)
	c.Pending = slices.Clone(c.Pending)
	c.Marks = slices.Clone(c.Marks)
	return c
}

func sortedPending(m map[pendingKey]pendingFile) []pendingFile {
	out := make([]pendingFile, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b pendingFile) int {
		switch {
		case a.Inc != b.Inc:
			return cmpStr(a.Inc, b.Inc)
		case a.Page != b.Page:
			return cmpStr(a.Page, b.Page)
		}
		return int(a.TSN) - int(b.TSN)
	})
	return out
}

func cmpStr(a, b string) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

// syncLog fsyncs the segments from first to last (by name), so that what a checkpoint derives from
// them is durable before it is written. Cheap when nothing is dirty.
func (db *DB) syncLog(first, last pages.TSN) error {
	segs, err := wal.ListSegments(db.logDir)
	if err != nil {
		return err
	}
	for _, s := range segs {
		if s < first || s > last {
			continue
		}
		f, err := os.Open(filepath.Join(db.logDir, wal.SegName(s)))
		if err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		err = wal.Datasync(f)
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("checkpoint: fsync log: %w", err)
		}
	}
	return nil
}

// writePageFile publishes version tsn of a page in dir. A file of that version that is already
// there was written by a checkpoint that died or failed before publishing: it is removed and
// written again, never kept because it reads back right. What it reads back may be only in the
// page cache: after a failed fsync or syncfs (or a writeback error another descriptor saw) Linux
// marks those pages clean, a later fsync succeeds without writing them, and a power cut then
// leaves the published file torn or empty. The name is not published (the catalog's TSN is below
// tsn), so no reader looks at it.
func (db *DB) writePageFile(dir *pages.Folder, id string, tsn pages.TSN, objs []pages.Object) error {
	if err := faults.hit(faultPageWrite); err != nil {
		return err
	}
	err := dir.WriteVersion(id, db.format, tsn, objs, db.cfg.FileMode, !db.syncAll)
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	name := pages.VersionFileName(id, db.format, tsn)
	if err := dir.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace %s: %w", path.Join(dir.Path(), name), err)
	}
	return dir.WriteVersion(id, db.format, tsn, objs, db.cfg.FileMode, !db.syncAll)
}

// recyclePageFile writes version tsn of page id into one of the page's superseded files below the
// horizon (candidates, TSNs listed in the published catalog as pending, that the folder still
// holds: existing) and returns its TSN; 0 if there is none, or the platform cannot (then the
// caller creates the file). Safe as deleting the file is (PROTOCOL.md, "Cleanup"): no snapshot
// at or above the horizon reads it, and no reader holds it open, since one that did would pin
// a snapshot below its Until. A crash between the rename and the rewrite leaves a file under
// the new version's name that no catalog names, with the old contents: a leftover, replaced by
// the next checkpoint, or removed by it if the page changed again meanwhile (checkpointStep),
// never read.
func (db *DB) recyclePageFile(fo *pages.Folder, id string, tsn pages.TSN, objs []pages.Object, candidates, existing []pages.TSN) (pages.TSN, error) {
	for _, t := range candidates {
		if t >= tsn || !slices.Contains(existing, t) {
			continue
		}
		if err := faults.hit(faultPageWrite); err != nil {
			return 0, err
		}
		fo.AfterRename = crashAfterRecycleRename
		err := fo.Recycle(pages.VersionFileName(id, db.format, t), id, db.format, tsn, objs, !db.syncAll)
		switch {
		case err == nil:
			db.ckptStats.recycled.Add(1)
			return t, nil
		case errors.Is(err, errors.ErrUnsupported):
			db.recycle = false // not here: create files from now on
			return 0, nil
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrExist):
			return 0, nil // gone meanwhile, or a leftover holds the name: create (writePageFile replaces it)
		default:
			return 0, err
		}
	}
	return 0, nil
}

func crashAfterRecycleRename() { crashAt(crashCheckpointRecycle) }

// folderSet keeps the folders a checkpoint step or a cleanup writes to, or removes from, open for
// its length (a folder opened once, not once per file). It is used by one goroutine.
type folderSet struct {
	db      *DB
	m       map[string]*pages.Folder
	missing map[string]bool // folders existing found not there
}

func (db *DB) folderSet() *folderSet {
	return &folderSet{db: db, m: map[string]*pages.Folder{}, missing: map[string]bool{}}
}

// existing returns dir opened, or nil (and no error) if there is no such folder.
func (s *folderSet) existing(dir string) (*pages.Folder, error) {
	if fo := s.m[dir]; fo != nil || s.missing[dir] {
		return fo, nil
	}
	if _, err := s.db.root.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		s.missing[dir] = true
		return nil, nil
	}
	return s.open(dir)
}

// open returns dir opened (and created if missing).
func (s *folderSet) open(dir string) (*pages.Folder, error) {
	if fo := s.m[dir]; fo != nil {
		return fo, nil
	}
	fo, err := s.db.pdir.OpenFolder(dir, s.db.cfg.FileMode)
	if err != nil {
		return nil, err
	}
	s.m[dir] = fo
	delete(s.missing, dir)
	return fo, nil
}

// close closes every folder opened.
func (s *folderSet) close() {
	for _, fo := range s.m {
		_ = fo.Close()
	}
	clear(s.m)
}
