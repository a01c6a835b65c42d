package txn

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

func seg1(dir string) string { return filepath.Join(dir, pages.MetaDir, logDirName, wal.SegName(1)) }

// stateOf reads the store's current state.
func stateOf(t *testing.T, dir string) state {
	t.Helper()
	sf, err := wal.OpenStateFile(filepath.Join(dir, pages.MetaDir, stateName), 0o644, false)
	require.NoError(t, err)
	defer sf.Close()
	st, err := sf.Read()
	require.NoError(t, err)
	return st
}

// rewindState makes to the newest state slot (what a power cut that lost the newer, unsynced
// slots leaves behind).
func rewindState(t *testing.T, dir string, to state) {
	t.Helper()
	to.Seq = stateOf(t, dir).Seq + 1
	sf, err := wal.OpenStateFile(filepath.Join(dir, pages.MetaDir, stateName), 0o644, false)
	require.NoError(t, err)
	require.NoError(t, sf.Write(to, true))
	require.NoError(t, sf.Close())
}

// reboot makes handles opened from now on run under another kernel boot id.
func reboot(t *testing.T) {
	prev := bootID
	bootID = func() string { return "rebooted" }
	t.Cleanup(func() { bootID = prev })
}

// uncheckpoint takes a store back to before its first checkpoint: no catalog, no page files, the
// whole log the only truth (valid while no segment was trimmed).
func uncheckpoint(t *testing.T, dir string) {
	t.Helper()
	require.NoError(t, os.Remove(filepath.Join(dir, pages.MetaDir, checkpointName)))
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		if e.IsDir() && e.Name() != pages.MetaDir {
			require.NoError(t, os.RemoveAll(filepath.Join(dir, e.Name())))
		}
	}
}

// bumpN commits n increments of the pair through a fresh handle.
func bumpN(t *testing.T, dir string, n int) {
	t.Helper()
	db := mustOpen(t, dir, Config{})
	for i := 0; i < n; i++ {
		_, _, err := update(context.Background(), db, func(tx *Tx) error { _, err := bumpPair(tx); return err })
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())
}

// A damaged record at or below state's position is ErrCorrupt, reported and never erased.
func TestCorruptCommittedRecordIsReported(t *testing.T) {
	dir := t.TempDir()
	skipCheck(dir) // the damage stays: that is the point
	setupPair(t, dir, Config{})
	bumpN(t, dir, 5)
	uncheckpoint(t, dir) // so that Open reads record 3
	data, err := os.ReadFile(seg1(dir))
	require.NoError(t, err)
	i := bytes.Index(data, []byte(`"tsn":3,`))
	require.Positive(t, i)
	bad := bytes.Clone(data)
	bad[i+20] ^= 0x01 // a bit flip inside record 3
	require.NoError(t, os.WriteFile(seg1(dir), bad, 0o644))

	_, err = Open(context.Background(), dir, Config{})
	require.ErrorIs(t, err, pages.ErrCorrupt)
	var ce *pages.CorruptError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, seg1(dir), ce.Path)
	after, err := os.ReadFile(seg1(dir))
	require.NoError(t, err)
	require.Equal(t, bad, after, "a corrupt committed record must not be erased")
}

// Garbage past state's position (a torn write) is erased by the next committer; everything
// committed stays.
func TestTornTailIsErased(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	bumpN(t, dir, 3)
	st := stateOf(t, dir)
	// Longer than the next record, so only an erase (not the overwrite) can remove the marker.
	torn := `{"tsn":5,"ops":[{"op":"put","ns":"c","inc":"x","page":"` + strings.Repeat("x", 4000) + "TORN-MARKER"
	f, err := os.OpenFile(seg1(dir), os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte(torn), st.Pos.Off)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	bumpN(t, dir, 1)
	v, err := verifyPair(dir, 3, []int{4})
	require.NoError(t, err)
	require.Equal(t, 4, v)
	data, err := os.ReadFile(seg1(dir))
	require.NoError(t, err)
	require.NotContains(t, string(data), "TORN-MARKER", "torn tail erased")
	require.Contains(t, string(data), `"tsn":5,`, "the next commit took its place")
}

