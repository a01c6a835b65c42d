package table

// Tests from the review of the right edge's multi-part split (6dc2e48): splitAt over planted
// trees of every shape near a parent split, fullCuts' parts, a randomized model that keeps the
// right edge busy, stale transactions against a multi-part split, and the parts' sizes.

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/pages"
)

type padRow struct {
	ID    int64  `json:"id"`
	Owner string `json:"owner,omitempty"`
	State string `json:"state,omitempty"`
	Pad   string `json:"pad,omitempty"`
}

const splitNS = "sr.rows"

// treeStats walks a tree: its leaves in order (id, size, number of entries) and its inner nodes.
type treeStats struct {
	leaves []*node
	inner  int
}

func statsOf(t *testing.T, db *txtdb.DB, ns string, pick func(*schema) *tree) treeStats {
	t.Helper()
	var st treeStats
	require.NoError(t, db.View(context.Background(), func(tx *txtdb.Tx) error {
		st = treeStats{}
		s, err := readSchema(tx, ns)
		if err != nil {
			return err
		}
		return pick(s).walk(tx, func(n *node, _ int) error {
			if n.hdr.Node == "leaf" {
				st.leaves = append(st.leaves, n)
			} else {
				st.inner++
			}
			return nil
		})
	}))
	return st
}

func primaryOf(s *schema) *tree { return s.primary }

func requireClean(t *testing.T, db *txtdb.DB) {
	t.Helper()
	probs, err := Check(context.Background(), db)
	require.NoError(t, err)
	require.Empty(t, probs)
}

// requireLeafShapes holds every leaf of a tree to what a split leaves behind: none past twice the
// limit unless it holds one entry or an entry past the limit, and (nonEmpty: no row was ever
// deleted) no empty leaf.
func requireLeafShapes(t *testing.T, st treeStats, limit int, nonEmpty bool) {
	t.Helper()
	for i, n := range st.leaves {
		if nonEmpty && len(st.leaves) > 1 {
			require.NotEmpty(t, n.ents, "leaf %d (%s) of %d is empty", i, n.id, len(st.leaves))
		}
		if len(n.ents) > 1 && n.size > 2*limit {
			big := 0
			for _, e := range n.ents {
				big = max(big, objSize(e.obj))
			}
			require.Greater(t, big, limit, "leaf %d (%s): %d bytes in %d entries, none past the limit", i, n.id, n.size, len(n.ents))
		}
	}
}

// plantShape is a planted tree: a leaf (keys) or an inner node (kids).
type plantShape struct {
	keys []int64
	kids []plantShape
}

// plantTree writes shape as the primary tree of tbl (rows padded to pad bytes, or by padOf),
// keeping the root page. Leaves get lo, hi and next as a split would leave them.
func plantTree(t *testing.T, tx *txtdb.Tx, tbl *Table[int64, padRow], shape plantShape, padOf func(k int64) int) {
	t.Helper()
	s, err := readSchema(tx, tbl.ns)
	require.NoError(t, err)
	tr := s.primary
	enc := func(k int64) string {
		_, e, err := tbl.enc(k)
		require.NoError(t, err)
		return e
	}
	lo := func(sh plantShape) string {
		for len(sh.kids) > 0 {
			sh = sh.kids[0]
		}
		return enc(sh.keys[0])
	}
	// the leaves in order, so that each knows its hi and next
	var leaves []*plantShape
	var collect func(sh *plantShape)
	collect = func(sh *plantShape) {
		if sh.kids == nil {
			leaves = append(leaves, sh)
			return
		}
		for i := range sh.kids {
			collect(&sh.kids[i])
		}
	}
	collect(&shape)
	ids := map[*plantShape]string{}
	leafObjs := func(i int) []any {
		sh := leaves[i]
		h := header{Node: "leaf"}
		if i > 0 {
			h.Lo = enc(sh.keys[0])
		}
		if i+1 < len(leaves) {
			h.Hi, h.Next = enc(leaves[i+1].keys[0]), ids[leaves[i+1]]
		}
		objs := []any{h}
		for _, k := range sh.keys {
			objs = append(objs, rowEntry[padRow]{Key: k, Row: &padRow{ID: k, Pad: strings.Repeat("p", padOf(k))}})
		}
		return objs
	}
	_, err = tx.ReadPage(tr.ns, tr.root)
	require.NoError(t, err)
	if shape.kids == nil {
		require.NoError(t, tx.UpdatePage(tr.ns, tr.root, leafObjs(0)...))
		return
	}
	for i := len(leaves) - 1; i >= 0; i-- {
		id, err := tx.NewPage(tr.ns, leafObjs(i)...)
		require.NoError(t, err)
		ids[leaves[i]] = id
	}
	var build func(sh *plantShape) []any
	build = func(sh *plantShape) []any {
		objs := []any{header{Node: "inner"}}
		for i := range sh.kids {
			k := &sh.kids[i]
			if k.kids != nil {
				id, err := tx.NewPage(tr.ns, build(k)...)
				require.NoError(t, err)
				ids[k] = id
			}
			c := child{Child: ids[k]}
			if i > 0 {
				c.Sep = lo(*k)
			}
			objs = append(objs, c)
		}
		return objs
	}
	require.NoError(t, tx.UpdatePage(tr.ns, tr.root, build(&shape)...))
}

