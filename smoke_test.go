package txtdb

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSmoke(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, nil)
	require.NoError(t, err)
	ctx := context.Background()
	var id string
	require.NoError(t, db.Update(ctx, func(tx *Tx) error {
		if err := tx.CreateNamespace("app.users"); err != nil {
			return err
		}
		id, err = tx.Insert("app.users", map[string]any{"name": "bob", "n": int64(1) << 60})
		return err
	}))
	require.NoError(t, db.View(ctx, func(tx *Tx) error {
		objs, err := tx.ReadPage("app.users", id)
		require.NoError(t, err)
		t.Logf("%s %v", id, objs)
		return nil
	}))
	require.NoError(t, db.Close())
	db2, err := Open(dir, nil)
	require.NoError(t, err)
	require.NoError(t, db2.View(ctx, func(tx *Tx) error {
		objs, err := tx.ReadPage("app.users", id)
		require.NoError(t, err)
		t.Logf("reopened %s %v", id, objs)
		return nil
	}))
	for i := 0; i < 5; i++ {
		require.NoError(t, db2.Update(ctx, func(tx *Tx) error {
			_, err := tx.Insert("app.users", map[string]any{"i": i})
			return err
		}))
	}
	require.NoError(t, db2.Close())
}
