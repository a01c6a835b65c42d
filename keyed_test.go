package txtdb

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// NewPage in a namespace the transaction created numbers pages from page000001; AppendPage adds
// to them and ReadPageKey reads them back; bad keys are ErrInvalidKey.
func TestKeyedPagesAPI(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir, nil)
	ctx := context.Background()
	require.NoError(t, db.Update(ctx, func(tx *Tx) error {
		require.NoError(t, tx.CreateNamespace("leaves"))
		for i, want := range []string{"page000001", "page000002", "page000003"} {
			id, err := tx.NewPage("leaves", item{N: i})
			require.NoError(t, err, "NewPage #%d", i)
			require.Equal(t, want, id, "NewPage #%d", i)
		}
		id, err := tx.NewPage("leaves")
		require.NoError(t, err, "NewPage with no objects")
		require.Equal(t, "page000004", id)
		return nil
	}))
	require.NoError(t, db.Update(ctx, func(tx *Tx) error {
		require.NoError(t, tx.AppendPage("leaves", "page000001", "k1", item{N: 10}))
		require.NoError(t, tx.AppendPage("leaves", "page000004", "k2", item{N: 11}, item{N: 12}))
		require.ErrorIs(t, tx.AppendPage("leaves", "page000001", "", item{N: 1}), ErrInvalidKey)
		require.ErrorIs(t, tx.AppendPage("leaves", "page000099", "k", item{N: 1}), ErrNotFound)
		_, err := tx.ReadPageKey("leaves", "page000001", "")
		require.ErrorIs(t, err, ErrInvalidKey)
		_, err = tx.ReadPageKey("leaves", "page000001", "\xff")
		require.ErrorIs(t, err, ErrInvalidKey)
		return nil
	}))
	require.NoError(t, db.View(ctx, func(tx *Tx) error {
		objs, err := tx.ReadPageKey("leaves", "page000001", "k1")
		require.NoError(t, err)
		require.Equal(t, []int{0, 10}, values(t, objs...))
		objs, err = tx.ReadPage("leaves", "page000004")
		require.NoError(t, err)
		require.Equal(t, []int{11, 12}, values(t, objs...))
		_, err = tx.ReadPageKey("leaves", "page000099", "k")
		require.ErrorIs(t, err, ErrNotFound)
		return nil
	}))
}

// Through the root API, on two handles of one store (standing in for two processes): keyed
// appends under different keys from one snapshot both land in commit order; under one key the
// second fails with ErrConflict and a ConflictError naming the key, under both isolation levels;
// a keyed read depends only on its key under Serializable.
func TestKeyedConflicts(t *testing.T) {
	ctx := context.Background()
	for _, iso := range []Isolation{Serializable, Snapshot} {
		t.Run(iso.String(), func(t *testing.T) {
			dir := t.TempDir()
			dbs := openN(t, dir, 2, &Options{Isolation: iso})
			var leaf string
			require.NoError(t, dbs[0].Update(ctx, func(tx *Tx) error {
				if err := tx.CreateNamespace("tbl"); err != nil {
					return err
				}
				var err error
				leaf, err = tx.NewPage("tbl")
				return err
			}))
			require.Equal(t, "page000001", leaf)

			t1, t2 := mustBegin(t, dbs[0], true), mustBegin(t, dbs[1], true)
			require.NoError(t, t1.AppendPage("tbl", leaf, "a", item{N: 1}))
			require.NoError(t, t2.AppendPage("tbl", leaf, "b", item{N: 2}))
			require.NoError(t, t2.Commit())
			require.NoError(t, t1.Commit(), "keyed appends under different keys do not conflict")
			objs, err := mustBegin(t, dbs[0], false).ReadPage("tbl", leaf)
			require.NoError(t, err)
			require.Equal(t, []int{2, 1}, []int{values(t, objs[0])[0], values(t, objs[1])[0]}, "commit order")

			t1, t2 = mustBegin(t, dbs[0], true), mustBegin(t, dbs[1], true)
			snap := t1.Snapshot()
			require.NoError(t, t1.AppendPage("tbl", leaf, "c", item{N: 3}))
			require.NoError(t, t2.AppendPage("tbl", leaf, "c", item{N: 4}))
			require.NoError(t, t2.Commit())
			ce := conflictOf(t, t1.Commit(), snap)
			require.Equal(t, "c", ce.Key)
			require.ErrorContains(t, ce, `key "c"`)

			// ReadPageKey("d") and a write elsewhere, against a concurrent keyed append under "d".
			other := seedPages(t, dir, "other", 0)[0]
			reader, appender := mustBegin(t, dbs[0], true), mustBegin(t, dbs[1], true)
			snap = reader.Snapshot()
			_, err = reader.ReadPageKey("tbl", leaf, "d")
			require.NoError(t, err)
			require.NoError(t, incr(reader, "other", other))
			require.NoError(t, appender.AppendPage("tbl", leaf, "d", item{N: 5}))
			require.NoError(t, appender.Commit())
			if err := reader.Commit(); iso == Serializable {
				require.Equal(t, "d", conflictOf(t, err, snap).Key)
			} else {
				require.NoError(t, err, "Snapshot isolation validates no reads")
			}
		})
	}
}