// leafRun returns a shape of n leaves of per keys each, from key from on, spaced by 10.
func leafRun(from int64, n, per int) ([]plantShape, int64) {
	var out []plantShape
	k := from
	for range n {
		var keys []int64
		for range per {
			keys = append(keys, k)
			k += 10
		}
		out = append(out, plantShape{keys: keys})
	}
	return out, k
}

// TestSplitAtPlanted plants trees whose right-most leaf is past twice the limit (as concurrent
// appends, or a Migrate that records new index values in every row, can leave it), in every
// position near a parent split: a root leaf, a parent with 2 to 11 children (so the first,
// second, third... addChild splits it; the parent the root or not), and a right-most inner
// node and a root both nearly full (so the split cascades to the root). One more insert splits
// the leaf into 2 to 7 parts. Check, the leaves' shapes, gets and scans must hold after it.
func TestSplitAtPlanted(t *testing.T) {
	const limit = 512
	type tc struct {
		name  string
		shape func(right plantShape) plantShape
	}
	var cases []tc
	cases = append(cases, tc{"root leaf", func(right plantShape) plantShape { return right }})
	short := func(kids int) bool { return testing.Short() && kids > 2 && kids < 8 }
	for kids := 2; kids <= 11; kids++ {
		if short(kids) {
			continue
		}
		cases = append(cases, tc{fmt.Sprintf("root over %d leaves", kids), func(right plantShape) plantShape {
			left, _ := leafRun(1000, kids-1, 2)
			return plantShape{kids: append(left, right)}
		}})
	}
	for _, top := range []int{2, 8, 9, 10} {
		for kids := 7; kids <= 11; kids++ {
			if testing.Short() && (kids == 7 || top == 8 || top == 9) {
				continue
			}
			cases = append(cases, tc{fmt.Sprintf("root over %d inner, last over %d leaves", top, kids), func(right plantShape) plantShape {
				var inner []plantShape
				k := int64(1000)
				for range top - 1 {
					var run []plantShape
					run, k = leafRun(k, 3, 2)
					inner = append(inner, plantShape{kids: run})
				}
				run, _ := leafRun(k, kids-1, 2)
				inner = append(inner, plantShape{kids: append(run, right)})
				return plantShape{kids: inner}
			}})
		}
	}
	// the right-most leaf: from key 1_000_000 on, entries of about 200 bytes (two to a part),
	// and sometimes one past the limit, or past twice the limit (a part of its own)
	type fill struct {
		name  string
		n     int
		padOf func(k int64) int
	}
	fills := []fill{
		{"2 parts", 1, func(int64) int { return 900 }},
		{"3 parts", 5, func(int64) int { return 160 }},
		{"4 parts", 7, func(int64) int { return 160 }},
		{"5 parts", 9, func(int64) int { return 160 }},
		{"8 parts", 15, func(int64) int { return 160 }},
		{"huge entries", 8, func(k int64) int {
			switch (k - 1_000_000) / 10 {
			case 2:
				return 700
			case 5:
				return 1300
			}
			return 160
		}},
		{"one huge entry last", 4, func(k int64) int {
			if k == 1_000_000+30 {
				return 1400
			}
			return 100
		}},
	}
	for _, c := range cases {
		for _, f := range fills {
			t.Run(c.name+"/"+f.name, func(t *testing.T) {
				ctx := context.Background()
				db, tbl := padTable(t, limit)
				var right plantShape
				for i := range f.n {
					right.keys = append(right.keys, 1_000_000+int64(i)*10)
				}
				shape := c.shape(right)
				padOf := func(k int64) int {
					if k >= 1_000_000 {
						return f.padOf(k)
					}
					return 10
				}
				require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error {
					plantTree(t, tx, tbl, shape, padOf)
					return nil
				}))
				requireClean(t, db)
				before := statsOf(t, db, splitNS, primaryOf)
				last := before.leaves[len(before.leaves)-1]
				require.Greater(t, last.size+200, 2*limit, "the planted right-most leaf and one more row are past twice the limit")
				var want []int64
				for _, l := range before.leaves {
					for _, e := range l.ents {
						want = append(want, e.key.(int64))
					}
				}
				next := want[len(want)-1] + 10
				want = append(want, next)
				require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error {
					return tbl.Insert(tx, &padRow{ID: next, Pad: strings.Repeat("p", 160)})
				}))
				requireClean(t, db)
				after := statsOf(t, db, splitNS, primaryOf)
				requireLeafShapes(t, after, limit, true)
				require.Greater(t, len(after.leaves), len(before.leaves), "the right-most leaf split")
				t.Logf("leaves %d -> %d (%d parts), inner %d -> %d", len(before.leaves), len(after.leaves), len(after.leaves)-len(before.leaves)+1, before.inner, after.inner)
				require.NoError(t, db.View(ctx, func(tx *txtdb.Tx) error {
					ks, _, err := tbl.Scan(tx).Collect()
					require.NoError(t, err)
					require.Equal(t, want, ks)
					for _, k := range want {
						r, err := tbl.Get(tx, k)
						require.NoError(t, err, "key %d", k)
						require.Equal(t, k, r.ID)
						_, err = tbl.Get(tx, k+1)
						require.ErrorIs(t, err, txtdb.ErrNotFound)
					}
					lo := int64(1_000_000 + 15)
					ks, _, err = tbl.Range(tx, lo, next).Collect()
					require.NoError(t, err)
					var wr []int64
					for _, k := range want {
						if k >= lo && k < next {
							wr = append(wr, k)
						}
					}
					require.Equal(t, wr, ks)
					return nil
				}))
				// The tree keeps working: keys after, between and before the parts.
				require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error {
					for _, k := range []int64{next + 10, 1_000_000 + 5, 1_000_000 + 25, 1_000_000 + 45, 1005} {
						if err := tbl.Insert(tx, &padRow{ID: k, Pad: "x"}); err != nil {
							return err
						}
					}
					return nil
				}))
				requireClean(t, db)
			})
		}
	}
}