// A state file with no readable slot is rebuilt from the log; nothing committed is lost.
func TestUnreadableStateIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	bumpN(t, dir, 4)
	statePath := filepath.Join(dir, pages.MetaDir, stateName)
	require.NoError(t, os.WriteFile(statePath, bytes.Repeat([]byte("x"), 2*wal.StateSlotSize), 0o644))
	v, err := verifyPair(dir, 4, nil)
	require.NoError(t, err)
	require.Equal(t, 4, v)
	bumpN(t, dir, 1)
	v, err = verifyPair(dir, 5, nil)
	require.NoError(t, err)
	require.Equal(t, 5, v)
}

// A torn read of one state slot (the writer mid-pwrite) falls back to the other slot.
func TestStateTornSlotFallsBack(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	bumpN(t, dir, 2)
	sf, err := wal.OpenStateFile(filepath.Join(dir, pages.MetaDir, stateName), 0o644, false)
	require.NoError(t, err)
	defer sf.Close()
	st, err := sf.Read()
	require.NoError(t, err)
	// Tear the newest slot: half new bytes, half old.
	next := st
	next.Seq++
	next.TSN++
	enc := next.Encode()
	raw, err := os.OpenFile(sf.Path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = raw.WriteAt(enc[:wal.StateSlotSize/2], int64(next.Seq%2)*wal.StateSlotSize)
	require.NoError(t, err)
	require.NoError(t, raw.Close())
	got, err := sf.Read()
	require.NoError(t, err)
	require.Equal(t, st, got, "the intact older slot wins over a torn newer one")
}

// A batch that fails right after rotating must not leave the committer writing into a segment
// that the next lock holder removes and re-creates under the same name.
func TestFailedRotationThenReuse(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{SegmentBytes: 1})
	a := mustOpen(t, dir, Config{SegmentBytes: 1}) // rotates before every commit
	b := mustOpen(t, dir, Config{SegmentBytes: 1})
	var failNext atomic.Bool
	armFaults(t, func(p faultPoint) error {
		if p == faultLogWrite && failNext.CompareAndSwap(true, false) {
			return errInjected
		}
		return nil
	}, nil, nil)
	bump := func(db *DB) error {
		_, _, err := update(context.Background(), db, func(tx *Tx) error { _, err := bumpPair(tx); return err })
		return err
	}
	require.NoError(t, bump(a))
	failNext.Store(true)
	require.ErrorIs(t, bump(a), errInjected) // rotated, then the append failed
	require.NoError(t, bump(b))              // recovery removes the empty segment; b re-creates it
	require.NoError(t, bump(a))
	require.NoError(t, bump(b))
	v, err := verifyPair(dir, 3, []int{4})
	require.NoError(t, err)
	require.Equal(t, 4, v)
}

// After a NoSync power cut that lost the log's tail but kept state, the store opens and carries
// on under a new lineage, and no process is stuck on ErrCorrupt.
func TestNoSyncPowerCutStartsNewLineage(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	db := mustOpen(t, dir, Config{NoSync: true})
	for i := 0; i < 5; i++ {
		_, _, err := update(context.Background(), db, func(tx *Tx) error { _, err := bumpPair(tx); return err })
		require.NoError(t, err)
	}
	before, err := db.state.Read()
	require.NoError(t, err)
	require.True(t, before.NoSync)
	require.NoError(t, db.Close())
	uncheckpoint(t, dir) // the power cut came before any checkpoint (which fsyncs the log first)
	// The power cut: the last two records never reached the disk; the kernel boot changes.
	data, err := os.ReadFile(seg1(dir))
	require.NoError(t, err)
	lines := bytes.SplitAfter(data, []byte("\n"))
	require.NoError(t, os.WriteFile(seg1(dir), bytes.Join(lines[:len(lines)-3], nil), 0o644))
	reboot(t)

	db2 := mustOpen(t, dir, Config{})
	v, err := verifyPair(dir, 0, []int{3})
	require.NoError(t, err)
	require.Equal(t, 3, v)
	tsn, _, err := update(context.Background(), db2, func(tx *Tx) error { _, err := bumpPair(tx); return err })
	require.NoError(t, err)
	require.Equal(t, pages.TSN(5), tsn, "TSNs continue from the log's end")
	after, err := db2.state.Read()
	require.NoError(t, err)
	require.NotEqual(t, before.Lineage, after.Lineage, "a rewound history gets a new lineage")
}

