package txn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// Deleted pages are forgotten by the index once no snapshot of the process can read them; while
// one can, they stay readable to it.
func TestDeletedPagesAreSwept(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir, Config{OneObjectPerPage: true})
	var ids []string
	_, _, err := update(context.Background(), db, func(tx *Tx) error {
		if err := tx.CreateNamespace("d"); err != nil {
			return err
		}
		for i := 0; i < 50; i++ {
			id, err := tx.Insert("d", i)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	require.NoError(t, err)
	old, err := db.Begin(context.Background(), false) // pins the pages
	require.NoError(t, err)
	_, _, err = update(context.Background(), db, func(tx *Tx) error {
		for _, id := range ids {
			if _, err := tx.ReadPage("d", id); err != nil {
				return err
			}
			if err := tx.DeletePage("d", id); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	pagesHeld := func() int {
		x := db.idxp.Load()
		x.mu.RLock()
		defer x.mu.RUnlock()
		n := 0
		for _, in := range x.incs {
			n += len(in.pages)
		}
		return n
	}
	require.Equal(t, 50, pagesHeld(), "an open snapshot still reads them")
	objs, err := old.ReadPage("d", ids[7])
	require.NoError(t, err)
	var v int
	require.NoError(t, objs[0].Decode(&v))
	require.Equal(t, 7, v)
	require.NoError(t, old.Rollback())
	_, _, err = update(context.Background(), db, func(tx *Tx) error { return tx.CreateNamespace("e") })
	require.NoError(t, err)
	require.Equal(t, 50, pagesHeld(), "kept for foreignLag commits: another process's request may depend on them")
	for i := range foreignLag {
		_, _, err = update(context.Background(), db, func(tx *Tx) error { return tx.CreateNamespace(fmt.Sprintf("e%d", i)) })
		require.NoError(t, err)
	}
	require.Zero(t, pagesHeld(), "no snapshot can read them any more")
}

// Close while other goroutines begin transactions and another handle commits: no panic, and
// every failure is ErrClosed.
func TestCloseRacesBegin(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	writer := mustOpen(t, dir, Config{})
	for round := 0; round < 20; round++ {
		db, err := Open(context.Background(), dir, Config{})
		require.NoError(t, err)
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Go(func() {
				for i := 0; i < 50; i++ {
					tx, err := db.Begin(context.Background(), false)
					if err != nil {
						if !errors.Is(err, ErrClosed) {
							t.Errorf("Begin after Close = %v, want ErrClosed", err)
						}
						return
					}
					_, _ = readInt(tx, "c", "page000001")
					_ = tx.Rollback()
				}
			})
		}
		wg.Go(func() {
			_, _, _ = update(context.Background(), writer, func(tx *Tx) error { _, err := bumpPair(tx); return err })
		})
		require.NoError(t, db.Close())
		wg.Wait()
	}
}