// TestSplitAtSupersededAndDeleted plants a right-most root leaf (and one under a parent) whose
// page holds many superseded and deleted entries, past twice the limit: the split (or the
// compaction, when little is live) must keep the last entry of each key and drop deleted ones.
func TestSplitAtSupersededAndDeleted(t *testing.T) {
	const limit = 512
	for _, live := range []int{2, 4, 8, 16} { // live entries of about 120 bytes
		for _, root := range []bool{true, false} {
			t.Run(fmt.Sprintf("live %d root %v", live, root), func(t *testing.T) {
				ctx := context.Background()
				db, tbl := padTable(t, limit)
				want := map[int64]string{}
				if !root {
					var left []plantShape
					require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error {
						left, _ = leafRun(10, 3, 2)
						plantTree(t, tx, tbl, plantShape{kids: append(left, plantShape{keys: []int64{500}})}, func(int64) int { return 10 })
						return nil
					}))
					for _, l := range left {
						for _, k := range l.keys {
							want[k] = strings.Repeat("p", 10)
						}
					}
					want[500] = strings.Repeat("p", 10)
				}
				// Many transactions, each one Put: the leaf gets versions and tombstones.
				r := rand.New(rand.NewPCG(uint64(live), 7))
				for i := range 200 {
					k := 1000 + int64(r.IntN(live*2))*10
					require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error {
						if _, ok := want[k]; ok && r.IntN(3) == 0 {
							delete(want, k)
							return tbl.Delete(tx, k)
						}
						p := fmt.Sprintf("v%d-%s", i, strings.Repeat("p", 60+r.IntN(60)))
						want[k] = p
						return tbl.Put(tx, &padRow{ID: k, Pad: p})
					}))
					if i%20 == 19 {
						requireClean(t, db)
						requireLeafShapes(t, statsOf(t, db, splitNS, primaryOf), limit, false)
					}
				}
				requireClean(t, db)
				require.NoError(t, db.View(ctx, func(tx *txtdb.Tx) error {
					ks, rows, err := tbl.Scan(tx).Collect()
					require.NoError(t, err)
					got := map[int64]string{}
					for i, k := range ks {
						got[k] = rows[i].Pad
					}
					require.Equal(t, want, got)
					require.IsIncreasing(t, ks)
					return nil
				}))
			})
		}
	}
}