// With sync on, a log shorter than state is outside damage: ErrCorrupt, nothing rebuilt.
func TestShortLogWithSyncIsCorrupt(t *testing.T) {
	dir := t.TempDir()
	skipCheck(dir) // the damage stays: that is the point
	setupPair(t, dir, Config{})
	bumpN(t, dir, 3)
	uncheckpoint(t, dir)
	data, err := os.ReadFile(seg1(dir))
	require.NoError(t, err)
	lines := bytes.SplitAfter(data, []byte("\n"))
	short := bytes.Join(lines[:len(lines)-2], nil)
	require.NoError(t, os.WriteFile(seg1(dir), short, 0o644))
	_, err = Open(context.Background(), dir, Config{})
	require.ErrorIs(t, err, pages.ErrCorrupt)
	after, err := os.ReadFile(seg1(dir))
	require.NoError(t, err)
	require.Equal(t, short, after)
}

// A live handle follows a lineage change: new transactions read the new history; one begun on
// the old history cannot commit.
func TestLiveHandleFollowsLineageChange(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	a := mustOpen(t, dir, Config{})
	bumpN(t, dir, 2)
	old, err := a.Begin(context.Background(), true)
	require.NoError(t, err)
	_, err = bumpPair(old)
	require.NoError(t, err)
	// State destroyed; another handle rebuilds it (new lineage) and commits.
	require.NoError(t, os.WriteFile(filepath.Join(dir, pages.MetaDir, stateName), nil, 0o644))
	bumpN(t, dir, 1)
	err = old.Commit()
	require.ErrorIs(t, err, ErrConflict, "a snapshot of the old history cannot commit")
	var ce *ConflictError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "lineage", ce.Reason)
	require.NoError(t, view(context.Background(), a, func(tx *Tx) error {
		v, err := readInt(tx, "c", "page000001")
		require.NoError(t, err)
		require.Equal(t, 3, v)
		return nil
	}))
	_, _, err = update(context.Background(), a, func(tx *Tx) error { _, err := bumpPair(tx); return err })
	require.NoError(t, err)
	v, err := verifyPair(dir, 4, nil)
	require.NoError(t, err)
	require.Equal(t, 4, v)
}

// A power cut during a batch's fdatasync can keep the batch's later records on disk behind zeros
// where its first record was lost. After the reboot, a retried, byte-identical first record
// would end exactly where the stale second one starts, and continue its checksum chain: the
// first committer after a reboot must erase everything past state, not stop at the first zero.
func TestStaleRecordsBehindZerosAreErased(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		t.Run(fmt.Sprintf("nosync=%v", noSync), func(t *testing.T) { staleBehindZeros(t, noSync) })
	}
}

