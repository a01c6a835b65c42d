package txn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"
	"weak"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// Recycle overwrites from offset 0, then truncates: a checkpointer that
// dies, or gets an error, between the pwrite and the ftruncate leaves under the new version's
// name the new version's bytes followed by the old, longer version's tail. Real processes, with
// strace failing the ftruncate (EIO), or failing it and killing the process there (SIGKILL).
// The leftover must never be read: readers of the version get it from the log, Check calls it a
// leftover at most, and the next checkpoint rewrites it (same version) or removes it (the page
// changed again, and the log holding the version is trimmed).
func TestRecycleCutNeverHappened(t *testing.T) {
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("no strace")
	}
	for _, inject := range []string{"error=EIO", "error=EIO:signal=KILL"} {
		for _, again := range []bool{false, true} {
			name := strings.ReplaceAll(inject, ":", "_")
			if again {
				name += "/changed-again"
			}
			t.Run(name, func(t *testing.T) { reviewRecycleCut(t, inject, again) })
		}
	}
}

func reviewRecycleCut(t *testing.T, inject string, again bool) {
	dir := t.TempDir()
	ctx := context.Background()
	const segBytes = 512
	cfg := Config{OneObjectPerPage: true, SegmentBytes: segBytes, LogRetention: -1, CheckpointEvery: time.Hour}
	w, set, _, t3, ta := recycleStore(t, dir, cfg, strings.Repeat("x", 300)) // v1's file is much longer than v3's

	r := mustOpen(t, dir, Config{ReadOnly: true, CacheSize: 1})
	tx, err := r.Begin(ctx, false)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	require.Equal(t, ta, tx.Snapshot())

	// A checkpointer (the ckpt-keep role) whose ftruncate of the recycled file (by then under
	// v3's name) fails, or that is killed there; other files' ftruncates (the board's) succeed.
	name3 := filepath.Join(dir, "n", pages.VersionFileName("page000001", pages.JSON, t3))
	cmd := exec.Command("strace", "-f", "-qq", "-o", "/dev/null", "-P", name3, "-e", "trace=ftruncate",
		"-e", "inject=ftruncate:"+inject, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TXN_ROLE=ckpt-keep", "TXN_UNARMED=1",
		configEnv(t, childConfig{Dir: dir, SegmentBytes: segBytes, CheckpointEvery: time.Hour}))
	k := startCmd(t, cmd)
	lines, err := k.all(t)
	require.Error(t, err, "the checkpointer did not fail: %v", lines)
	if !strings.Contains(inject, "KILL") {
		require.Contains(t, strings.Join(lines, "\n"), "truncate", "the checkpoint failed elsewhere: %v", lines)
	}

	data, err := os.ReadFile(name3)
	require.NoError(t, err, "no file under v%d's name", t3)
	want3, err := pages.EncodePage(pages.JSON, []pages.Object{mustEncodeInt(t, 3)})
	require.NoError(t, err)
	require.True(t, len(data) > len(want3) && string(data[:len(want3)]) == string(want3),
		"expected v3's bytes then v1's tail, got %q", data)
	_, derr := pages.DecodePage(pages.JSON, data)
	t.Logf("leftover under v%d's name: %q (decode: %v)", t3, data, derr)

	// Readers get the version from the log, whoever they are.
	v, err := readInt(tx, "n", "page000001")
	require.NoError(t, err)
	require.Equal(t, 3, v)
	r2 := mustOpen(t, dir, Config{ReadOnly: true, CacheSize: 1})
	readsThree(t, r2)
	readsThree(t, w)
	// Check: a leftover at most, never corruption.
	probs, err := CheckDir(ctx, dir)
	require.NoError(t, err)
	for _, p := range probs {
		require.False(t, errors.Is(p, pages.ErrCorrupt), "Check: %s", p)
		t.Logf("Check before the next checkpoint: %s", p)
	}

	if !again {
		require.NoError(t, checkpointKeeping(ctx, w))
		data, err := os.ReadFile(name3)
		require.NoError(t, err)
		require.Equal(t, string(want3), string(data), "the next checkpoint did not rewrite v%d's file", t3)
		v, err := readInt(tx, "n", "page000001")
		require.NoError(t, err)
		require.Equal(t, 3, v)
		r3 := mustOpen(t, dir, Config{ReadOnly: true, CacheSize: 1})
		readsThree(t, r3)
		return
	}
	set("n", "page000001", 4)
	for i := range 5 {
		set("o", "", i)
	}
	require.NoError(t, checkpointKeeping(ctx, w))
	segs, err := wal.ListSegments(filepath.Join(dir, pages.MetaDir, "log"))
	require.NoError(t, err)
	require.Greater(t, segs[0], t3, "the segment holding v%d's record was not trimmed: %v", t3, segs)
	_, err = os.Stat(name3)
	require.ErrorIs(t, err, os.ErrNotExist, "the leftover under v%d's name survived a checkpoint of v4", t3)
	_, err = readInt(tx, "o", "page000001") // the last version loaded: v3's contents are dropped
	require.NoError(t, err)
	v, err = readInt(tx, "n", "page000001")
	if err == nil {
		require.Equal(t, 3, v)
	} else {
		require.ErrorIs(t, err, ErrSnapshotTooOld)
	}
}

