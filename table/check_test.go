package table

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb"
)

// plantRow is the row of the planted-violation tests.
type plantRow struct {
	ID    int64  `json:"id"`
	Email string `json:"email"`
	Team  string `json:"team"`
}

const plantNS = "plant.rows"

// plantStore makes a store holding a table of 100 rows with a unique and a secondary index, in
// nodes small enough that every tree has several leaves, and checks that Check finds nothing.
func plantStore(t *testing.T) *txtdb.DB {
	t.Helper()
	ctx := context.Background()
	db, err := txtdb.Open(t.TempDir(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	tbl := New(plantNS, func(r *plantRow) int64 { return r.ID })
	Unique(tbl, "email", func(r *plantRow) string { return r.Email })
	Index(tbl, "team", func(r *plantRow) string { return r.Team })
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return tbl.Create(tx) }))
	shrink(t, db, plantNS, 512)
	for i := range 100 {
		require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error {
			return tbl.Insert(tx, &plantRow{ID: int64(i + 1), Email: fmt.Sprintf("u%02d@example.com", i+1), Team: fmt.Sprintf("t%d", i%3)})
		}))
	}
	require.NoError(t, db.View(ctx, func(tx *txtdb.Tx) error {
		for _, root := range rawRoots(t, tx) {
			require.Greater(t, len(rawLeaves(t, tx, root)), 1, "tree %s has several leaves", root)
		}
		return nil
	}))
	probs, err := Check(ctx, db)
	require.NoError(t, err)
	require.Empty(t, probs, "Check on the unplanted store")
	return db
}

// The helpers below read and write a table's pages with plain txtdb calls, as the format
// (docs/FORMAT.md, tree.go) describes them, and decode objects as generic maps.

// rawObjs reads a page's objects as maps (numbers as json.Number).
func rawObjs(t *testing.T, tx *txtdb.Tx, id string) []map[string]any {
	t.Helper()
	objs, err := tx.ReadPage(plantNS, id)
	require.NoError(t, err)
	out := make([]map[string]any, len(objs))
	for i, o := range objs {
		require.NoError(t, o.Decode(&out[i]), "%s object %d", id, i)
	}
	return out
}

// rawRoots returns the root pages named by the schema: "" for the rows, then by index name.
func rawRoots(t *testing.T, tx *txtdb.Tx) map[string]string {
	t.Helper()
	doc := rawObjs(t, tx, "page000001")[0]
	roots := map[string]string{"": doc["root"].(string)}
	for _, ix := range doc["indexes"].([]any) {
		m := ix.(map[string]any)
		roots[m["name"].(string)] = m["root"].(string)
	}
	return roots
}

// rawLeaves returns a tree's leaves in key order, walking the inner nodes.
func rawLeaves(t *testing.T, tx *txtdb.Tx, root string) []string {
	t.Helper()
	objs := rawObjs(t, tx, root)
	if objs[0]["node"] == "leaf" {
		return []string{root}
	}
	var out []string
	for _, c := range objs[1:] {
		out = append(out, rawLeaves(t, tx, c["child"].(string))...)
	}
	return out
}

// rawParentOfFirstLeaf returns the inner node whose first child is the tree's first leaf.
func rawParentOfFirstLeaf(t *testing.T, tx *txtdb.Tx, root string) string {
	t.Helper()
	for id := root; ; {
		first := rawObjs(t, tx, id)[1]["child"].(string)
		if rawObjs(t, tx, first)[0]["node"] == "leaf" {
			return id
		}
		id = first
	}
}

// rawWrite replaces a page's objects (read first in tx).
func rawWrite(t *testing.T, tx *txtdb.Tx, id string, objs []map[string]any) {
	t.Helper()
	vals := make([]any, len(objs))
	for i, o := range objs {
		vals[i] = o
	}
	require.NoError(t, tx.UpdatePage(plantNS, id, vals...))
}

// rawFind returns the leaf and the position in it of the entry of a tree whose field equals v
// ("key" or "pk", compared as text).
func rawFind(t *testing.T, tx *txtdb.Tx, root, field string, v any) (string, int) {
	t.Helper()
	for _, id := range rawLeaves(t, tx, root) {
		for i, o := range rawObjs(t, tx, id) {
			if i > 0 && fmt.Sprint(o[field]) == fmt.Sprint(v) {
				return id, i
			}
		}
	}
	t.Fatalf("no entry with %s %v in tree %s", field, v, root)
	return "", 0
}

// rawEdit edits one page's objects in place.
func rawEdit(t *testing.T, tx *txtdb.Tx, id string, edit func(objs []map[string]any) []map[string]any) {
	t.Helper()
	rawWrite(t, tx, id, edit(rawObjs(t, tx, id)))
}