// TestFullCutsParts holds fullCuts to its contract on random entry sizes: cuts ascending inside
// the entries, no empty part, each part within the room unless it is one entry, each part but
// the last full (the next entry would not fit), and no cut when everything fits in one.
func TestFullCutsParts(t *testing.T) {
	r := rand.New(rand.NewPCG(seed(t), 11))
	for _, limit := range []int{512, 600, 2048, 16384} {
		hdr := []int{0, 89, 300}[r.IntN(3)]
		room := limit*15/16 - hdr
		for range 300 {
			n := 1 + r.IntN(60)
			ents := make([]ent, n)
			for i := range ents {
				sz := 1 + r.IntN(limit/4)
				switch r.IntN(10) {
				case 0:
					sz = limit + r.IntN(2*limit)
				case 1:
					sz = room - 20 + r.IntN(40)
				}
				o, err := pages.Encode(pages.JSON, map[string]string{"p": strings.Repeat("x", sz)})
				require.NoError(t, err)
				ents[i] = ent{enc: fmt.Sprintf("%04d", i), obj: o}
			}
			total := 0
			for _, e := range ents {
				total += objSize(e.obj)
			}
			cuts := fullCuts(ents, limit, hdr)
			if total <= room {
				require.Empty(t, cuts)
				continue
			}
			if n > 1 {
				require.NotEmpty(t, cuts, "%d entries, %d bytes", n, total)
			}
			bounds := append(append([]int{0}, cuts...), n)
			for i := 0; i+1 < len(bounds); i++ {
				a, b := bounds[i], bounds[i+1]
				require.Less(t, a, b, "part %d is empty: cuts %v", i, cuts)
				sum := 0
				for _, e := range ents[a:b] {
					sum += objSize(e.obj)
				}
				if b-a > 1 {
					require.LessOrEqual(t, sum, room, "part %d", i)
				}
				if b < n {
					require.Greater(t, sum+objSize(ents[b].obj), room, "part %d could take the next entry", i)
				}
			}
		}
	}
}

