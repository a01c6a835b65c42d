package txn

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/txtdb/txtdb/lockfs"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// Problem is one defect Check found in a data directory.
type Problem struct {
	// Path is the file or folder, slash-separated and relative to the data directory.
	Path string
	// Err says what is wrong. It matches pages.ErrCorrupt (a damaged file, record or log
	// chain, a missing file), ErrVersion (another layout version), ErrUnexpectedFile (not part
	// of the layout), ErrLeftover (left by a dead process) or, for a file that could not be
	// read, the file system's error.
	Err error
}

// String returns the problem as one line: "path: message".
func (p Problem) String() string {
	if p.Err == nil {
		return p.Path + ": no error"
	}
	return p.Path + ": " + p.Err.Error()
}

// Error returns String: a Problem is an error that unwraps to Err.
func (p Problem) Error() string { return p.String() }

// Unwrap returns Err, so errors.Is(problem, pages.ErrCorrupt) works.
func (p Problem) Unwrap() error { return p.Err }

// Check verifies the store this handle has open; see CheckDir. It waits for a running
// checkpoint at most LockTimeout or until ctx ends. Safe for concurrent use; ErrClosed after
// Close (CheckDir works on a closed store).
func (db *DB) Check(ctx context.Context) ([]Problem, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, db.cfg.LockTimeout)
	defer cancel()
	return checkDir(ctx, db.dir)
}

// CheckDir verifies the store in dir without opening it, so it also works on a store too
// damaged to open. It changes nothing: every file is opened read-only, no file is created, and
// nothing is repaired. It returns the problems it found, sorted by path (none for a healthy
// store), and an error only when the check could not run (the directory cannot be read, or ctx
// ended).
//
// It checks txtdb.json (parses, supported layout); state (a valid slot, its segment exists, a
// record ends at its position); the log (segment headers, the checksum chain of every record
// and consecutive TSNs within and across segments, up to state's position; what lies past it is
// a committer's business and is not looked at); that the log reaches back to the checkpoint;
// the checkpoint file (decodes, not past state, on a record boundary); every page version file
// of the catalog's folders (decodes), and, while the log still holds the records that wrote
// them, that the version the checkpoint needs of each page exists; that nothing outside the
// layout is in the data directory or .txtdb/; and the leftovers of dead processes (temporary
// files, registry entries nobody holds).
//
// It holds .txtdb/checkpoint.lock shared while it runs (if the file exists), so no checkpoint
// or cleanup moves files under it; it waits for a running one until ctx ends (CheckDir gives a
// ctx without deadline DefaultLockTimeout). Commits go on meanwhile; temporary files that a
// commit in progress may own are judged only if the commit lock is free at that moment.
func CheckDir(ctx context.Context, dir string) ([]Problem, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultLockTimeout)
		defer cancel()
	}
	return checkDir(ctx, dir)
}

// checker is one run of CheckDir.
type checker struct {
	dir, meta, logDir string
	root              *os.Root
	format            pages.Format
	probs             []Problem

	ckptHeld   bool // checkpoint.lock held shared: no checkpoint or cleanup runs
	commitFree bool // the commit lock was free while the metadata folders were listed

	st        state
	haveState bool
	cat       catalog
	haveCat   bool
	catPos    logPos
	segs      []pages.TSN

	broken      bool                 // the walk hit a break: what it derived from the log is incomplete
	catBounds   map[logPos]bool      // record (and header) ends in the checkpoint's segment
	catSegClean bool                 // the checkpoint's segment was read without a break
	changes     map[pageKey]pageMark // newest change of each page at or below the checkpoint TSN
	names       map[string]bool      // namespace names created or renamed to after the checkpoint

	versions map[string]map[uint64][]pages.TSN // folder -> page -> version file TSNs
}

// pageMark is the newest change of a page the log shows.
type pageMark struct {
	tsn     pages.TSN
	deleted bool
}

func checkDir(ctx context.Context, dir string) ([]Problem, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("txtdb: check %s: %w", dir, err)
	}
	defer root.Close()
	if _, err := fs.ReadDir(root.FS(), "."); err != nil {
		return nil, fmt.Errorf("txtdb: check %s: %w", dir, err)
	}
	c := &checker{
		dir: dir, meta: filepath.Join(dir, pages.MetaDir), root: root,
		catBounds: map[logPos]bool{}, changes: map[pageKey]pageMark{}, names: map[string]bool{},
		versions: map[string]map[uint64][]pages.TSN{},
	}
	c.logDir = filepath.Join(c.meta, logDirName)
	if !c.checkConfig() {
		return c.sorted(), nil // without the format (or of another layout) nothing else can be judged
	}
	if _, err := os.Lstat(filepath.Join(c.meta, checkpointLockName)); err == nil {
		unlock, err := lockfs.New(filepath.Join(c.meta, checkpointLockName), 0).RLock(ctx)
		switch {
		case err == nil:
			defer func() { _ = unlock() }()
			c.ckptHeld = true
		case ctx.Err() != nil:
			return nil, fmt.Errorf("txtdb: check %s: wait for the checkpoint lock: %w", dir, err)
		default: // not lockable (not a regular file, no permission): judged without the lock
			c.add(metaRel(checkpointLockName), err)
		}
	}
	steps := []func(){c.checkState, c.readCatalog, c.checkLog, c.checkCatalogPos, c.checkHorizon,
		c.checkMeta, c.checkFolders, c.checkImplied}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("txtdb: check %s: %w", dir, err)
		}
		step()
	}
	return c.sorted(), nil
}

