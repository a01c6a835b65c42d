package txn

import (
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

// horizonNow computes and publishes the cleanup horizon: the committed TSN, read first, lowered
// to the floor of every live process that pins one. A registry file that cannot be read or probed
// pins everything (0). Dead processes' registry files are removed on the way. The horizon is
// published before anything below it is deleted. REQUIRES: checkpoint lock held.
//
// Why reading the committed TSN first matters: a process that was idle lowers its floor to the
// last TSN it saw before it reads state for a new snapshot. If this scan saw the idle entry, the
// committed TSN read here was read before that process lowered its floor, hence before its state
// read, so its snapshot is at or above it; if the scan saw the lowered floor, the horizon is at or
// below it. Either way no snapshot is below the horizon.
func (db *DB) horizonNow() (pages.TSN, error) {
	st, err := db.readState()
	if err != nil {
		return 0, err
	}
	h := st.TSN
	peers, err := scanPeers(db.procsDir)
	if err != nil {
		return 0, err
	}
	dead := 0
	for _, p := range peers {
		if !p.alive {
			if gone, err := removeDead(filepath.Join(db.procsDir, p.id+procSuffix)); err == nil && gone {
				dead++
			}
			continue
		}
		if f, pins := p.pins(); pins {
			h = min(h, f)
		}
	}
	if dead > 0 {
		db.sweepDead.Store(true)
	}
	if err := db.horizon.publish(h, st.Lineage); err != nil {
		return 0, err
	}
	return h, nil
}

// relocate gives every incarnation the folder its name calls for, keeping one incarnation per
// folder: dead incarnations' files are deleted (no snapshot at or above the horizon reads them)
// or moved to the attic; renamed ones go through the attic to their new folder. Each move is
// journalled in the published catalog (old) before it starts, so a checkpointer that dies halfway
// leaves a move the next one finishes. REQUIRES: checkpoint lock held.
func (db *DB) relocate(old, next *catalog, h pages.TSN) error {
	for pass := 0; pass < 2; pass++ {
		for i := range next.Incs {
			ci := &next.Incs[i]
			if ci.Dir == "" {
				continue
			}
			want := ""
			if ci.NS != "" {
				want = pathOf(ci.NS)
			}
			if ci.Dir == want {
				continue
			}
			switch {
			case ci.NS == "" && ci.Dropped <= h:
				if err := db.removeFolderFiles(ci.Dir, true); err != nil {
					return err
				}
				ci.Dir = ""
				if oci := old.inc(ci.Inc); oci != nil {
					oci.Dir = ""
				}
			case pass == 0 && ci.Dir != atticOf(ci.Inc):
				if err := db.move(old, next, ci.Inc, atticOf(ci.Inc)); err != nil {
					return err
				}
			case pass == 1 && want != "":
				if err := db.move(old, next, ci.Inc, want); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// move moves incarnation inc's files to folder to: journal, link, repoint, unlink.
func (db *DB) move(old, next *catalog, inc, to string) error {
	oci, nci := old.inc(inc), next.inc(inc)
	if oci == nil || nci == nil {
		return fmt.Errorf("txn: move of unknown incarnation %s", inc) // INVARIANT: it has files, so old lists it
	}
	oci.To, nci.To = to, to
	if err := writeCatalog(db.catalogPath(), old, db.cfg.FileMode); err != nil {
		return err
	}
	if err := db.finishMove(oci); err != nil {
		return err
	}
	nci.Dir, nci.To = oci.Dir, ""
	return nil
}

// finishMoves completes every move the published catalog journals.
func (db *DB) finishMoves(c *catalog) error {
	for i := range c.Incs {
		if c.Incs[i].To != "" {
			if err := db.finishMove(&c.Incs[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// finishMove links every version file of ci.Dir into ci.To, publishes the catalog naming ci.To,
// then removes the old names. Idempotent: a link that exists is the same file from an earlier try.
func (db *DB) finishMove(ci *catalogInc) error {
	from, to := ci.Dir, ci.To
	if err := db.pdir.MkdirFolder(to, dirMode(db.cfg.FileMode)); err != nil {
		return fmt.Errorf("move %s: %w", from, err)
	}
	// Nobody owns the target in the published catalog: a version file there is a leftover (of a
	// move out that could not finish unlinking, or a checkpoint that failed), or one this move
	// already linked. Either way it goes first, so no file of another incarnation is ever taken
	// for one of this one's (the files are all still in from).
	if err := db.removeFolderFiles(to, false); err != nil {
		return err
	}
	if from != "" {
		vs, err := db.listVersions(from)
		if err != nil {
			return err
		}
		for _, v := range vs {
			name := pages.VersionFileName(v.PageID, db.format, v.TSN)
			if err := db.root.Link(path.Join(from, name), path.Join(to, name)); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("move %s: %w", from, err)
			}
		}
	}
	if err := db.syncFolders(to); err != nil {
		return err
	}
	crashAt(crashCheckpointMove)
	ci.Dir, ci.To = to, ""
	return db.publishDir(ci, from)
}

// publishDir publishes the catalog with ci's new folder, then removes the files left in from.
func (db *DB) publishDir(ci *catalogInc, from string) error {
	cur, _, err := readCatalog(db.catalogPath())
	if err != nil {
		return err
	}
	if c := cur.inc(ci.Inc); c != nil {
		c.Dir, c.To = ci.Dir, ci.To
	}
	if err := writeCatalog(db.catalogPath(), &cur, db.cfg.FileMode); err != nil {
		return err
	}
	if from == "" {
		return nil
	}
	return db.removeFolderFiles(from, true)
}

// removeFolderFiles deletes the version files of the store's format and the temporary files of
// page writes in a folder (nothing else: a file txtdb did not make stays), fsyncs it, and with
// prune removes it and its parents while they are empty.
func (db *DB) removeFolderFiles(dir string, prune bool) error {
	ents, err := db.pdir.ReadFolder(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cleanup %s: %w", dir, err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !db.ownsFileName(e.Name()) {
			continue
		}
		if err := db.root.Remove(path.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cleanup %s: %w", dir, err)
		}
	}
	err = db.syncFolders(dir)
	if prune {
		db.pruneEmpty(dir) // also when the fsync failed: an empty folder is no use to anyone
	}
	return err
}

// ownsFileName reports whether a file name in a namespace folder is one txtdb writes: a version
// file of the store's format or the temporary file of a page write.
func (db *DB) ownsFileName(name string) bool {
	if _, f, _, err := pages.ParseVersionFileName(name); err == nil {
		return f == db.format
	}
	return isPageTemp(name)
}

// sweepStrays removes what failed or dead checkpoints left in folders that no incarnation of the
// catalog owns: version files written before a catalog named their folder, and temporary files.
// It walks the namespace folders (not the files of owned ones). REQUIRES: checkpoint lock held.
func (db *DB) sweepStrays(cat *catalog) error {
	owned := map[string]bool{}
	for _, ci := range cat.Incs {
		for _, d := range []string{ci.Dir, ci.To} {
			if d != "" {
				owned[d] = true
			}
		}
	}
	var strays []string
	err := fs.WalkDir(db.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // gone meanwhile, or unreadable: nothing to sweep there
		}
		if !d.IsDir() || p == "." {
			return nil
		}
		if p == pages.MetaDir {
			return fs.SkipDir
		}
		if _, err := pages.Namespace(p); err != nil {
			return fs.SkipDir // not a namespace folder: not txtdb's
		}
		if !owned[p] {
			strays = append(strays, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	attic := path.Join(pages.MetaDir, atticDirName)
	if ents, err := db.pdir.ReadFolder(attic); err == nil {
		for _, e := range ents {
			if p := path.Join(attic, e.Name()); e.IsDir() && !owned[p] {
				strays = append(strays, p)
			}
		}
	}
	for _, p := range slices.Backward(strays) { // children first, so empty parents can go
		if err := db.removeFolderFiles(p, true); err != nil {
			return err
		}
	}
	return nil
}

// pruneEmpty removes dir and then its parents while they are empty, never the data directory or
// the metadata folder. Best effort: a folder that is not empty stays.
func (db *DB) pruneEmpty(dir string) {
	for dir != "." && dir != "" && dir != pages.MetaDir && dir != path.Join(pages.MetaDir, atticDirName) {
		if err := db.root.Remove(dir); err != nil {
			return
		}
		_ = db.syncFolders(path.Dir(dir))
		dir = path.Dir(dir)
	}
}

func (db *DB) syncFolders(dirs ...string) error {
	for _, d := range dirs {
		if err := db.pdir.SyncFolder(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("fsync %s: %w", d, err)
		}
	}
	return nil
}

// cleanupLocked deletes what no snapshot at or above the horizon h can read: superseded page
// files, the files of dead incarnations, log segments past their retention; and the leftovers of
// dead processes. written, if not nil, is the catalog the checkpoint run published last (the one
// on disk: the checkpoint lock was held since). keepAfter, if not 0, is the checkpoint's TSN
// before the run: the files the run superseded (Until past it) stay, listed, for the next run to
// write new versions into (recyclePageFile), which is cheaper than creating files; that run's
// cleanup removes them if it did not. REQUIRES: checkpoint lock held, h published.
func (db *DB) cleanupLocked(h pages.TSN, written *catalog, keepAfter pages.TSN) error {
	var cat catalog
	if written != nil {
		cat = cloneCatalog(*written) // what the checkpoint step just published: no need to read it back
	} else {
		c, have, err := readCatalog(db.catalogPath())
		if err != nil || !have {
			return err
		}
		cat = c
	}
	changed := false
	dirs := map[string]bool{}
	keep := cat.Incs[:0]
	for _, ci := range cat.Incs {
		if ci.NS == "" && ci.Dropped <= h && ci.To == "" {
			if ci.Dir != "" {
				if err := db.removeFolderFiles(ci.Dir, true); err != nil {
					return err
				}
			}
			changed = true
			continue
		}
		keep = append(keep, ci)
	}
	cat.Incs = keep
	folders := db.folderSet()
	defer folders.close()
	left := cat.Pending[:0]
	for _, p := range cat.Pending {
		ci := cat.inc(p.Inc)
		if ci == nil {
			changed = true // its incarnation is gone, files and all
			continue
		}
		if p.Until > h || ci.To != "" || (keepAfter != 0 && p.Until > keepAfter) {
			if p.Until <= h && ci.To == "" {
				db.kept.Store(true)
			}
			left = append(left, p)
			continue
		}
		if err := db.removePageFile(folders, ci.Dir, pages.VersionFileName(p.Page, db.format, p.TSN)); err != nil {
			return fmt.Errorf("cleanup: %w", err)
		}
		dirs[ci.Dir] = true
		changed = true
		crashAt(crashCleanupMid)
	}
	cat.Pending = left
	for d := range dirs {
		if err := db.syncFolders(d); err != nil {
			return err
		}
	}
	if changed {
		if err := writeCatalog(db.catalogPath(), &cat, db.cfg.FileMode); err != nil {
			return err
		}
	}
	if db.sweepDead.Swap(false) {
		if err := db.removeLeftovers(&cat); err != nil {
			return err
		}
		if err := db.sweepStrays(&cat); err != nil {
			return err
		}
	}
	return db.trimLog(&cat, h)
}

// removeLeftovers removes what dead processes may have left outside the log: temporary page
// files of a checkpoint, a temporary checkpoint file, registry files under temporary names.
// REQUIRES: checkpoint lock held (so no live checkpoint is writing any of them).
func (db *DB) removeLeftovers(cat *catalog) error {
	for _, ci := range cat.Incs {
		for _, d := range []string{ci.Dir, ci.To} {
			if d == "" {
				continue
			}
			if err := db.removePageTemps(d); err != nil {
				return err
			}
		}
	}
	ents, err := os.ReadDir(db.meta)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if lockfs.IsTempName(e.Name()) && (strings.HasPrefix(e.Name(), "."+checkpointName) || strings.HasPrefix(e.Name(), "."+horizonName)) {
			_ = os.Remove(filepath.Join(db.meta, e.Name()))
		}
	}
	return removeDeadTemps(db.procsDir)
}

// removePageTemps removes the temporary files of page writes in a folder.
func (db *DB) removePageTemps(dir string) error {
	ents, err := db.pdir.ReadFolder(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), ".") && strings.HasSuffix(e.Name(), ".tmp") {
			if err := db.root.Remove(path.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// trimLog removes log segments that nobody needs: every record in them is at or below a
// checkpoint mark that is at or below the horizon, the checkpoint's position lies in a later
// segment, and the newer
// segments already hold the retention. Oldest first, so the log stays contiguous.
// REQUIRES: checkpoint lock held.
func (db *DB) trimLog(cat *catalog, h pages.TSN) error {
	segs, err := wal.ListSegments(db.logDir)
	if err != nil {
		return err
	}
	// Up to the newest checkpoint mark at or below the horizon: every snapshot at or above the
	// horizon finds each version it reads at or below that mark in a page file.
	var limit pages.TSN
	for _, m := range cat.Marks {
		if m <= h {
			limit = max(limit, m)
		}
	}
	var cand []pages.TSN
	for i := 0; i+1 < len(segs); i++ {
		if segs[i] >= cat.Log.Seg || segs[i+1]-1 > limit {
			break
		}
		cand = append(cand, segs[i])
	}
	keep := db.cfg.LogRetention
	// Keep the newest candidates while the kept bytes are below the retention.
	n := len(cand)
	var kept int64
	for n > 0 && keep > 0 && kept < keep {
		fi, err := os.Stat(filepath.Join(db.logDir, wal.SegName(cand[n-1])))
		if err != nil {
			return err
		}
		kept += fi.Size()
		n--
	}
	for i, s := range cand[:n] {
		if err := os.Remove(filepath.Join(db.logDir, wal.SegName(s))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("trim log: %w", err)
		}
		if i == 0 {
			crashAt(crashTrimMid)
		}
	}
	if n > 0 {
		return lockfs.SyncDir(db.logDir)
	}
	return nil
}

// removePageFile removes file name of folder dir, through folders; a file, or a folder, that is
// already gone is not an error.
func (db *DB) removePageFile(folders *folderSet, dir, name string) error {
	fo, err := folders.existing(dir)
	if fo == nil {
		return err
	}
	if err := fo.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