// TestRightEdgeModel runs a table with a unique and a secondary index in 512-byte nodes under
// mostly increasing keys (with some random ones, updates that change a row's size, deletes, and
// rows past the limit and past twice the limit) in transactions of one to four writes, checking
// the store after each (every fifth with -short), and the rows, gets, ranges and index lookups at
// the end. Without -short it requires that it saw multi-part splits, some growing the inner nodes.
func TestRightEdgeModel(t *testing.T) {
	s := seed(t)
	t.Logf("seed %d", s)
	n, every := 700, 1
	if testing.Short() {
		n, every = 250, 5
	}
	for _, iso := range []txtdb.Isolation{txtdb.Serializable, txtdb.Snapshot} {
		t.Run(fmt.Sprint(iso), func(t *testing.T) {
			r := rand.New(rand.NewPCG(s, uint64(iso)+20))
			ctx := context.Background()
			db, err := txtdb.Open(t.TempDir(), &txtdb.Options{Isolation: iso})
			require.NoError(t, err)
			defer db.Close()
			tbl := New(splitNS, func(r *padRow) int64 { return r.ID })
			byOwner := Unique(tbl, "owner", func(r *padRow) string { return r.Owner })
			byState := Index(tbl, "state", func(r *padRow) string { return r.State })
			require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return tbl.Create(tx) }))
			shrink(t, db, splitNS, 512)
			model := map[int64]padRow{}
			next := int64(0)
			pad := func() string {
				switch x := r.IntN(40); {
				case x == 0:
					return strings.Repeat("h", 1100+r.IntN(300)) // past twice the limit
				case x < 3:
					return strings.Repeat("g", 520+r.IntN(200)) // past the limit
				case x < 10:
					return strings.Repeat("m", 100+r.IntN(200))
				}
				return strings.Repeat("s", r.IntN(30))
			}
			newRow := func(k int64) padRow {
				// owners increase with the key (the unique index has a right edge too), states
				// are few (the secondary index's right edge is its last value's newest rows)
				return padRow{ID: k, Owner: fmt.Sprintf("o%08d", k), State: []string{"a", "b", "z"}[r.IntN(3)], Pad: pad()}
			}
			var multi, grew int
			prev := statsOf(t, db, splitNS, primaryOf)
			for i := 0; i < n; i++ {
				ops := 1 + r.IntN(4)
				inserts := 0
				m := maps.Clone(model)
				err := db.Update(ctx, func(tx *txtdb.Tx) error {
					m = maps.Clone(model)
					nx := next
					inserts = 0
					for range ops {
						switch x := r.IntN(20); {
						case x < 14: // the next key
							row := newRow(nx)
							nx++
							if err := tbl.Insert(tx, &row); err != nil {
								return err
							}
							m[row.ID] = row
							inserts++
						case x < 16 && nx > 0: // a random key below the edge, maybe new
							k := r.Int64N(nx) - r.Int64N(50)
							row := newRow(k)
							row.Owner = fmt.Sprintf("o%08d-%d", k, i)
							if err := tbl.Put(tx, &row); err != nil {
								return err
							}
							m[k] = row
						case x < 18 && len(m) > 0: // update a recent row, changing its size
							k := nx - 1 - r.Int64N(min(nx, 30))
							old, ok := m[k]
							if !ok {
								continue
							}
							old.Pad, old.State = pad(), "b"
							if err := tbl.Put(tx, &old); err != nil {
								return err
							}
							m[k] = old
						case nx > 0: // delete a recent row
							k := nx - 1 - r.Int64N(min(nx, 30))
							if _, ok := m[k]; !ok {
								continue
							}
							if err := tbl.Delete(tx, k); err != nil {
								return err
							}
							delete(m, k)
						}
					}
					next = nx
					return nil
				})
				require.NoError(t, err)
				model = m
				st := statsOf(t, db, splitNS, primaryOf)
				if i%every == 0 || i == n-1 {
					requireClean(t, db)
					requireLeafShapes(t, st, 512, false)
					requireLeafShapes(t, statsOf(t, db, splitNS, func(s *schema) *tree { return s.indexes["owner"] }), 512, false)
					requireLeafShapes(t, statsOf(t, db, splitNS, func(s *schema) *tree { return s.indexes["state"] }), 512, false)
				}
				if inserts == 1 && ops == 1 && len(st.leaves) >= len(prev.leaves)+2 {
					multi++
					if st.inner > prev.inner {
						grew++
					}
				}
				prev = st
			}
			t.Logf("%d rows; multi-part splits of one insert %d, of which grew the inner nodes %d", len(model), multi, grew)
			if !testing.Short() { // TestSplitAtPlanted covers these cases deterministically
				require.Positive(t, multi)
				require.Positive(t, grew)
			}
			require.NoError(t, db.View(ctx, func(tx *txtdb.Tx) error {
				ks, rows, err := tbl.Scan(tx).Collect()
				require.NoError(t, err)
				var wk []int64
				for k := range model {
					wk = append(wk, k)
				}
				slices.Sort(wk)
				require.Equal(t, wk, ks)
				for i, k := range ks {
					require.Equal(t, model[k], *rows[i])
					got, err := byOwner.Get(tx, model[k].Owner)
					require.NoError(t, err)
					require.Equal(t, k, got.ID)
				}
				for _, st := range []string{"a", "b", "z"} {
					var want []int64
					for _, k := range wk {
						if model[k].State == st {
							want = append(want, k)
						}
					}
					got, _, err := byState.Find(tx, st).Collect()
					require.NoError(t, err)
					require.Equal(t, want, got, "state %s", st)
				}
				for range 30 {
					lo := r.Int64N(next+1) - 20
					hi := lo + r.Int64N(100)
					var want []int64
					for _, k := range wk {
						if k >= lo && k < hi {
							want = append(want, k)
						}
					}
					got, _, err := tbl.Range(tx, lo, hi).Collect()
					require.NoError(t, err)
					require.Equal(t, want, got, "range [%d, %d)", lo, hi)
				}
				return nil
			}))
		})
	}
}