func staleBehindZeros(t *testing.T, noSync bool) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	bumpN(t, dir, 3)
	db := mustOpen(t, dir, Config{NoSync: noSync})
	before, err := db.state.Read()
	require.NoError(t, err)
	// The batch that will be "lost": two commits, R1 (pair -> 4) and R2 (pair -> 999).
	_, _, err = update(context.Background(), db, func(tx *Tx) error { _, err := bumpPair(tx); return err })
	require.NoError(t, err)
	mid, err := db.state.Read()
	require.NoError(t, err)
	_, _, err = update(context.Background(), db, func(tx *Tx) error {
		for _, p := range []string{"page000001", "page000002"} {
			if _, err := tx.ReadPage("c", p); err != nil {
				return err
			}
			if err := tx.UpdatePage("c", p, 999); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, db.Close())
	uncheckpoint(t, dir) // the cut came before a checkpoint (which fsyncs the log) could cover R1

	// The power cut: R1's bytes never reached the disk, R2's did, state still names 'before'.
	f, err := os.OpenFile(seg1(dir), os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(make([]byte, mid.Pos.Off-before.Pos.Off), before.Pos.Off)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	rolled := before
	rolled.NoSync = noSync // under NoSync, the reboot makes recovery rebuild (leniently) from the log
	rewindState(t, dir, rolled)
	reboot(t)

	// The retry: the same bump, byte for byte the lost R1; then one more commit.
	bumpN(t, dir, 2)
	v, err := verifyPair(dir, 3, []int{4, 5})
	require.NoError(t, err, "the stale 999 record must never be adopted")
	require.Equal(t, 5, v)
}

// Records are chained: a record is valid only right after the one it was written after.
func TestRecordChain(t *testing.T) {
	var b bytes.Buffer
	c1 := wal.FrameOps(&b, 1, 0, "", []byte(`[{"op":"create","ns":"a","inc":"i"}]`), 100)
	first := b.Len()
	wal.FrameOps(&b, 2, 0, "", []byte(`[{"op":"drop","ns":"a","inc":"i"}]`), c1)
	recs, bad := wal.ScanRecords(pages.JSON, b.Bytes(), logPos{Seg: 1, Chain: 100})
	require.NoError(t, bad)
	require.Len(t, recs, 2)
	_, bad = wal.ScanRecords(pages.JSON, b.Bytes(), logPos{Seg: 1, Chain: 101})
	require.ErrorIs(t, bad, wal.ErrBadRecord, "first record after the wrong predecessor")
	recs, bad = wal.ScanRecords(pages.JSON, b.Bytes()[first:], logPos{Seg: 1, Off: int64(first), Chain: 100})
	require.ErrorIs(t, bad, wal.ErrBadRecord, "second record without its predecessor")
	require.Empty(t, recs)
}

// A creator killed before publishing txtdb.json leaves a segment and a state file behind; the
// next opener creates the store anyway.
func TestCreatorKilledBeforePublishing(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir, Config{})
	require.NoError(t, db.Close())
	require.NoError(t, os.Remove(filepath.Join(dir, configName)))
	setupPair(t, dir, Config{})
	bumpN(t, dir, 1)
	v, err := verifyPair(dir, 0, []int{1})
	require.NoError(t, err)
	require.Equal(t, 1, v)
}

// With sync on, a power cut can leave an older state slot on disk while the log holds later,
// acknowledged commits. The first reader after the reboot must see them (it recovers first).
func TestRebootWithOldStateSlotShowsAcknowledged(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	db := mustOpen(t, dir, Config{})
	before, err := db.state.Read()
	require.NoError(t, err)
	require.NoError(t, db.Close())
	bumpN(t, dir, 2)            // acknowledged: their records were fdatasynced
	rewindState(t, dir, before) // the slot that "survived" names the older position
	reboot(t)

	reader := mustOpen(t, dir, Config{})
	require.NoError(t, view(context.Background(), reader, func(tx *Tx) error {
		v, err := readInt(tx, "c", "page000001")
		require.NoError(t, err)
		require.Equal(t, 2, v, "acknowledged commits visible to the first reader after a reboot")
		return nil
	}))
}

// A failed fsync of the state file after its slot landed (first NoSync state of a boot): the
// commit may be visible already, so it cannot be taken back: ErrCommitUnknown, handle broken.
func TestStateFsyncFailure(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	armFaults(t, func(p faultPoint) error {
		if p == faultStateSync {
			return errInjected
		}
		return nil
	}, nil, nil)
	db := mustOpen(t, dir, Config{NoSync: true})
	_, _, err := update(context.Background(), db, func(tx *Tx) error { _, err := bumpPair(tx); return err })
	require.ErrorIs(t, err, ErrCommitUnknown)
	_, err = db.Begin(context.Background(), false)
	require.ErrorIs(t, err, ErrBroken)
	armFaults(t, nil, nil, nil)
	v, err := verifyPair(dir, 0, []int{1})
	require.NoError(t, err)
	require.Equal(t, 1, v, "the commit whose state landed is there")
}

// A segment that cannot grow (a full disk) fails the commit cleanly; the handle carries on.
func TestGrowthFailureIsClean(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{SegmentBytes: 4096})
	var fail atomic.Bool
	armFaults(t, func(p faultPoint) error {
		if p == faultLogGrow && fail.Load() {
			return errInjected
		}
		return nil
	}, nil, nil)
	db := mustOpen(t, dir, Config{testSegmentBytes: 1 << 40}) // never rotates: must grow
	fail.Store(true)
	var clean int
	for i := 0; i < 40 && clean == 0; i++ {
		_, _, err := update(context.Background(), db, func(tx *Tx) error { _, err := bumpPair(tx); return err })
		if err != nil {
			require.ErrorIs(t, err, errInjected)
			require.NotErrorIs(t, err, ErrCommitUnknown)
			clean++
		}
	}
	require.Equal(t, 1, clean, "the commit that needed to grow the segment failed")
	fail.Store(false)
	_, _, err := update(context.Background(), db, func(tx *Tx) error { _, err := bumpPair(tx); return err })
	require.NoError(t, err, "the handle carries on")
}