func mustEncodeInt(t *testing.T, v int) pages.Object {
	t.Helper()
	o, err := pages.Encode(pages.JSON, v)
	require.NoError(t, err)
	return o
}

// Through the page cache: handle b catches up one record of another handle
// that puts two pages of 1 MiB each (a record far above smallRecord, so every text is its own
// copy). The cache drops page000001's version (as an eviction does) while page000002's stays
// cached: page000001's text should then be garbage, and the cache's byte bound (what it charges
// for page000002) the memory it keeps. With one Objects array per record, page000002's cached
// slice keeps page000001's object, and its 1 MiB, alive: memory is bounded by whole records,
// not by CacheSize.
//
// Failed before the fix.
func TestEvictedVersionTextIsFreed(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	cfg := Config{OneObjectPerPage: true, CheckpointEvery: time.Hour}
	a := mustOpen(t, dir, cfg)
	b := mustOpen(t, dir, cfg)
	big := strings.Repeat("z", 1<<20)
	_, _, err := update(ctx, a, func(tx *Tx) error {
		if err := tx.CreateNamespace("n"); err != nil {
			return err
		}
		if _, err := tx.Insert("n", "1"); err != nil {
			return err
		}
		_, err := tx.Insert("n", "2")
		return err
	})
	require.NoError(t, err)
	// b reads both pages, so that it decodes changes to them as it catches up (a page no version
	// of which is in memory gets its changes without their objects: index.cold).
	require.NoError(t, view(ctx, b, func(tx *Tx) error {
		for _, id := range []string{"page000001", "page000002"} {
			if _, err := tx.ReadPage("n", id); err != nil {
				return err
			}
		}
		return nil
	}))
	_, _, err = update(ctx, a, func(tx *Tx) error {
		for i, id := range []string{"page000001", "page000002"} {
			if _, err := tx.ReadPage("n", id); err != nil {
				return err
			}
			if err := tx.UpdatePage("n", id, fmt.Sprint(i+1)+big); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, view(ctx, b, func(tx *Tx) error { return nil })) // b catches the record up from the log

	x := b.idxp.Load()
	x.mu.RLock()
	names := x.names["n"]
	inc := names[len(names)-1].inc
	v1, v2 := x.incs[inc].pages[1].latest(), x.incs[inc].pages[2].latest()
	require.True(t, v1.loaded && v2.loaded, "a caught-up put keeps its objects")
	text1 := v1.objs[0].Text()
	require.True(t, strings.HasPrefix(text1, `"1zzz`))
	gone := weak.Make(unsafe.StringData(text1))
	x.mu.RUnlock()
	text1 = ""

	x.mu.Lock()
	b.cache.drop([]*version{v1}) // what an eviction does: the contents go, to be loaded again
	x.mu.Unlock()
	require.False(t, v1.loaded)
	for range 3 {
		runtime.GC()
	}
	require.True(t, v2.loaded)
	require.Nil(t, gone.Value(),
		"page000001's 1 MiB text is still in memory after its version left the cache (cache charged %d bytes): page000002's cached objects (len %d, cap %d) share the record's Objects array",
		b.cache.used(), len(v2.objs), cap(v2.objs))
	runtime.KeepAlive(v2)
}

// The leftover removal in checkpointStep, with the leftover a reuse killed mid-overwrite leaves (v3's bytes then
// v1's tail, from a checkpointer killed between the pwrite and the ftruncate): the next step
// removes or rewrites a leftover only for pages of live incarnations. When the namespace was
// dropped in between, and a snapshot below the drop keeps the horizon below it, relocate moves
// the incarnation's files, the leftover included (hard links), into the attic, and the catalog
// now covers the leftover's TSN: CheckDir then calls it corruption, though no reader can reach
// it (an index built from that catalog skips the dropped incarnation; older ones never name a
// file above their catalog).
//
// Failed before the fix: CheckDir reports ErrCorrupt for .txtdb/attic/<inc>/page000001.json.v<t3>.
func TestLeftoverOfDroppedNamespaceIsNotCorruption(t *testing.T) {
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("no strace")
	}
	dir := t.TempDir()
	ctx := context.Background()
	cfg := Config{OneObjectPerPage: true, CheckpointEvery: time.Hour}
	w := mustOpen(t, dir, cfg)
	_, _, err := update(ctx, w, func(tx *Tx) error {
		if err := tx.CreateNamespace("n"); err != nil {
			return err
		}
		_, err := tx.Insert("n", strings.Repeat("x", 300))
		return err
	})
	require.NoError(t, err)
	require.NoError(t, w.Checkpoint(ctx))
	setRaw := func(v int) pages.TSN {
		tsn, _, err := update(ctx, w, func(tx *Tx) error {
			if _, err := tx.ReadPage("n", "page000001"); err != nil {
				return err
			}
			return tx.UpdatePage("n", "page000001", v)
		})
		require.NoError(t, err)
		return tsn
	}
	setRaw(2)
	require.NoError(t, checkpointKeeping(ctx, w)) // v1's long file kept for reuse
	t3 := setRaw(3)

	// A writable handle's snapshot after v3, before the drop: the horizon stays below the drop.
	h := mustOpen(t, dir, cfg)
	tx, err := h.Begin(ctx, false)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	v, err := readInt(tx, "n", "page000001")
	require.NoError(t, err)
	require.Equal(t, 3, v)
	require.NoError(t, h.floor.raise()) // as its housekeeper's tick does: the floor is the open snapshot

	left := filepath.Join(dir, "n", pages.VersionFileName("page000001", pages.JSON, t3))
	cmd := exec.Command("strace", "-f", "-qq", "-o", "/dev/null", "-P", left, "-e", "trace=ftruncate",
		"-e", "inject=ftruncate:error=EIO:signal=KILL", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TXN_ROLE=ckpt-keep", "TXN_UNARMED=1",
		configEnv(t, childConfig{Dir: dir, CheckpointEvery: time.Hour}))
	k := startCmd(t, cmd)
	_, err = k.all(t)
	require.Error(t, err)
	data, err := os.ReadFile(left)
	require.NoError(t, err)
	_, derr := pages.DecodePage(pages.JSON, data)
	require.Error(t, derr, "expected v3's bytes then v1's tail under v3's name: %q", data)

	_, _, err = update(ctx, w, func(tx *Tx) error { return tx.DeleteNamespace("n") })
	require.NoError(t, err)
	require.NoError(t, checkpointKeeping(ctx, w)) // the drop is above the horizon: n's files go to the attic

	probs, err := CheckDir(ctx, dir)
	require.NoError(t, err)
	for _, p := range probs {
		t.Logf("Check: %s", p)
		require.False(t, errors.Is(p, pages.ErrCorrupt), "Check calls a dead checkpointer's leftover corruption: %s", p)
	}
	v, err = readInt(tx, "n", "page000001") // the old snapshot still reads the dropped namespace
	require.NoError(t, err)
	require.Equal(t, 3, v)
}

// Worse than the cache case: index.apply leaves version.objs = o.Objects on an
// append whose base is not loaded (loaded false: "the appended objects are not kept"), and such
// a version is on no LRU list, so nothing ever drops it while it is its page's latest. Before
// this commit that slice held the op's own objects only; now it is a window on the record's one
// Objects array, so a small append keeps every other op's objects of its record alive, uncharged
// and never evicted. Here b, opened from a checkpoint (its page000001 of "n" is on disk, not
// loaded), catches up one record that appends 1 small object to that page and writes 1 MiB
// to the page of "m" that b has read (so b decodes it; the append, to a page b has not read,
// it applies without its objects); the 1 MiB version leaves the cache, and its text must go.
//
// Failed before the fix: the text stays reachable through the unloaded append version's objs.
func TestUnloadedAppendDoesNotPinItsRecord(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	cfg := Config{CheckpointEvery: time.Hour} // the packed layout: inserts append to a page
	a := mustOpen(t, dir, cfg)
	_, _, err := update(ctx, a, func(tx *Tx) error {
		for _, ns := range []string{"n", "m"} {
			if err := tx.CreateNamespace(ns); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	var hot, mPage string
	_, _, err = update(ctx, a, func(tx *Tx) error { hot, err = tx.Insert("n", 1); return err }) // a's hot page of n
	require.NoError(t, err)
	hotNo, err := pages.ParsePageID(hot)
	require.NoError(t, err)
	_, _, err = update(ctx, a, func(tx *Tx) error { mPage, err = tx.Insert("m", 0); return err })
	require.NoError(t, err)
	require.NoError(t, a.Checkpoint(ctx))
	b := mustOpen(t, dir, cfg) // its index comes from the checkpoint: n/page000001 not loaded
	// b reads m's page, so that it decodes the change to it as it catches up (a page no version
	// of which is in memory gets its changes without their objects: index.cold).
	require.NoError(t, view(ctx, b, func(tx *Tx) error { _, err := tx.ReadPage("m", mPage); return err }))
	big := strings.Repeat("z", 1<<20)
	_, _, err = update(ctx, a, func(tx *Tx) error {
		id, err := tx.Insert("n", 2)
		if err != nil {
			return err
		}
		if id != hot {
			return errors.New("the insert did not append to the hot page: " + id)
		}
		if _, err := tx.ReadPage("m", mPage); err != nil {
			return err
		}
		return tx.UpdatePage("m", mPage, big)
	})
	require.NoError(t, err)
	require.NoError(t, view(ctx, b, func(tx *Tx) error { return nil })) // b catches the record up

	x := b.idxp.Load()
	x.mu.RLock()
	incOf := func(ns string) string { nv := x.names[ns]; return nv[len(nv)-1].inc }
	vn := x.incs[incOf("n")].pages[hotNo].latest()
	var vm *version
	for _, h := range x.incs[incOf("m")].pages {
		vm = h.latest()
	}
	require.True(t, vn.append && !vn.loaded, "the append's base was not loaded: the append is not kept loaded")
	require.True(t, vm.loaded)
	textM := vm.objs[0].Text()
	gone := weak.Make(unsafe.StringData(textM))
	x.mu.RUnlock()
	textM = ""
	x.mu.Lock()
	b.cache.drop([]*version{vm}) // as an eviction does
	x.mu.Unlock()
	require.False(t, vm.loaded)
	for range 3 {
		runtime.GC()
	}
	require.Nil(t, gone.Value(),
		"m's 1 MiB text is still in memory after its version left the cache (cache charged %d bytes): n's hot page's unloaded append version holds objs (len %d, cap %d) in the record's one Objects array",
		b.cache.used(), len(vn.objs), cap(vn.objs))
	runtime.KeepAlive(vn)
}

// readsThree checks that a transaction of db reads 3 on page000001 of "n".
func readsThree(t *testing.T, db *DB) {
	t.Helper()
	require.NoError(t, view(context.Background(), db, func(tx *Tx) error {
		v, err := readInt(tx, "n", "page000001")
		require.NoError(t, err)
		require.Equal(t, 3, v)
		return nil
	}))
}
