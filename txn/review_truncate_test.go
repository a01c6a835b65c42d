package txn

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

// Files that a live handle reads from a shared mapping (wal.MappedFile: state, horizon, the
// board's slots file and each slot's outcome region; wakeWord: a slot's wake word) may be cut
// short by something else while they are mapped. A read of a page past the file's end then
// raises SIGBUS; the handle must neither die of it nor lose or duplicate a commit: here each file
// is truncated to zero under live handles while b's commit is offered to holder a, and every
// commit lands exactly once.
func TestTruncatedUnderMapping(t *testing.T) {
	for _, file := range []string{"wake", "slots", "req", "horizon"} {
		t.Run(file, func(t *testing.T) { truncatedUnderMapping(t, file) })
	}
}

func truncatedUnderMapping(t *testing.T, file string) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	skipCheck(dir) // the board's files are left cut short on purpose
	a := mustOpen(t, dir, Config{OneObjectPerPage: true})
	b := mustOpen(t, dir, Config{OneObjectPerPage: true})
	ctx := context.Background()
	own := b.board.own
	if own.wake == nil {
		t.Skip("no futex wake on this host")
	}
	meta := filepath.Join(dir, pages.MetaDir)
	var cut string
	switch file {
	case "wake": // both the owner's mapping and the holder's (as after an earlier ding)
		cut = b.board.path(own.i, ".wake")
		p, err := a.board.peer(own.i)
		require.NoError(t, err)
		p.wake = mapWakeWord(cut, 0o644, true)
		require.NotNil(t, p.wake)
	case "slots":
		cut = filepath.Join(meta, boardDirName, boardFile)
		require.NotNil(t, a.board.m, "the slots file is mapped")
	case "req": // cut once b announced: the holder's mapping of b's outcome region faults
		cut = b.board.path(own.i, ".req")
		// One offered commit first, so that both mappings of b's req exist.
		locked := holdFirstGroup(t, a)
		bDone := make(chan error, 1)
		require.NoError(t, holderThenOfferer(a, b, locked, bDone))
		require.NoError(t, <-bDone)
		require.Equal(t, int64(1), b.Stats().Delegated)
	case "horizon":
		cut = filepath.Join(meta, horizonName)
		st, err := a.readState()
		require.NoError(t, err)
		require.NoError(t, a.horizon.publish(st.TSN, st.Lineage)) // seq 1: slot 1, the file is whole
		_, _, err = a.horizon.read()                              // maps it
		require.NoError(t, err)
	}

	locked := holdFirstGroup(t, a)
	prev := faults.offer.Load()
	off := func(db *DB) {
		if db == b && file == "req" {
			require.NoError(t, os.Truncate(cut, 0))
		}
		(*prev)(db)
	}
	faults.offer.Store(&off)
	if file != "req" {
		require.NoError(t, os.Truncate(cut, 0))
	}
	bDone := make(chan error, 1)
	require.NoError(t, holderThenOfferer(a, b, locked, bDone))
	require.NoError(t, <-bDone)
	faults.offer.Store(nil)
	faults.recovered.Store(nil)
	for range 2 { // and again, on whatever the cut left
		_, _, err := update(ctx, a, addTo("page000001", 1))
		require.NoError(t, err)
		_, _, err = update(ctx, b, addTo("page000002", 10))
		require.NoError(t, err)
	}
	want1, want2 := 3, 30
	if file == "req" {
		want1, want2 = 4, 40
	}
	require.NoError(t, view(ctx, b, func(tx *Tx) error {
		v1, err := readInt(tx, "c", "page000001")
		require.NoError(t, err)
		v2, err := readInt(tx, "c", "page000002")
		require.NoError(t, err)
		require.Equal(t, []int{want1, want2}, []int{v1, v2}, "each commit exactly once")
		return nil
	}))
}
