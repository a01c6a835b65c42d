package txn

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

// armRecovery installs the recovery observers for one test and removes them afterwards.
func armRecovery(t *testing.T, recovered func(db *DB, slow bool), repaired func(db *DB)) {
	t.Helper()
	faults.recovered.Store(ptrOrNil(recovered))
	faults.repaired.Store(ptrOrNil(repaired))
	t.Cleanup(func() {
		faults.recovered.Store(nil)
		faults.repaired.Store(nil)
	})
}

// withBoot returns cfg for a handle that runs under the given boot id.
func withBoot(cfg Config, boot string) Config {
	cfg.boot = &boot
	return cfg
}

// Two live handles whose boot ids differ: a state one of them wrote never sends the other
// through the commit lock again once it has recovered, a commit by one never sends the other's
// commits off recovery's fast path, and no Begin ever hands out a transaction without an index.
func TestBootMismatchBetweenLiveHandles(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	a := mustOpen(t, dir, withBoot(Config{}, "boot-a"))
	b := mustOpen(t, dir, withBoot(Config{}, "boot-b"))
	bump := func(db *DB) int {
		t.Helper()
		var v int
		_, _, err := update(context.Background(), db, func(tx *Tx) error {
			var err error
			v, err = bumpPair(tx)
			return err
		})
		require.NoError(t, err)
		return v
	}
	read := func(db *DB) int {
		t.Helper()
		tx, err := db.Begin(context.Background(), false)
		require.NoError(t, err)
		require.NotNil(t, tx.idx, "Begin handed out a transaction without an index")
		defer func() { _ = tx.Rollback() }()
		v, err := readInt(tx, "c", "page000001")
		require.NoError(t, err)
		return v
	}

	var (
		lockedBegins, slow, fast atomic.Int64
		interleaved              atomic.Bool
	)
	armRecovery(t, func(_ *DB, s bool) {
		if s {
			slow.Add(1)
		} else {
			fast.Add(1)
		}
	}, func(db *DB) {
		lockedBegins.Add(1)
		// Between b's repair and its next read of state, a commits (writing its own boot id):
		// the window in which b used to find a state that still "needed repair".
		if db == b && interleaved.CompareAndSwap(false, true) {
			bump(a)
		}
	})

	want := 0
	want = bump(a)
	require.Equal(t, want, read(b))
	want = bump(b)
	require.Equal(t, want, read(a))

	// Steady state: both handles have recovered once since they started.
	lockedBegins.Store(0)
	slow.Store(0)
	fast.Store(0)
	const rounds = 20
	for i := 0; i < rounds; i++ {
		want = bump(a)
		require.Equal(t, want, read(b))
		require.Equal(t, want, read(a))
		want = bump(b)
		require.Equal(t, want, read(a))
		require.Equal(t, want, read(b))
	}
	require.Zero(t, lockedBegins.Load(), "Begin took the commit lock in steady state")
	require.Zero(t, slow.Load(), "a commit left recovery's fast path in steady state")
	require.Equal(t, int64(2*rounds), fast.Load(), "every commit recovered on the fast path")
	v, err := verifyPair(dir, 0, []int{want})
	require.NoError(t, err)
	require.Equal(t, want, v)
}

// bumpWith commits n increments of the pair through a fresh handle opened with cfg.
func bumpWith(t *testing.T, dir string, cfg Config, n int) {
	t.Helper()
	db := mustOpen(t, dir, cfg)
	for i := 0; i < n; i++ {
		_, _, err := update(context.Background(), db, func(tx *Tx) error { _, err := bumpPair(tx); return err })
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())
}

