package table

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb"
)

// A row entry without its index values is one problem, whose message names the sentinel once.
func TestCheckRowWithoutIndexValues(t *testing.T) {
	ctx := context.Background()
	db, err := txtdb.Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer db.Close()
	tbl := New("app.pairs", func(p *pair) string { return p.Name })
	Unique(tbl, "email", func(p *pair) string { return p.Email })
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error {
		if err := tbl.Create(tx); err != nil {
			return err
		}
		return tbl.Insert(tx, &pair{Name: "ann", Email: "ann@example.com"})
	}))
	var root string
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error {
		s, err := readSchema(tx, "app.pairs")
		if err != nil {
			return err
		}
		root = s.doc.Root
		enc, err := s.kt.enc("bob")
		if err != nil {
			return err
		}
		return tx.AppendPage("app.pairs", root, enc, map[string]any{"key": "bob", "row": pair{Name: "bob"}})
	}))
	probs, err := Check(ctx, db)
	require.NoError(t, err)
	require.Len(t, probs, 1)
	require.ErrorIs(t, probs[0], ErrInconsistent)
	require.Equal(t, "app/pairs/"+root+": txtdb/table: rows and indexes disagree: app.pairs: row 626f62. has no value for index email", probs[0].String())
}
