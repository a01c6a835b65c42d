package table

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb"
)

type job struct {
	ID    int64  `json:"id"`
	Owner string `json:"owner"`
	State string `json:"state"`
}

// depth returns the number of levels of a tree.
func depth(t *testing.T, db *txtdb.DB, ns string, tr func(*schema) *tree) int {
	t.Helper()
	d := 0
	require.NoError(t, db.View(context.Background(), func(tx *txtdb.Tx) error {
		s, err := readSchema(tx, ns)
		if err != nil {
			return err
		}
		return tr(s).walk(tx, func(n *node, level int) error { d = max(d, level+1); return nil })
	}))
	return d
}

// TestDeepTree grows trees of several levels with keys in increasing, decreasing and random
// order, in batches, and checks order, counts, ranges and Check.
func TestDeepTree(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 1200
	}
	for _, order := range []string{"increasing", "decreasing", "random"} {
		t.Run(order, func(t *testing.T) {
			s := seed(t)
			t.Logf("seed %d", s)
			r := rand.New(rand.NewPCG(s, 1))
			ctx := context.Background()
			db, err := txtdb.Open(t.TempDir(), nil)
			require.NoError(t, err)
			defer db.Close()
			jobs := New("q.jobs", func(j *job) int64 { return j.ID })
			byOwner := Unique(jobs, "owner", func(j *job) string { return j.Owner })
			byState := Index(jobs, "state", func(j *job) string { return j.State })
			require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return jobs.Create(tx) }))
			shrink(t, db, jobs.ns, 512)
			keys := make([]int64, n)
			for i := range keys {
				switch order {
				case "increasing":
					keys[i] = int64(i) - int64(n)/2
				case "decreasing":
					keys[i] = int64(n - i)
				default:
					keys[i] = r.Int64() - 1<<62
				}
			}
			for i := 0; i < n; i += 50 {
				require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error {
					for _, k := range keys[i:min(i+50, n)] {
						if err := jobs.Insert(tx, &job{ID: k, Owner: fmt.Sprintf("o%d", k), State: []string{"new", "run", "done"}[k&1]}); err != nil {
							return err
						}
					}
					return nil
				}))
			}
			require.GreaterOrEqual(t, depth(t, db, jobs.ns, func(s *schema) *tree { return s.primary }), 3, "a tree of %d rows in 512-byte nodes", n)
			require.GreaterOrEqual(t, depth(t, db, jobs.ns, func(s *schema) *tree { return s.indexes["owner"] }), 3)
			probs, err := Check(ctx, db)
			require.NoError(t, err)
			require.Empty(t, probs)
			require.NoError(t, db.View(ctx, func(tx *txtdb.Tx) error {
				c, err := jobs.Count(tx)
				require.NoError(t, err)
				require.Equal(t, n, c)
				ks, _, err := jobs.Scan(tx).Collect()
				require.NoError(t, err)
				require.IsIncreasing(t, ks)
				for range 20 {
					k := keys[r.IntN(n)]
					j, err := byOwner.Get(tx, fmt.Sprintf("o%d", k))
					require.NoError(t, err)
					require.Equal(t, k, j.ID)
					lo := keys[r.IntN(n)]
					want := 0
					for _, x := range keys {
						if x >= lo && x < lo+1000 {
							want++
						}
					}
					got, _, err := jobs.Range(tx, lo, lo+1000).Collect()
					require.NoError(t, err)
					require.Len(t, got, want)
				}
				_, run, err := byState.Find(tx, "run").Collect()
				require.NoError(t, err)
				odd := 0
				for _, k := range keys {
					odd += int(k & 1)
				}
				require.Len(t, run, odd)
				return nil
			}))
			// Delete every other row, then check again.
			for i := 0; i < n; i += 100 {
				require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error {
					for j := i; j < min(i+100, n); j += 2 {
						if err := jobs.Delete(tx, keys[j]); err != nil {
							return err
						}
					}
					return nil
				}))
			}
			probs, err = Check(ctx, db)
			require.NoError(t, err)
			require.Empty(t, probs)
			require.NoError(t, db.View(ctx, func(tx *txtdb.Tx) error {
				c, err := jobs.Count(tx)
				require.NoError(t, err)
				require.Equal(t, n/2, c)
				return nil
			}))
		})
	}
}

// Keys arriving in order fill the leaves they leave behind (the tree's right edge grows to twice
// the limit and is cut into full leaves and a short last one), so such a tree has few, full
// leaves and its right edge splits about once per two leaves' worth of inserts: the splits are
// what inserts under way conflict with. Keys in random order still split in halves, and no leaf
// grows past twice the limit.
func TestInOrderLeavesAreFull(t *testing.T) {
	const limit, n = 2048, 1500
	for _, order := range []string{"increasing", "random"} {
		t.Run(order, func(t *testing.T) {
			ctx := context.Background()
			db, err := txtdb.Open(t.TempDir(), nil)
			require.NoError(t, err)
			defer db.Close()
			jobs := New("q.jobs", func(j *job) int64 { return j.ID })
			require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return jobs.Create(tx) }))
			shrink(t, db, jobs.ns, limit)
			keys := make([]int64, n)
			for i := range keys {
				keys[i] = int64(i)
			}
			if order == "random" {
				rand.New(rand.NewPCG(seed(t), 3)).Shuffle(n, func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
			}
			for _, k := range keys { // one insert per transaction, as a queue gets them
				require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error {
					return jobs.Insert(tx, &job{ID: k, Owner: fmt.Sprintf("o%d", k), State: "new"})
				}))
			}
			var leaves, bytes, over int
			require.NoError(t, db.View(ctx, func(tx *txtdb.Tx) error {
				s, err := readSchema(tx, jobs.ns)
				if err != nil {
					return err
				}
				return s.primary.walk(tx, func(nd *node, _ int) error {
					if nd.hdr.Node == "leaf" {
						leaves++
						bytes += nd.size
						if nd.size > 2*limit {
							over++
						}
					}
					return nil
				})
			}))
			probs, err := Check(ctx, db)
			require.NoError(t, err)
			require.Empty(t, probs)
			require.Zero(t, over, "leaves past twice the limit")
			fill := float64(bytes) / float64(leaves*limit)
			t.Logf("%s: %d leaves, %.0f%% of the limit on average", order, leaves, 100*fill)
			if order == "increasing" {
				require.Greater(t, fill, 0.85, "leaves left behind by keys in order are full")
			} else {
				require.Less(t, fill, 0.85, "random keys split leaves in halves")
			}
		})
	}
}