// TestStaleInsertAfterMultiPartSplit begins a transaction, then (on a second handle, as another
// process) commits the insert that cuts the right-most leaf into several parts and splits its
// parent; the first transaction, whose snapshot routes every key to the old leaf, then inserts
// keys that belong to each part (and one past all of them) and a unique value. Its commit must
// conflict, under either isolation level, and the retry must land every key where it belongs.
func TestStaleInsertAfterMultiPartSplit(t *testing.T) {
	const limit = 512
	for _, iso := range []txtdb.Isolation{txtdb.Serializable, txtdb.Snapshot} {
		for _, stale := range []int64{1_000_000 + 5, 1_000_000 + 45, 1_000_000 + 95, 1_000_000 + 200} {
			t.Run(fmt.Sprintf("%v/key %d", iso, stale), func(t *testing.T) {
				ctx := context.Background()
				dbs := twoHandles(t, iso)
				tbl := New(splitNS, func(r *padRow) int64 { return r.ID })
				require.NoError(t, dbs[0].Update(ctx, func(tx *txtdb.Tx) error { return tbl.Create(tx) }))
				shrink(t, dbs[0], splitNS, limit)
				// a root over 10 leaves, the last one holding 8 rows of about 200 bytes
				left, _ := leafRun(1000, 9, 2)
				var right plantShape
				for i := range 8 {
					right.keys = append(right.keys, 1_000_000+int64(i)*10)
				}
				require.NoError(t, dbs[0].Update(ctx, func(tx *txtdb.Tx) error {
					plantTree(t, tx, tbl, plantShape{kids: append(left, right)}, func(k int64) int {
						if k >= 1_000_000 {
							return 160
						}
						return 10
					})
					return nil
				}))
				before := statsOf(t, dbs[0], splitNS, primaryOf)

				tx, err := dbs[0].Begin(ctx, true)
				require.NoError(t, err)
				defer func() { _ = tx.Rollback() }()
				_, err = tbl.Get(tx, 1000) // the snapshot, and the tree as it routes
				require.NoError(t, err)

				require.NoError(t, dbs[1].Update(ctx, func(tx *txtdb.Tx) error {
					return tbl.Insert(tx, &padRow{ID: 1_000_000 + 100, Pad: strings.Repeat("p", 160)})
				}))
				mid := statsOf(t, dbs[1], splitNS, primaryOf)
				require.GreaterOrEqual(t, len(mid.leaves), len(before.leaves)+2, "a multi-part split")
				require.Greater(t, mid.inner, before.inner, "the split grew the inner nodes")

				require.NoError(t, tbl.Insert(tx, &padRow{ID: stale, Pad: "stale"}))
				err = tx.Commit()
				require.ErrorIs(t, err, txtdb.ErrConflict, "a stale insert into the leaf the split rewrote")

				require.NoError(t, dbs[0].Update(ctx, func(tx *txtdb.Tx) error {
					return tbl.Insert(tx, &padRow{ID: stale, Pad: "stale"})
				}))
				requireClean(t, dbs[0])
				require.NoError(t, dbs[1].View(ctx, func(tx *txtdb.Tx) error {
					r, err := tbl.Get(tx, stale)
					require.NoError(t, err)
					require.Equal(t, "stale", r.Pad)
					ks, _, err := tbl.Scan(tx).Collect()
					require.NoError(t, err)
					require.IsIncreasing(t, ks)
					require.Len(t, ks, 9*2+8+2)
					return nil
				}))
			})
		}
	}
}