func (c *checker) add(rel string, err error) { c.probs = append(c.probs, Problem{Path: rel, Err: err}) }

func (c *checker) corrupt(rel, format string, args ...any) {
	c.add(rel, fmt.Errorf("%w: %s", pages.ErrCorrupt, fmt.Sprintf(format, args...)))
}

func (c *checker) unexpected(rel, what string) {
	c.add(rel, fmt.Errorf("%w: %s", ErrUnexpectedFile, what))
}

func (c *checker) leftover(rel, what string) { c.add(rel, fmt.Errorf("%w: %s", ErrLeftover, what)) }

func (c *checker) sorted() []Problem {
	slices.SortStableFunc(c.probs, func(a, b Problem) int { return cmp.Compare(a.Path, b.Path) })
	return c.probs
}

func metaRel(parts ...string) string { return path.Join(append([]string{pages.MetaDir}, parts...)...) }

func segRel(seg pages.TSN) string { return metaRel(logDirName, wal.SegName(seg)) }

// checkConfig checks txtdb.json and learns the store's format; false if nothing else can be
// judged.
func (c *checker) checkConfig() bool {
	data, err := c.root.ReadFile(configName)
	if errors.Is(err, fs.ErrNotExist) {
		c.add(configName, fmt.Errorf("%w: missing: not a txtdb store (%w)", pages.ErrCorrupt, err))
		return false
	}
	if err != nil {
		c.add(configName, err)
		return false
	}
	var sc storeConfig
	if err := json.Unmarshal(data, &sc); err != nil {
		c.corrupt(configName, "does not parse: %v", err)
		return false
	}
	if sc.Layout != layoutVersion {
		c.add(configName, fmt.Errorf("%w: layout %d, this build reads %d", ErrVersion, sc.Layout, layoutVersion))
		return false
	}
	if sc.PageSize <= 0 || sc.SegmentSize <= 0 || sc.LogRetention == 0 {
		c.corrupt(configName, "page size %d, segment size %d, retention %d", sc.PageSize, sc.SegmentSize, sc.LogRetention)
	}
	if c.format, err = pages.ParseFormat(sc.Format); err != nil {
		c.corrupt(configName, "format: %v", err)
		return false
	}
	return true
}

// checkState reads state: one valid slot at least.
func (c *checker) checkState() {
	rel := metaRel(stateName)
	sf, err := wal.OpenStateFile(filepath.Join(c.meta, stateName), 0, true)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			c.add(rel, fmt.Errorf("%w: missing (%w)", pages.ErrCorrupt, err))
		} else {
			c.add(rel, err)
		}
		return
	}
	defer sf.Close()
	st, err := sf.Read()
	switch {
	case errors.Is(err, wal.ErrNoState):
		c.corrupt(rel, "no valid slot")
	case err != nil:
		c.add(rel, err)
	default:
		c.st, c.haveState = st, true
	}
}

// readCatalog reads and checks the checkpoint file.
func (c *checker) readCatalog() {
	rel := metaRel(checkpointName)
	data, err := os.ReadFile(filepath.Join(c.meta, checkpointName))
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		c.add(rel, err)
		return
	}
	var cat catalog
	if err := json.Unmarshal(data, &cat); err != nil {
		c.corrupt(rel, "does not parse: %v", err)
		return
	}
	if cat.Version != layoutVersion {
		c.add(rel, fmt.Errorf("%w: checkpoint layout %d, this build reads %d", ErrVersion, cat.Version, layoutVersion))
		return
	}
	pos, err := cat.Log.pos()
	if err != nil || cat.TSN == 0 || cat.Log.Seg == 0 || cat.Log.Off <= 0 {
		c.corrupt(rel, "bad position: tsn %d, log %+v", cat.TSN, cat.Log)
		return
	}
	ok := true
	for _, ci := range cat.Incs {
		if !validIncID(ci.Inc) {
			c.corrupt(rel, "bad incarnation id %q", ci.Inc)
			ok = false
			continue
		}
		for _, d := range []string{ci.Dir, ci.To} {
			if d != "" && !validFolder(d, ci.Inc) {
				c.corrupt(rel, "incarnation %s: %q is neither a namespace folder nor its attic folder", ci.Inc, d)
				ok = false
			}
		}
		if ci.NS != "" {
			if err := pages.ValidateNamespace(ci.NS); err != nil {
				c.corrupt(rel, "incarnation %s: %v", ci.Inc, err)
				ok = false
			}
		}
	}
	if !ok {
		return // a catalog naming folders outside the layout says nothing reliable about them
	}
	if c.haveState && cat.TSN > c.st.TSN {
		c.corrupt(rel, "checkpoint at tsn %d is past the committed tsn %d in state", cat.TSN, c.st.TSN)
	}
	c.cat, c.haveCat, c.catPos = cat, true, pos
}