// Where the host gives no boot signal (an empty boot id), a reboot cannot be told from a
// restart: every handle recovers on the slow path first, as after a reboot. After a power cut
// that kept an older state slot, the first reader still sees every acknowledged commit.
func TestNoBootSignalRecoversFirst(t *testing.T) {
	dir := t.TempDir()
	none := withBoot(Config{}, "")
	setupPair(t, dir, none)
	before := stateOf(t, dir)
	bumpWith(t, dir, none, 2)   // acknowledged: their records were fdatasynced
	rewindState(t, dir, before) // the slot that "survived" names the older position
	require.Empty(t, stateOf(t, dir).Boot)

	var slow atomic.Int64
	armRecovery(t, func(_ *DB, s bool) {
		if s {
			slow.Add(1)
		}
	}, nil)
	reader := mustOpen(t, dir, none)
	require.NoError(t, view(context.Background(), reader, func(tx *Tx) error {
		v, err := readInt(tx, "c", "page000001")
		require.NoError(t, err)
		require.Equal(t, 2, v, "acknowledged commits visible to the first reader")
		return nil
	}))
	require.Equal(t, int64(1), slow.Load(), "one slow recovery, at Open")
}

// With no boot signal, a NoSync store starts a new lineage when a handle recovers with no other
// process alive (a power cut may have cost the log its unsynced tail, and nobody alive can have
// seen it); with a live peer it does not (the peer wrote that state in this boot).
func TestNoBootSignalNoSyncNewLineageWhenAlone(t *testing.T) {
	dir := t.TempDir()
	none := withBoot(Config{NoSync: true}, "")
	setupPair(t, dir, none)
	bumpWith(t, dir, none, 2)
	before := stateOf(t, dir)
	require.True(t, before.NoSync)

	peer := mustOpen(t, dir, none) // recovers alone at Open: a new lineage
	mid := stateOf(t, dir)
	require.NotEqual(t, before.Lineage, mid.Lineage, "alone after a possible power cut: new lineage")
	second := mustOpen(t, dir, none) // the peer is alive: nothing to start anew
	_, _, err := update(context.Background(), second, func(tx *Tx) error { _, err := bumpPair(tx); return err })
	require.NoError(t, err)
	require.Equal(t, mid.Lineage, stateOf(t, dir).Lineage, "a live peer: same lineage")
	require.NoError(t, second.Close())
	require.NoError(t, peer.Close())

	alone := mustOpen(t, dir, none)
	_, _, err = update(context.Background(), alone, func(tx *Tx) error { _, err := bumpPair(tx); return err })
	require.NoError(t, err)
	require.NotEqual(t, mid.Lineage, stateOf(t, dir).Lineage, "alone again: new lineage")
	v, err := verifyPair(dir, 0, []int{4})
	require.NoError(t, err)
	require.Equal(t, 4, v, "nothing durable was lost")
}

// A cut the boot id does not record (a virtual machine restored under a live host, a FUSE
// daemon that lost its cache) can leave an old state slot behind acknowledged, fsynced records.
// A new handle of the same boot must not trust that slot: it finds records past it and recovers
// first, so its first read sees every acknowledged commit. Without the check it read the old TSN.
func TestSameBootStaleStateRecovered(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	cfg := withBoot(Config{CheckpointEvery: time.Hour}, "one-boot")
	w := mustOpen(t, dir, cfg)
	bump := func() int {
		t.Helper()
		var v int
		_, _, err := update(context.Background(), w, func(tx *Tx) error {
			var err error
			v, err = bumpPair(tx)
			return err
		})
		require.NoError(t, err)
		return v
	}
	bump()
	statePath := filepath.Join(dir, pages.MetaDir, stateName)
	old, err := os.ReadFile(statePath)
	require.NoError(t, err)
	var want int
	for range 3 {
		want = bump()
	}
	require.NoError(t, os.WriteFile(statePath, old, 0o644)) // the cut kept the old slots only

	r := mustOpen(t, dir, cfg)
	tx, err := r.Begin(context.Background(), false)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	got, err := readInt(tx, "c", "page000001")
	require.NoError(t, err)
	require.Equal(t, want, got, "the first read of a new handle of the same boot after a stale state slot")
}