// TestConcurrentRightEdge races writers on two handles of one store, each inserting the next key
// of a shared counter (so all of them hit the right-most leaf, and it splits into several parts
// under them) with rows of varied sizes, and updating or deleting its own recent rows. Every
// committed write must be there, and Check must find nothing, under either isolation level.
func TestConcurrentRightEdge(t *testing.T) {
	s := seed(t)
	t.Logf("seed %d", s)
	n := 120
	if testing.Short() {
		n = 60
	}
	for _, iso := range []txtdb.Isolation{txtdb.Serializable, txtdb.Snapshot} {
		t.Run(fmt.Sprint(iso), func(t *testing.T) {
			ctx := context.Background()
			dbs := twoHandles(t, iso)
			tbl := New(splitNS, func(r *padRow) int64 { return r.ID })
			byOwner := Unique(tbl, "owner", func(r *padRow) string { return r.Owner })
			Index(tbl, "state", func(r *padRow) string { return r.State })
			require.NoError(t, dbs[0].Update(ctx, func(tx *txtdb.Tx) error { return tbl.Create(tx) }))
			shrink(t, dbs[0], splitNS, 512)
			var counter atomic.Int64
			const workers = 4
			models := make([]map[int64]padRow, workers)
			var wg sync.WaitGroup
			for w := range workers {
				r := rand.New(rand.NewPCG(s, uint64(w)+50))
				db := dbs[w%2]
				models[w] = map[int64]padRow{}
				wg.Go(func() {
					var mine []int64
					for range n {
						var row padRow
						del := false
						switch x := r.IntN(10); {
						case x < 7 || len(mine) == 0:
							k := counter.Add(1)
							row = padRow{ID: k, Owner: fmt.Sprintf("o%08d", k), State: fmt.Sprint(r.IntN(2)), Pad: strings.Repeat("p", []int{5, 40, 150, 600}[r.IntN(4)])}
						case x < 9:
							row = models[w][mine[len(mine)-1-r.IntN(min(len(mine), 5))]]
							row.Pad = strings.Repeat("q", r.IntN(300))
						default:
							row, del = models[w][mine[len(mine)-1-r.IntN(min(len(mine), 5))]], true
						}
						err := db.Update(ctx, func(tx *txtdb.Tx) error {
							if del {
								return tbl.Delete(tx, row.ID)
							}
							return tbl.Put(tx, &row)
						})
						if err != nil {
							t.Error(err)
							return
						}
						if del {
							delete(models[w], row.ID)
							mine = slices.DeleteFunc(mine, func(k int64) bool { return k == row.ID })
							continue
						}
						if _, ok := models[w][row.ID]; !ok {
							mine = append(mine, row.ID)
						}
						models[w][row.ID] = row
					}
				})
			}
			wg.Wait()
			requireClean(t, dbs[0])
			want := map[int64]padRow{}
			for _, m := range models {
				for k, v := range m {
					want[k] = v
				}
			}
			require.NoError(t, dbs[1].View(ctx, func(tx *txtdb.Tx) error {
				ks, rows, err := tbl.Scan(tx).Collect()
				require.NoError(t, err)
				require.Len(t, ks, len(want))
				for i, k := range ks {
					require.Equal(t, want[k], *rows[i])
					got, err := byOwner.Get(tx, want[k].Owner)
					require.NoError(t, err)
					require.Equal(t, k, got.ID)
				}
				return nil
			}))
		})
	}
}

