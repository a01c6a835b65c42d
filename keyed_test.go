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
