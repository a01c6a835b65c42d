package txtdb

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// PeekPage reads like ReadPage but records no dependency: a page changed by another handle after
// the snapshot makes a ReadPage of it conflict, a PeekPage of it does not; a peeked page is not
// read for UpdatePage (ErrNotRead); a missing page is ErrNotFound; the transaction's own writes
// show.
func TestPeekPage(t *testing.T) {
	dir := t.TempDir()
	dbs := openN(t, dir, 2, nil)
	ctx := context.Background()
	ids := seedPages(t, dir, "p", 1, 2)
	for _, peek := range []bool{true, false} {
		tx := mustBegin(t, dbs[0], true)
		var objs []Object
		var err error
		if peek {
			objs, err = tx.PeekPage("p", ids[0])
		} else {
			objs, err = tx.ReadPage("p", ids[0])
		}
		require.NoError(t, err)
		require.NotEmpty(t, objs)
		// Another handle changes the page after the snapshot.
		require.NoError(t, dbs[1].Update(ctx, func(tx2 *Tx) error {
			objs, err := tx2.ReadPage("p", ids[0])
			if err != nil {
				return err
			}
			return tx2.UpdatePage("p", ids[0], objs[0], objs[0])
		}))
		// This transaction writes elsewhere and commits.
		other, err := tx.ReadPage("p", ids[1])
		require.NoError(t, err)
		require.NoError(t, tx.UpdatePage("p", ids[1], other[0], other[0]))
		if peek {
			require.NoError(t, tx.Commit(), "a peeked page is no dependency")
		} else {
			require.ErrorIs(t, tx.Commit(), ErrConflict, "a read page is")
		}
	}
	require.NoError(t, dbs[0].Update(ctx, func(tx *Tx) error {
		objs, err := tx.PeekPage("p", ids[0])
		require.NoError(t, err)
		require.ErrorIs(t, tx.UpdatePage("p", ids[0], objs[0]), ErrNotRead)
		_, err = tx.PeekPage("p", "page999999")
		require.ErrorIs(t, err, ErrNotFound)
		id, err := tx.NewPage("p", item{N: 7})
		require.NoError(t, err)
		objs, err = tx.PeekPage("p", id)
		require.NoError(t, err)
		require.Equal(t, []int{7}, values(t, objs...))
		grown := append(objs, objs[0]) // appending to the returned slice copies it
		require.Len(t, grown, 2)
		mine, err := tx.PeekPage("p", id)
		require.NoError(t, err)
		require.Len(t, mine, 1)
		return nil
	}))
}