// TestRightEdgePartsFitTheNodeSize fills tables with increasing keys and requires that the full
// leaves the right edge leaves behind fit in the node size with their header, as fullCuts' room
// (15/16 of the limit, "the header, and slack for a rewrite in place") means them to: otherwise
// the next write of any kind to such a leaf (here, deleting one row) splits it in halves, which
// the in-order split made in place of halves (the old split kept the lower part under the limit).
// The header holds lo and hi (two encoded keys, hex for strings) and next: 89 bytes for int64
// keys, past 1/16 of the minimum node size; about 1.3 KB for 300-byte string keys, past 1/16 of
// the default node size.
func TestRightEdgePartsFitTheNodeSize(t *testing.T) {
	cases := []struct {
		name  string
		limit int
		key   func(i int) string
		rows  int
	}{
		{"int keys, 512-byte nodes", 512, nil, 200},
		{"300-byte string keys, default nodes", defaultNodeBytes, func(i int) string { return fmt.Sprintf("%s/%06d", strings.Repeat("k", 293), i) }, 150},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			db, err := txtdb.Open(t.TempDir(), nil)
			require.NoError(t, err)
			defer db.Close()
			if c.key == nil {
				tbl := New(splitNS, func(r *padRow) int64 { return r.ID })
				require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return tbl.Create(tx) }))
				shrink(t, db, splitNS, c.limit)
				for i := range c.rows {
					require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return tbl.Insert(tx, &padRow{ID: int64(i), Pad: "x"}) }))
				}
				requireFullLeavesFit(t, db, c.limit, func(tx *txtdb.Tx, k any) error { return tbl.Delete(tx, k.(int64)) })
				return
			}
			tbl := New(splitNS, func(r *padRow) string { return r.Owner })
			require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return tbl.Create(tx) }))
			shrink(t, db, splitNS, c.limit)
			for i := range c.rows {
				require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return tbl.Insert(tx, &padRow{Owner: c.key(i), Pad: "x"}) }))
			}
			requireFullLeavesFit(t, db, c.limit, func(tx *txtdb.Tx, k any) error { return tbl.Delete(tx, k.(string)) })
		})
	}
}

func requireFullLeavesFit(t *testing.T, db *txtdb.DB, limit int, del func(tx *txtdb.Tx, k any) error) {
	t.Helper()
	ctx := context.Background()
	requireClean(t, db)
	before := statsOf(t, db, splitNS, primaryOf)
	require.Greater(t, len(before.leaves), 3)
	var over []string
	for _, n := range before.leaves[:len(before.leaves)-1] {
		if n.size > limit {
			over = append(over, fmt.Sprintf("%s: %d bytes", n.id, n.size))
		}
	}
	// Delete the first row of every leaf but the last.
	for _, n := range before.leaves[:len(before.leaves)-1] {
		require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return del(tx, n.ents[0].key) }))
	}
	requireClean(t, db)
	after := statsOf(t, db, splitNS, primaryOf)
	require.Empty(t, over, "of %d leaves left behind, past the node size of %d", len(before.leaves)-1, limit)
	require.Equal(t, len(before.leaves), len(after.leaves), "deleting one row of each full leaf split it")
}

// padTable opens a new store holding an empty padRow table in nodes of limit bytes.
func padTable(t *testing.T, limit int) (*txtdb.DB, *Table[int64, padRow]) {
	t.Helper()
	db, err := txtdb.Open(t.TempDir(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	tbl := New(splitNS, func(r *padRow) int64 { return r.ID })
	require.NoError(t, db.Update(context.Background(), func(tx *txtdb.Tx) error { return tbl.Create(tx) }))
	shrink(t, db, splitNS, limit)
	return db, tbl
}