func validIncID(id string) bool {
	return id != "" && !strings.HasPrefix(id, ".") && !strings.ContainsAny(id, "/\\\x00")
}

// validFolder reports whether dir may hold incarnation inc's files: a namespace folder, or
// the incarnation's attic folder.
func validFolder(dir, inc string) bool {
	if dir == atticOf(inc) {
		return true
	}
	_, err := pages.Namespace(dir)
	return err == nil
}

// checkLog walks the log from its first segment to state's position.
func (c *checker) checkLog() {
	segs, err := wal.ListSegments(c.logDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			c.corrupt(metaRel(logDirName), "missing")
		} else {
			c.add(metaRel(logDirName), err)
		}
		c.broken = true
		return
	}
	c.segs = segs
	if len(segs) == 0 {
		c.corrupt(metaRel(logDirName), "no log segment")
		c.broken = true
		return
	}
	if c.haveState && !slices.Contains(segs, c.st.Pos.Seg) {
		c.corrupt(segRel(c.st.Pos.Seg), "missing: state says the log ends in it (tsn %d)", c.st.TSN)
		c.broken = true
	}
	switch {
	case c.haveCat && !slices.Contains(segs, c.cat.Log.Seg) && !(c.haveState && c.st.Pos == c.catPos):
		c.corrupt(segRel(c.cat.Log.Seg), "missing: the log after the checkpoint (tsn %d) starts in it", c.cat.TSN)
		c.broken = true
	case !c.haveCat && segs[0] != 1:
		c.corrupt(segRel(1), "missing: with no checkpoint the log must start at tsn 1 (first segment is %s)", wal.SegName(segs[0]))
		c.broken = true
	}
	known, last := false, pages.TSN(0) // the last TSN of the segment before, if it was read whole
	for _, seg := range segs {
		if c.haveState && seg > c.st.Pos.Seg {
			break // past state: a rotation in progress or a dead committer's, for recovery
		}
		ok, end := c.walkSegment(seg, known, last)
		known, last = ok, end
		if !ok {
			c.broken = true
		}
	}
}

// walkSegment checks one segment. It reports whether the segment read without a break and the
// last TSN in it.
func (c *checker) walkSegment(seg pages.TSN, known bool, last pages.TSN) (bool, pages.TSN) {
	rel := segRel(seg)
	f, err := os.Open(filepath.Join(c.logDir, wal.SegName(seg)))
	if err != nil {
		c.add(rel, err)
		return false, 0
	}
	defer f.Close()
	_, hdr, err := wal.ReadHeader(f, seg)
	if err != nil {
		c.corrupt(rel, "header: %v", err)
		return false, 0
	}
	clean := true
	if known && seg != last+1 {
		c.corrupt(rel, "starts at tsn %d, but the log before it ends at tsn %d: a segment is missing or out of place", seg, last)
		clean = false
	}
	isCat := c.haveCat && seg == c.cat.Log.Seg
	if isCat {
		c.catBounds[hdr] = true
	}
	atState := c.haveState && seg == c.st.Pos.Seg
	to := int64(-1)
	if atState {
		to = c.st.Pos.Off
		if to < hdr.Off {
			c.corrupt(metaRel(stateName), "log position %d is inside the header of %s", to, wal.SegName(seg))
			return false, 0
		}
	}
	fi, err := f.Stat()
	if err != nil {
		c.add(rel, err)
		return false, 0
	}
	short := to > fi.Size() // state names bytes the segment does not have
	if short || to < 0 {
		to = fi.Size()
	}
	data, err := wal.ReadRange(f, hdr.Off, to)
	if err != nil {
		c.add(rel, err)
		return false, 0
	}
	recs, bad := wal.ScanRecords(c.format, data, hdr)
	cur, end := seg-1, hdr
	for i := range recs {
		r := &recs[i]
		if !follows(cur, &r.Rec) {
			c.corrupt(rel, "record at offset %d has tsn %d after tsn %d", end.Off, r.Rec.TSN, cur)
			bad, clean = nil, false
			break
		}
		cur, end = r.Rec.TSN, r.End
		c.note(&r.Rec, r.End, isCat)
	}
	if bad != nil && (c.haveState || !c.lastSeg(seg)) {
		// At or below state everything is committed and durable: a bad record is damage. (With
		// no state, the last segment's tail may be a torn write nobody adopted.)
		c.corrupt(rel, "%v", bad)
		clean = false
	}
	if atState && clean {
		switch {
		case short:
			c.corrupt(metaRel(stateName), "log position %s:%d is past the end of the segment (%d bytes)", wal.SegName(seg), c.st.Pos.Off, fi.Size())
			clean = false
		case end != c.st.Pos:
			c.corrupt(metaRel(stateName), "no record ends at log position %s:%d chain %08x (the records end at %d chain %08x)",
				wal.SegName(seg), c.st.Pos.Off, c.st.Pos.Chain, end.Off, end.Chain)
			clean = false
		case cur != c.st.TSN:
			c.corrupt(metaRel(stateName), "committed tsn %d, but the log ends at tsn %d", c.st.TSN, cur)
			clean = false
		}
	}
	if isCat {
		c.catSegClean = clean && bad == nil
	}
	return clean && bad == nil, cur
}