// A process killed while publishing a segment leaves lockfs.WriteFile's temporary file in the
// log directory. Rotation, the slow recovery path and store creation remove such leftovers
// (only the commit lock holder writes there); the data stay.
func TestSegmentTempLeftoversRemoved(t *testing.T) {
	plant := func(t *testing.T, dir string, seg pages.TSN) string {
		t.Helper()
		logDir := filepath.Join(dir, pages.MetaDir, logDirName)
		require.NoError(t, os.MkdirAll(logDir, 0o755))
		path := filepath.Join(logDir, "."+wal.SegName(seg)+".tmp-0123456789abcdef")
		require.NoError(t, os.WriteFile(path, []byte("half a segment"), 0o644))
		return path
	}
	t.Run("rotation", func(t *testing.T) {
		dir := t.TempDir()
		setupPair(t, dir, Config{})
		tmp := plant(t, dir, stateOf(t, dir).TSN+1)
		db := mustOpen(t, dir, Config{})
		_, _, err := update(context.Background(), db, func(tx *Tx) error { _, err := bumpPair(tx); return err })
		require.NoError(t, err)
		require.FileExists(t, tmp, "no rotation yet: the leftover stays")
		rot := mustOpen(t, dir, Config{testSegmentBytes: 1}) // rotates before its commit
		_, _, err = update(context.Background(), rot, func(tx *Tx) error { _, err := bumpPair(tx); return err })
		require.NoError(t, err)
		require.NoFileExists(t, tmp)
		segs, err := wal.ListSegments(filepath.Join(dir, pages.MetaDir, logDirName))
		require.NoError(t, err)
		require.Len(t, segs, 2, "the commit rotated")
		v, err := verifyPair(dir, 0, []int{1, 2})
		require.NoError(t, err)
		require.Equal(t, 2, v)
	})
	t.Run("slow recovery", func(t *testing.T) {
		dir := t.TempDir()
		setupPair(t, dir, Config{})
		bumpN(t, dir, 2)
		tmp := plant(t, dir, stateOf(t, dir).TSN+1)
		mustOpen(t, dir, Config{}) // same boot: fast path, nothing removed
		require.FileExists(t, tmp)
		mustOpen(t, dir, withBoot(Config{}, "rebooted")) // state from another boot: slow path
		require.NoFileExists(t, tmp)
		v, err := verifyPair(dir, 0, []int{1, 2})
		require.NoError(t, err)
		require.Equal(t, 2, v)
	})
	t.Run("creation", func(t *testing.T) {
		dir := t.TempDir()
		tmp := plant(t, dir, 1) // a creator killed while publishing segment 1
		setupPair(t, dir, Config{})
		require.NoFileExists(t, tmp)
		v, err := verifyPair(dir, 0, nil)
		require.NoError(t, err)
		require.Equal(t, 0, v)
	})
}

// A lenient rebuild (NoSync state after a reboot) that would end below the checkpoint TSN is
// ErrCorrupt, never a cut: page files of those TSNs exist, so the log lost durable records.
func TestLenientRebuildBelowCheckpointIsCorrupt(t *testing.T) {
	dir := t.TempDir()
	skipCheck(dir) // damaged on purpose
	ctx := context.Background()
	setupPair(t, dir, Config{})
	db := mustOpen(t, dir, Config{NoSync: true, CheckpointEvery: time.Hour})
	for range 4 {
		_, _, err := update(ctx, db, func(tx *Tx) error { _, err := bumpPair(tx); return err })
		require.NoError(t, err)
	}
	require.NoError(t, db.Checkpoint(ctx))
	// Keep the handle's last close from writing anything more: the damage comes after.
	data, err := os.ReadFile(seg1(dir))
	require.NoError(t, err)
	lines := bytes.SplitAfter(data, []byte("\n"))
	cut := bytes.Join(lines[:len(lines)-3], nil) // the last two records (and the zeros) gone
	reboot(t)
	require.NoError(t, os.WriteFile(seg1(dir), cut, 0o644))
	before := snapshotFiles(t, dir)
	_, err = Open(ctx, dir, Config{NoSync: true})
	require.ErrorIs(t, err, pages.ErrCorrupt)
	require.Contains(t, err.Error(), "below the checkpoint")
	require.Equal(t, before, snapshotFiles(t, dir), "nothing changed")
}
