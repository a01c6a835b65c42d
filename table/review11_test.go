package table

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb"
)

// TestUniqueUnderBothIsolations races goroutines on two handles of one store (each handle
// validates against its own index, as separate processes do) over a small key space and a small
// set of unique values, with nodes small enough that leaves and inner nodes split all the time.
// First inserts only: each key and each unique value is taken by at most one successful insert.
// Then inserts, puts that move the unique value, and deletes: Check finds nothing, and no value
// is held by two rows.
func TestUniqueUnderBothIsolations(t *testing.T) {
	for _, iso := range []txtdb.Isolation{txtdb.Serializable, txtdb.Snapshot} {
		t.Run(fmt.Sprint(iso), func(t *testing.T) { testUniqueUnder(t, iso) })
	}
}

func testUniqueUnder(t *testing.T, iso txtdb.Isolation) {
	s := seed(t)
	t.Logf("seed %d", s)
	ctx := context.Background()
	dbs := twoHandles(t, iso)
	jobs := New("q.jobs", func(j *job) int64 { return j.ID })
	byOwner := Unique(jobs, "owner", func(j *job) string { return j.Owner })
	Index(jobs, "state", func(j *job) string { return j.State })
	require.NoError(t, dbs[0].Update(ctx, func(tx *txtdb.Tx) error { return jobs.Create(tx) }))
	shrink(t, dbs[0], jobs.ns, 512)

	const workers, keys, owners = 4, 60, 40
	n := 120
	if testing.Short() {
		n = 60
	}
	type win struct {
		id    int64
		owner string
	}
	var mu sync.Mutex
	var wins []win
	var wg sync.WaitGroup
	for w := range workers {
		r := rand.New(rand.NewPCG(s, uint64(w)))
		db := dbs[w%2]
		wg.Go(func() {
			for range n {
				j := &job{ID: int64(r.IntN(keys)), Owner: fmt.Sprintf("o%02d", r.IntN(owners)), State: fmt.Sprint(r.IntN(3))}
				err := db.Update(ctx, func(tx *txtdb.Tx) error { return jobs.Insert(tx, j) })
				if err == nil {
					mu.Lock()
					wins = append(wins, win{j.ID, j.Owner})
					mu.Unlock()
				} else if !errors.Is(err, ErrDuplicateKey) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	ids, byOwnerSeen := map[int64]int{}, map[string]int{}
	for _, w := range wins {
		ids[w.id]++
		byOwnerSeen[w.owner]++
	}
	for id, c := range ids {
		require.Equal(t, 1, c, "key %d inserted %d times", id, c)
	}
	for o, c := range byOwnerSeen {
		require.Equal(t, 1, c, "owner %s taken by %d inserts", o, c)
	}
	checkUnique(t, dbs[0], jobs, byOwner)

	for w := range workers {
		r := rand.New(rand.NewPCG(s, uint64(100+w)))
		db := dbs[w%2]
		wg.Go(func() {
			for range n {
				j := &job{ID: int64(r.IntN(keys)), Owner: fmt.Sprintf("o%02d", r.IntN(owners)), State: fmt.Sprint(r.IntN(3))}
				var err error
				switch r.IntN(3) {
				case 0:
					err = db.Update(ctx, func(tx *txtdb.Tx) error { return jobs.Insert(tx, j) })
				case 1:
					err = db.Update(ctx, func(tx *txtdb.Tx) error { return jobs.Put(tx, j) })
				default:
					err = db.Update(ctx, func(tx *txtdb.Tx) error { return jobs.Delete(tx, j.ID) })
				}
				if err != nil && !errors.Is(err, ErrDuplicateKey) && !errors.Is(err, txtdb.ErrNotFound) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	checkUnique(t, dbs[1], jobs, byOwner)
}

// checkUnique runs Check and verifies that no owner is held by two rows, and that the unique
// index finds each row by its owner.
func checkUnique(t *testing.T, db *txtdb.DB, jobs *Table[int64, job], byOwner *UniqueIndex[int64, job, string]) {
	t.Helper()
	probs, err := Check(context.Background(), db)
	require.NoError(t, err)
	require.Empty(t, probs)
	require.NoError(t, db.View(context.Background(), func(tx *txtdb.Tx) error {
		_, rows, err := jobs.Scan(tx).Collect()
		if err != nil {
			return err
		}
		held := map[string]int64{}
		for _, r := range rows {
			if other, ok := held[r.Owner]; ok {
				return fmt.Errorf("owner %s held by rows %d and %d", r.Owner, other, r.ID)
			}
			held[r.Owner] = r.ID
			got, err := byOwner.Get(tx, r.Owner)
			if err != nil {
				return err
			}
			if got.ID != r.ID {
				return fmt.Errorf("owner %s: index names row %d, the row is %d", r.Owner, got.ID, r.ID)
			}
		}
		return nil
	}))
}

// TestMigrateAndDropIndexUnderSnapshot: under Snapshot isolation, writers with the old code keep
// inserting, putting and deleting on one handle while another handle adds a unique index
// (Migrate) and later drops it: no row escapes the index, Check finds nothing.
func TestMigrateAndDropIndexUnderSnapshot(t *testing.T) {
	s := seed(t)
	t.Logf("seed %d", s)
	ctx := context.Background()
	dbs := twoHandles(t, txtdb.Snapshot)
	plain := New("q.jobs", func(j *job) int64 { return j.ID })
	require.NoError(t, dbs[0].Update(ctx, func(tx *txtdb.Tx) error { return plain.Create(tx) }))
	shrink(t, dbs[0], plain.ns, 512)
	indexed := New("q.jobs", func(j *job) int64 { return j.ID })
	byOwner := Unique(indexed, "owner", func(j *job) string { return j.Owner })

	// Each round, the writers make a few changes while the migration (or the drop) runs: a
	// steady stream of writers would starve it (it rewrites every leaf, so it conflicts with
	// every write).
	writers := func(round int) *sync.WaitGroup {
		var wg sync.WaitGroup
		for w := range 2 {
			r := rand.New(rand.NewPCG(s, uint64(round*10+w)))
			wg.Go(func() {
				for range 15 {
					id := int64(r.IntN(80)) // owners unique by construction: the migration meets no duplicate
					j := &job{ID: id, Owner: fmt.Sprintf("o%03d", id), State: "s"}
					err := dbs[0].Update(ctx, func(tx *txtdb.Tx) error {
						if r.IntN(4) == 0 {
							if err := plain.Delete(tx, id); !errors.Is(err, txtdb.ErrNotFound) {
								return err
							}
							return nil
						}
						return plain.Put(tx, j)
					})
					if err != nil && !errors.Is(err, ErrSchemaMismatch) {
						t.Error(err)
						return
					}
				}
			})
		}
		return &wg
	}
	for round := range 3 {
		wg := writers(2 * round)
		require.NoError(t, dbs[1].Update(ctx, func(tx *txtdb.Tx) error { return indexed.Migrate(tx) }))
		wg.Wait()
		checkUnique(t, dbs[1], indexed, byOwner)
		wg = writers(2*round + 1)
		require.NoError(t, dbs[1].Update(ctx, func(tx *txtdb.Tx) error { return indexed.DropIndex(tx, "owner") }))
		wg.Wait()
		probs, err := Check(ctx, dbs[1])
		require.NoError(t, err)
		require.Empty(t, probs)
	}
}

// twoHandles opens two handles (as two processes would) on a new store, with isolation iso.
func twoHandles(t *testing.T, iso txtdb.Isolation) []*txtdb.DB {
	t.Helper()
	dir := t.TempDir()
	var dbs []*txtdb.DB
	for range 2 {
		db, err := txtdb.Open(dir, &txtdb.Options{Isolation: iso})
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		dbs = append(dbs, db)
	}
	return dbs
}