func (c *checker) lastSeg(seg pages.TSN) bool { return len(c.segs) > 0 && c.segs[len(c.segs)-1] == seg }

// note records what a committed record tells about pages and names.
func (c *checker) note(r *record, end logPos, isCat bool) {
	if isCat {
		c.catBounds[end] = true
	}
	if r.IsReservation() {
		return
	}
	after := !c.haveCat || r.TSN > c.cat.TSN
	for i := range r.Ops {
		o := &r.Ops[i]
		switch o.Kind {
		case opCreate:
			if after {
				c.names[o.NS] = true
			}
		case opRename:
			if after {
				c.names[o.To] = true
			}
		case opPut, opAppend, opDel:
			if !after {
				c.changes[pageKey{o.Inc, o.PageNo}] = pageMark{tsn: r.TSN, deleted: o.Kind == opDel}
			}
		}
	}
}

// checkCatalogPos checks that the checkpoint's log position is a record boundary at or before
// state's.
func (c *checker) checkCatalogPos() {
	if !c.haveCat || !slices.Contains(c.segs, c.cat.Log.Seg) {
		return
	}
	rel := metaRel(checkpointName)
	if c.haveState {
		if c.cat.Log.Seg > c.st.Pos.Seg || (c.cat.Log.Seg == c.st.Pos.Seg && c.cat.Log.Off > c.st.Pos.Off) {
			c.corrupt(rel, "log position %s:%d is past state's %s:%d", wal.SegName(c.cat.Log.Seg), c.cat.Log.Off, wal.SegName(c.st.Pos.Seg), c.st.Pos.Off)
			return
		}
		if c.catBounds[c.catPos] {
			return
		}
		if c.catSegClean {
			c.corrupt(rel, "log position %s:%d chain %s is not the end of a record", wal.SegName(c.cat.Log.Seg), c.cat.Log.Off, c.cat.Log.Chain)
			return
		}
	}
	// The segment could not be read whole: at least a line must end there.
	f, err := os.Open(filepath.Join(c.logDir, wal.SegName(c.cat.Log.Seg)))
	if err != nil {
		return // reported by the walk
	}
	defer f.Close()
	if ok, err := endsRecordAt(f, c.cat.Log.Off); err == nil && !ok {
		c.corrupt(rel, "log position %s:%d is not the end of a line", wal.SegName(c.cat.Log.Seg), c.cat.Log.Off)
	}
}

// checkHorizon checks the horizon file, if any: a valid slot, not past state.
func (c *checker) checkHorizon() {
	rel := metaRel(horizonName)
	fi, err := os.Stat(filepath.Join(c.meta, horizonName))
	if errors.Is(err, fs.ErrNotExist) || (err == nil && fi.Size() == 0) {
		return // not published yet
	}
	hf, err := openHorizon(filepath.Join(c.meta, horizonName), 0, true)
	if err != nil {
		c.add(rel, err)
		return
	}
	defer hf.close()
	h, lin, seq, err := hf.readSlot()
	switch {
	case err != nil:
		c.add(rel, err)
	case seq == 0:
		c.corrupt(rel, "no valid slot")
	case c.haveState && lin == c.st.Lineage && h > c.st.TSN:
		// A horizon of an older lineage (before a NoSync power cut) says nothing about this one.
		c.corrupt(rel, "horizon %d is past the committed tsn %d", h, c.st.TSN)
	}
}
