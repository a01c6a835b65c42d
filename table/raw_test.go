package table

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb"
)

type pair struct {
	Name  string `json:"name"`
	N     int64  `json:"n"`
	Email string `json:"email"`
}

// A composite key's string part must be a JSON string: null is no key (it used to read as the
// string "null").
func TestParseKeyNullPart(t *testing.T) {
	ctx := context.Background()
	db, err := txtdb.Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer db.Close()
	tbl := New("app.pairs", func(p *pair) Key2[string, int64] { return Key2[string, int64]{p.Name, p.N} })
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error {
		if err := tbl.Create(tx); err != nil {
			return err
		}
		return tbl.Insert(tx, &pair{Name: "null", N: 1})
	}))
	require.NoError(t, db.View(ctx, func(tx *txtdb.Tx) error {
		k, err := ParseKey(tx, "app.pairs", `["null", 1]`)
		require.NoError(t, err)
		require.Equal(t, []any{"null", int64(1)}, k)
		_, err = GetRaw(tx, "app.pairs", `["null", 1]`)
		require.NoError(t, err)
		for _, text := range []string{`[null, 1]`, `[ null , 1]`} {
			_, err = ParseKey(tx, "app.pairs", text)
			require.ErrorIs(t, err, ErrInvalidKey, text)
			_, err = GetRaw(tx, "app.pairs", text)
			require.ErrorIs(t, err, ErrInvalidKey, text)
		}
		return nil
	}))
}
