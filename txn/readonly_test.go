package txn

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

// A read-only handle writes nothing: opening it, reading everything, Stats, Check and Close
// leave every file and folder of the directory (.txtdb/ included) byte for byte as it was, also
// on a store whose log runs past its checkpoint and whose last writer died.
func TestReadOnlyWritesNothing(t *testing.T) {
	ctx := context.Background()
	live := t.TempDir()
	buildCheckStore(t, live, pages.JSON)
	w := mustOpen(t, live, Config{CheckpointEvery: time.Hour})
	for i := 0; i < 3; i++ {
		_, _, err := update(ctx, w, func(tx *Tx) error { _, err := tx.Insert("app.users", i); return err })
		require.NoError(t, err)
	}
	// A copy taken while the writer is open: commits past the checkpoint, a dead registry entry.
	dir := t.TempDir()
	copyTree(t, live, dir)
	require.Positive(t, w.Stats().CheckpointLag)

	for _, d := range []string{dir, live} {
		before := snapshotTree(t, d)
		ro, err := Open(ctx, d, Config{ReadOnly: true})
		require.NoError(t, err)
		_, err = ro.Begin(ctx, true)
		require.ErrorIs(t, err, ErrReadOnlyDB)
		require.ErrorIs(t, ro.Checkpoint(ctx), ErrReadOnlyDB)
		require.NoError(t, view(ctx, ro, func(tx *Tx) error {
			names, err := tx.Namespaces()
			require.NoError(t, err)
			require.NotEmpty(t, names)
			for _, ns := range names {
				pgs, err := tx.Match(ns, "*")
				require.NoError(t, err, "Match(%q)", ns)
				require.NotEmpty(t, pgs, "namespace %s", ns)
			}
			return nil
		}))
		s := ro.Stats()
		require.Positive(t, s.CommittedTSN)
		probs, err := ro.Check(ctx)
		require.NoError(t, err)
		if d == live {
			require.Empty(t, probs, "%s", problemLines(probs))
		} else { // the copy holds the registry entry of a writer that is not alive there
			require.Len(t, probs, 1, "%s", problemLines(probs))
			require.ErrorIs(t, probs[0], ErrLeftover)
		}
		require.NoError(t, ro.Close())
		_, err = CheckDir(ctx, d)
		require.NoError(t, err)
		require.Equal(t, before, snapshotTree(t, d), "the read-only handle changed %s", d)
	}

	// A read-only open of a directory that is not a store creates nothing.
	missing := filepath.Join(t.TempDir(), "none")
	_, err := Open(ctx, missing, Config{ReadOnly: true})
	require.Error(t, err)
	_, err = os.Stat(missing)
	require.ErrorIs(t, err, os.ErrNotExist)
}
