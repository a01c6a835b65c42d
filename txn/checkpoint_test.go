package txn

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// dataFiles lists the files of a store outside .txtdb/, as slash paths.
func dataFiles(t *testing.T, dir string) []string { files, _ := dataTree(t, dir); return files }

// dataDirs lists the folders of a store outside .txtdb/.
func dataDirs(t *testing.T, dir string) []string { _, dirs := dataTree(t, dir); return dirs }

func dataTree(t *testing.T, dir string) (files, dirs []string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.IsDir() && rel == pages.MetaDir:
			return filepath.SkipDir
		case d.IsDir() && rel != ".":
			dirs = append(dirs, filepath.ToSlash(rel))
		case !d.IsDir() && rel != configName:
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	}))
	slices.Sort(files)
	slices.Sort(dirs)
	return files, dirs
}

// allPages reads every page of the namespaces a transaction sees: ns -> page -> object texts.
func allPages(t *testing.T, db *DB) map[string]map[string][]string {
	t.Helper()
	m, err := allPagesErr(context.Background(), db)
	require.NoError(t, err)
	return m
}

// A store at rest holds one version file per page, with its current contents, in the folder of
// the namespace's current name: renamed namespaces moved, dropped ones gone, a re-created name
// holding only its new pages. Reopening reads the same data from the files.
func TestCheckpointAtRest(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db := mustOpen(t, dir, Config{})
	mustUpdate := func(fn func(tx *Tx) error) {
		t.Helper()
		_, _, err := update(ctx, db, fn)
		require.NoError(t, err)
	}
	mustUpdate(func(tx *Tx) error {
		for _, ns := range []string{"a", "a.b", "gone", "moved"} {
			if err := tx.CreateNamespace(ns); err != nil {
				return err
			}
		}
		for i := range 3 {
			for _, ns := range []string{"a", "a.b", "gone", "moved"} {
				if _, err := tx.Insert(ns, map[string]any{"ns": ns, "i": i}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	require.NoError(t, db.Checkpoint(ctx)) // the files exist before the renames and drops below
	for i := range 5 {
		mustUpdate(func(tx *Tx) error {
			objs, err := tx.ReadPage("a", "page000001")
			if err != nil {
				return err
			}
			o, err := pages.ObjectFromText(pages.JSON, fmt.Appendf(nil, `{"u":%d}`, i))
			if err != nil {
				return err
			}
			vs := make([]any, 0, len(objs)+1)
			for _, x := range objs {
				vs = append(vs, x)
			}
			return tx.UpdatePage("a", "page000001", append(vs, o)...)
		})
		require.NoError(t, db.Checkpoint(ctx))
	}
	mustUpdate(func(tx *Tx) error { return tx.RenameNamespace("moved", "there.now") })
	mustUpdate(func(tx *Tx) error { return tx.DeleteNamespace("gone") })
	require.NoError(t, db.Checkpoint(ctx))
	mustUpdate(func(tx *Tx) error {
		if err := tx.CreateNamespace("gone"); err != nil {
			return err
		}
		_, err := tx.Insert("gone", map[string]any{"reborn": true})
		return err
	})
	want := allPages(t, db)
	require.NoError(t, db.Close())

	files := dataFiles(t, dir)
	byPage := map[string]int{}
	for _, f := range files {
		i := strings.LastIndex(f, ".v")
		byPage[f[:i]]++
	}
	for p, n := range byPage {
		require.Equal(t, 1, n, "page %s has %d version files at rest: %v", p, n, files)
	}
	require.Equal(t, []string{"a", "a/b", "gone", "there", "there/now"}, dataDirs(t, dir), "folders at rest: %v", files)
	require.Equal(t, []string{"a/b/page000001.json.v1", "a/page000001.json.v6", "gone/page000001.json.v9", "there/now/page000001.json.v1"}, files)
	require.NoFileExists(t, filepath.Join(dir, "moved", "page000001.json.v1"))

	// The files hold the data: a fresh handle reads everything from them.
	db2 := mustOpen(t, dir, Config{})
	require.Equal(t, want, allPages(t, db2))
	data, err := os.ReadFile(filepath.Join(dir, "gone", "page000001.json.v"+fmt.Sprint(db2.idxp.Load().applied)))
	require.NoError(t, err, "the re-created namespace's page: %v", files)
	require.Contains(t, string(data), `"reborn": true`)
}

// A long-lived snapshot keeps reading the versions it saw while others commit and checkpoint;
// the superseded files stay until it ends, then cleanup removes them.
func TestCheckpointKeepsWhatSnapshotsRead(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	setupPair(t, dir, Config{})
	w := mustOpen(t, dir, Config{})
	r := mustOpen(t, dir, Config{})
	require.NoError(t, w.Checkpoint(ctx))
	old, err := r.Begin(ctx, false)
	require.NoError(t, err)
	before, err := readInt(old, "c", "page000001")
	require.NoError(t, err)
	for range 20 {
		_, _, err := update(ctx, w, func(tx *Tx) error { _, err := bumpPair(tx); return err })
		require.NoError(t, err)
		require.NoError(t, w.Checkpoint(ctx))
	}
	// The old snapshot still reads what it read.
	for _, p := range []string{"page000001", "page000002"} {
		v, err := readInt(old, "c", p)
		require.NoError(t, err)
		require.Equal(t, before, v)
	}
	files := dataFiles(t, dir)
	require.Greater(t, len(files), 2, "versions the old snapshot may read are kept: %v", files)
	// A handle opened now reads the new values from the files.
	fresh := mustOpen(t, dir, Config{})
	require.NoError(t, view(ctx, fresh, func(tx *Tx) error {
		v, err := readInt(tx, "c", "page000001")
		require.NoError(t, err)
		require.Equal(t, before+20, v)
		return nil
	}))
	require.NoError(t, old.Rollback())
	require.NoError(t, fresh.Close())
	require.NoError(t, r.Close())
	require.NoError(t, w.Close()) // the last one: checkpoint and cleanup
	require.Len(t, dataFiles(t, dir), 2, "at rest: one file per page")
}

// With a tiny segment size and no retention, the log is trimmed behind the checkpoint; a handle
// that was idle meanwhile notices its segment is gone and rebuilds from the page files.
func TestTrimmedLogIdleHandleRebuilds(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	setupPair(t, dir, Config{SegmentBytes: 512, LogRetention: -1})
	idle := mustOpen(t, dir, Config{})
	var v0 int
	require.NoError(t, view(ctx, idle, func(tx *Tx) error {
		var err error
		v0, err = readInt(tx, "c", "page000001")
		return err
	}))
	w := mustOpen(t, dir, Config{})
	for range 50 {
		_, _, err := update(ctx, w, func(tx *Tx) error { _, err := bumpPair(tx); return err })
		require.NoError(t, err)
	}
	// The idle handle pins nothing once its housekeeper marked it idle.
	require.Eventually(t, func() bool { return idleEntry(t, idle) }, longStop, housekeepTick/4)
	require.NoError(t, w.Checkpoint(ctx))
	segs, err := wal.ListSegments(filepath.Join(dir, pages.MetaDir, logDirName))
	require.NoError(t, err)
	require.Greater(t, segs[0], pages.TSN(1), "segment 1 was trimmed: %v", segs)
	require.NoError(t, view(ctx, idle, func(tx *Tx) error {
		v, err := readInt(tx, "c", "page000001")
		require.NoError(t, err)
		require.Equal(t, v0+50, v)
		return nil
	}))
	require.Equal(t, int64(1), idle.rebuilds.Load(), "the idle handle rebuilt its view from the checkpoint")
	// It commits from the rebuilt view too.
	_, _, err = update(ctx, idle, func(tx *Tx) error { _, err := bumpPair(tx); return err })
	require.NoError(t, err)
	require.NoError(t, view(ctx, w, func(tx *Tx) error {
		v, err := readInt(tx, "c", "page000002")
		require.NoError(t, err)
		require.Equal(t, v0+51, v)
		return nil
	}))
	// And a fresh handle opens from the checkpoint and the remaining log.
	require.Equal(t, allPages(t, w), allPages(t, mustOpen(t, dir, Config{})))
}

func idleEntry(t *testing.T, db *DB) bool {
	db.reg.mu.Lock()
	defer db.reg.mu.Unlock()
	return db.reg.entry.idle
}

// Inserts append to a page until maxAppends in a row; then the page is written whole, so no
// version needs more than maxAppends log records to rebuild. The checkpoint resolves appends
// to a page whose base is only in its page file.
func TestAppendsAcrossCheckpoint(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db := mustOpen(t, dir, Config{})
	_, _, err := update(ctx, db, func(tx *Tx) error { return tx.CreateNamespace("q") })
	require.NoError(t, err)
	for i := range 3 * maxAppends {
		_, _, err := update(ctx, db, func(tx *Tx) error { _, err := tx.Insert("q", i); return err })
		require.NoError(t, err)
		if i%7 == 0 {
			require.NoError(t, db.Checkpoint(ctx))
		}
	}
	want := allPages(t, db)
	require.NoError(t, db.Close())
	db2 := mustOpen(t, dir, Config{})
	require.Equal(t, want, allPages(t, db2))
	n := 0
	for _, objs := range want["q"] {
		n += len(objs)
	}
	require.Equal(t, 3*maxAppends, n)
	data, err := os.ReadFile(seg1(dir))
	require.NoError(t, err)
	puts := strings.Count(string(data), `"op":"put"`)
	require.GreaterOrEqual(t, puts, 2, "after %d appends the page is written whole", maxAppends)
}

// A process SIGKILLed while it holds an old snapshot stops pinning versions the moment it is
// dead (its registry lock is free), and the next cleanup by another process removes its registry
// file and the versions only it could read.
func TestKilledSnapshotHolderStopsPinning(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	setupPair(t, dir, Config{})
	w := mustOpen(t, dir, Config{})
	require.NoError(t, w.Checkpoint(ctx))
	k := startChild(t, "snapshot-holder", configEnv(t, childConfig{Dir: dir}))
	held := pages.TSN(atoi(t, k.expect(t, "holding")))
	for range 10 {
		_, _, err := update(ctx, w, func(tx *Tx) error { _, err := bumpPair(tx); return err })
		require.NoError(t, err)
		require.NoError(t, w.Checkpoint(ctx))
	}
	h, _, err := w.horizon.read()
	require.NoError(t, err)
	require.Equal(t, held, h, "the holder's snapshot is the horizon")
	// Stats shows what holds cleanup back, in another process (once its housekeeper raised the
	// floor it registered with, 0, to its snapshot).
	require.Eventually(t, func() bool {
		st := w.Stats()
		return st.OldestFloor == held && st.OldestFloorPID == k.cmd.Process.Pid && st.OldestFloorAge > 0
	}, longStop, housekeepTick/4)
	require.Greater(t, len(dataFiles(t, dir)), 2, "versions the holder may read are kept")
	procs := filepath.Join(dir, pages.MetaDir, procsDirName)
	ents, err := os.ReadDir(procs)
	require.NoError(t, err)
	require.Len(t, ents, 2, "two live registry files")

	require.NoError(t, k.cmd.Process.Kill())
	<-k.done
	k.done <- nil
	// This handle's own floor rises at its next housekeeping tick; nothing else holds it back.
	require.Eventually(t, func() bool {
		require.NoError(t, w.Checkpoint(ctx))
		h, _, err = w.horizon.read()
		require.NoError(t, err)
		return h == w.idxp.Load().applied
	}, longStop, housekeepTick/4, "a dead process pins nothing")
	require.Len(t, dataFiles(t, dir), 2, "one file per page once nobody can read the old ones")
	ents, err = os.ReadDir(procs)
	require.NoError(t, err)
	require.Len(t, ents, 1, "the dead process's registry file is gone")
}

// Bounded growth: several processes commit tens of thousands of transactions over a few hundred
// pages; the files and bytes on disk stay within a bound set by the options (page count, segment
// size, retention), sampled throughout the run, and the store ends at rest.
func TestBoundedGrowth(t *testing.T) {
	const (
		procs    = 4
		nPages   = 200
		segBytes = 64 << 10
	)
	perProc := 10000
	if testing.Short() {
		perProc = 1500
	}
	dir := t.TempDir()
	ctx := context.Background()
	cfg := Config{SegmentBytes: segBytes, LogRetention: -1, OneObjectPerPage: true}
	db := mustOpen(t, dir, cfg)
	_, _, err := update(ctx, db, func(tx *Tx) error {
		if err := tx.CreateNamespace("g"); err != nil {
			return err
		}
		for range nPages {
			if _, err := tx.Insert("g", 0); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, db.Close())

	type usage struct{ files, pageFiles, logBytes, bytes int64 }
	measure := func() usage {
		var u usage
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil // files come and go while we walk
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			u.files++
			u.bytes += fi.Size()
			if strings.Contains(p, string(filepath.Separator)+logDirName+string(filepath.Separator)) {
				u.logBytes += fi.Size()
			} else if strings.Contains(d.Name(), ".json.v") {
				u.pageFiles++
			}
			return nil
		})
		return u
	}
	var peak usage
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			u := measure()
			peak = usage{max(peak.files, u.files), max(peak.pageFiles, u.pageFiles), max(peak.logBytes, u.logBytes), max(peak.bytes, u.bytes)}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	cc := childConfig{Dir: dir, N: perProc, SegmentBytes: segBytes, NoSync: true, Pages: nPages, CheckpointEvery: 100 * time.Millisecond}
	var kids []*child
	for range procs {
		kids = append(kids, startChild(t, "spreader", configEnv(t, cc)))
	}
	for _, k := range kids {
		lines, err := k.all(t)
		require.NoError(t, err, "spreader: %v", tail(lines))
	}
	close(stop)
	<-sampled
	end := measure()
	t.Logf("%d commits over %d pages: peak %d files (%d page files), %d log bytes, %d bytes; at rest %d files, %d bytes",
		procs*perProc, nPages, peak.files, peak.pageFiles, peak.logBytes, peak.bytes, end.files, end.bytes)
	// Page files: the current one per page plus the versions superseded since the horizon last
	// rose (each busy process's floor trails by a housekeeping tick); the log: what is written
	// during a checkpoint interval and a floor tick, in segments of segBytes plus their zeros.
	// Neither depends on how many commits came before (the full run makes 6.7 times as many).
	// The page files' peak depends on how far the floors trail under load: 570 to 860 for 200
	// pages in runs of this test under -race (the same before and after the page cache's
	// changes), against the 6,000 that growth with the commits would reach.
	require.LessOrEqual(t, peak.pageFiles, int64(6*nPages), "page files stay bounded")
	require.LessOrEqual(t, peak.logBytes, int64(32*2*segBytes), "log bytes stay bounded")
	require.Equal(t, int64(nPages), countVersionFiles(t, dir), "at rest: one file per page")

	db = mustOpen(t, dir, cfg)
	sum := 0
	require.NoError(t, view(ctx, db, func(tx *Tx) error {
		m, err := tx.Match("g", "*")
		if err != nil {
			return err
		}
		for _, objs := range m {
			var v int
			require.NoError(t, objs[0].Decode(&v))
			sum += v
		}
		return nil
	}))
	require.Equal(t, procs*perProc, sum, "every acknowledged increment is there")
}

func countVersionFiles(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, f := range dataFiles(t, dir) {
		if strings.Contains(f, ".json.v") {
			n++
		}
	}
	return n
}

// GC safety against the two nasty interleavings. A Begin of a handle that was idle reads state,
// and before it has recorded its snapshot, another process supersedes the pages and runs
// checkpoint and cleanup (first variant: the cleanup scans the floors in that window; second: a
// Begin races the horizon publication, the cleanup's own state read coming after the Begin's).
// The snapshot must still read its versions from the page files. With the floor lowering planted
// away, the same schedule deletes them: the test can fail.
func TestGCRaces(t *testing.T) {
	for _, planted := range []bool{false, true} {
		t.Run(fmt.Sprintf("planted=%v", planted), func(t *testing.T) { gcRace(t, planted) })
	}
}

func gcRace(t *testing.T, planted bool) {
	dir := t.TempDir()
	ctx := context.Background()
	setupPair(t, dir, Config{})
	w := mustOpen(t, dir, Config{})
	bump := func() {
		_, _, err := update(ctx, w, func(tx *Tx) error { _, err := bumpPair(tx); return err })
		require.NoError(t, err)
	}
	bump()
	require.NoError(t, w.Checkpoint(ctx))
	r := mustOpen(t, dir, Config{}) // its index points at the page files; nothing loaded yet
	r.floor.plantNoLower = planted
	require.Eventually(t, func() bool { return idleEntry(t, r) }, longStop, housekeepTick/4)
	if idleEntry(t, w) { // on a loaded machine w went idle too while r settled: a commit pins it again
		bump()
	}
	require.Eventually(t, func() bool { return !idleEntry(t, w) }, longStop, housekeepTick/4)

	var fired atomic.Bool
	hook := func() {
		if !fired.CompareAndSwap(false, true) {
			return
		}
		// In the window: the pages move on, and cleanup runs with w's floor the only one pinned.
		bump()
		bump()
		latest := w.idxp.Load().applied
		require.Eventually(t, func() bool { // w itself pins nothing older than latest
			w.reg.mu.Lock()
			defer w.reg.mu.Unlock()
			return w.reg.entry.idle || w.reg.entry.floor >= latest
		}, longStop, housekeepTick/4)
		require.NoError(t, w.Checkpoint(ctx))
	}
	faults.begin.Store(&hook)
	t.Cleanup(func() { faults.begin.Store(nil) })
	tx, err := r.Begin(ctx, false)
	require.NoError(t, err)
	faults.begin.Store(nil)
	defer tx.Rollback()
	a, errA := readInt(tx, "c", "page000001")
	b, errB := readInt(tx, "c", "page000002")
	if planted {
		require.True(t, errA != nil || errB != nil, "with the floor left idle the old versions are deleted under the snapshot")
		require.ErrorIs(t, errors.Join(errA, errB), pages.ErrCorrupt)
		return
	}
	require.NoError(t, errA)
	require.NoError(t, errB)
	require.Equal(t, a, b)
	require.Equal(t, 1, a, "the snapshot reads the values it began with")
	h, _, err := w.horizon.read()
	require.NoError(t, err)
	require.LessOrEqual(t, h, tx.Snapshot(), "no snapshot below the horizon")
}

// A move into a folder that still holds a version file nobody owns (a move out that could not
// finish unlinking, a failed checkpoint) never takes that file for one of the moved namespace's:
// the target is cleared before the links, even where a name collides.
func TestMoveIntoFolderWithLeftovers(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db := mustOpen(t, dir, Config{OneObjectPerPage: true})
	tsn, _, err := update(ctx, db, func(tx *Tx) error {
		if err := tx.CreateNamespace("c"); err != nil {
			return err
		}
		_, err := tx.Insert("c", 7)
		return err
	})
	require.NoError(t, err)
	require.NoError(t, db.Checkpoint(ctx))
	// A leftover under exactly the name the move will link.
	stray := filepath.Join(dir, "e", "page000001.json.v"+fmt.Sprint(tsn))
	require.NoError(t, os.MkdirAll(filepath.Dir(stray), 0o755))
	require.NoError(t, os.WriteFile(stray, []byte("[\n  999\n]\n"), 0o644))
	_, _, err = update(ctx, db, func(tx *Tx) error { return tx.RenameNamespace("c", "e") })
	require.NoError(t, err)
	require.NoError(t, db.Checkpoint(ctx))
	require.NoError(t, db.Close())
	fresh := mustOpen(t, dir, Config{})
	require.NoError(t, view(ctx, fresh, func(tx *Tx) error {
		v, err := readInt(tx, "e", "page000001")
		require.NoError(t, err)
		require.Equal(t, 7, v, "the moved page, not the leftover")
		return nil
	}))
}

// A page appended to by many commits since the last checkpoint (inserts packed into one page) is
// checkpointed whole and in order: the step extends its own copy of the page with each append,
// and never the array of a record it read.
func TestCheckpointManyAppendsToOnePage(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db := mustOpen(t, dir, Config{})
	onePage(t, db, 0)
	const n = 40
	for i := 1; i < n; i++ {
		if i == 2 {
			require.NoError(t, db.Checkpoint(ctx)) // later appends go to a checkpointed version
		}
		_, _, err := update(ctx, db, func(tx *Tx) error { _, err := tx.Insert("n", i); return err })
		require.NoError(t, err)
	}
	require.NoError(t, db.Checkpoint(ctx))
	var all []string
	most := 0
	for _, f := range dataFiles(t, dir) { // in page order
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		require.NoError(t, err)
		objs, err := pages.DecodePage(pages.JSON, data)
		require.NoError(t, err)
		most = max(most, len(objs))
		for _, o := range objs {
			all = append(all, o.Text())
		}
	}
	require.GreaterOrEqual(t, most, n/2, "the inserts were not packed into a page")
	want := make([]string, n)
	for i := range want {
		want[i] = strconv.Itoa(i)
	}
	require.Equal(t, want, all)
}