// Check reports each violation planted with raw page writes, as ErrInconsistent or ErrSchema
// naming a page of the table, and nothing on the store before the planting.
func TestCheckFindsPlanted(t *testing.T) {
	tests := []struct {
		name  string
		plant func(t *testing.T, tx *txtdb.Tx)
		want  string // a part of the message of one of the problems
		is    error  // which that problem matches
	}{
		{"index entry without its row", func(t *testing.T, tx *txtdb.Tx) {
			leaf := rawLeaves(t, tx, rawRoots(t, tx)["email"])[0] // the first leaf: "a..." sorts first
			rawEdit(t, tx, leaf, func(objs []map[string]any) []map[string]any {
				return append(objs, map[string]any{"key": "a-ghost@example.com", "pk": 999})
			})
		}, "which does not exist", ErrInconsistent},
		{"row without its index entry", func(t *testing.T, tx *txtdb.Tx) {
			leaf, i := rawFind(t, tx, rawRoots(t, tx)["team"], "pk", 7)
			rawEdit(t, tx, leaf, func(objs []map[string]any) []map[string]any { return slices.Delete(objs, i, i+1) })
		}, "index team has 99 entries for 100 rows", ErrInconsistent},
		{"recorded index value differs from the entry", func(t *testing.T, tx *txtdb.Tx) {
			leaf, i := rawFind(t, tx, rawRoots(t, tx)[""], "key", 7)
			rawEdit(t, tx, leaf, func(objs []map[string]any) []map[string]any {
				objs[i]["ix"].(map[string]any)["email"] = "other@example.com"
				return objs
			})
		}, "whose value differs", ErrInconsistent},
		{"key outside its leaf", func(t *testing.T, tx *txtdb.Tx) {
			leaves := rawLeaves(t, tx, rawRoots(t, tx)[""])
			second := rawObjs(t, tx, leaves[1])
			moved := second[1]
			rawWrite(t, tx, leaves[1], slices.Delete(second, 1, 2))
			rawEdit(t, tx, leaves[0], func(objs []map[string]any) []map[string]any { return append(objs, moved) })
		}, "outside the leaf's range", ErrInconsistent},
		{"leaves out of order", func(t *testing.T, tx *txtdb.Tx) {
			parent := rawParentOfFirstLeaf(t, tx, rawRoots(t, tx)[""])
			rawEdit(t, tx, parent, func(objs []map[string]any) []map[string]any {
				objs[1]["child"], objs[2]["child"] = objs[2]["child"], objs[1]["child"]
				return objs
			})
		}, "its parent gives", ErrInconsistent},
		{"leaf chain out of order", func(t *testing.T, tx *txtdb.Tx) {
			leaves := rawLeaves(t, tx, rawRoots(t, tx)["team"])
			rawEdit(t, tx, leaves[0], func(objs []map[string]any) []map[string]any {
				objs[0]["next"] = leaves[len(leaves)-1]
				return objs
			})
		}, "next leaf", ErrInconsistent},
		{"duplicate unique value", func(t *testing.T, tx *txtdb.Tx) {
			roots := rawRoots(t, tx)
			leaf, i := rawFind(t, tx, roots[""], "key", 8)
			rawEdit(t, tx, leaf, func(objs []map[string]any) []map[string]any {
				objs[i]["row"].(map[string]any)["email"] = "u07@example.com"
				objs[i]["ix"].(map[string]any)["email"] = "u07@example.com"
				return objs
			})
			ileaf, j := rawFind(t, tx, roots["email"], "pk", 8)
			rawEdit(t, tx, ileaf, func(objs []map[string]any) []map[string]any { return slices.Delete(objs, j, j+1) })
		}, "have the same value of unique index email", ErrInconsistent},
		{"row without a value for an index", func(t *testing.T, tx *txtdb.Tx) {
			leaf, i := rawFind(t, tx, rawRoots(t, tx)[""], "key", 9)
			rawEdit(t, tx, leaf, func(objs []map[string]any) []map[string]any {
				delete(objs[i]["ix"].(map[string]any), "team")
				return objs
			})
		}, "has no value for index team", ErrInconsistent},
		{"node page missing", func(t *testing.T, tx *txtdb.Tx) {
			leaves := rawLeaves(t, tx, rawRoots(t, tx)["email"])
			require.NoError(t, tx.DeletePage(plantNS, leaves[len(leaves)-1]))
		}, "node page missing", ErrSchema},
		{"node without a header", func(t *testing.T, tx *txtdb.Tx) {
			leaf := rawLeaves(t, tx, rawRoots(t, tx)[""])[1]
			rawEdit(t, tx, leaf, func(objs []map[string]any) []map[string]any { return objs[1:] })
		}, "no node header", ErrSchema},
		{"index entry of the wrong type", func(t *testing.T, tx *txtdb.Tx) {
			leaf, i := rawFind(t, tx, rawRoots(t, tx)["email"], "pk", 5)
			rawEdit(t, tx, leaf, func(objs []map[string]any) []map[string]any {
				objs[i]["pk"] = "5"
				return objs
			})
		}, "is not a int64", ErrSchema},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := plantStore(t)
			require.NoError(t, db.Update(context.Background(), func(tx *txtdb.Tx) error {
				tt.plant(t, tx)
				return nil
			}))
			probs, err := Check(context.Background(), db)
			require.NoError(t, err)
			require.NotEmpty(t, probs, "Check after planting %s", tt.name)
			found := false
			for _, p := range probs {
				t.Logf("%s: %v", p.Path, p.Err)
				require.True(t, errors.Is(p.Err, ErrInconsistent) || errors.Is(p.Err, ErrSchema), "problem %s: %v matches neither ErrInconsistent nor ErrSchema", p.Path, p.Err)
				require.True(t, strings.HasPrefix(p.Path, "plant/rows/page"), "problem path %q names a page of the table", p.Path)
				require.NotContains(t, p.Err.Error(), "disagree: txtdb/table:", "problem %s: %v says what it is once", p.Path, p.Err)
				if strings.Contains(p.Err.Error(), tt.want) {
					found = true
					require.ErrorIs(t, p.Err, tt.is, "problem %s: %v", p.Path, p.Err)
				}
			}
			require.True(t, found, "no problem says %q", tt.want)
		})
	}
}

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
