package txn

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

// checkCacheAccounting checks, with nothing running, that the cache's byte count is the sum of
// what is on its list, that each version is on it at most once and knows its place, and that no
// version a reader can reach (in a history, or the base of one) holds reloadable contents off
// the list (memory outside the bound).
func checkCacheAccounting(t *testing.T, db *DB) {
	t.Helper()
	x := db.idxp.Load()
	x.mu.RLock()
	defer x.mu.RUnlock()
	c := &db.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	require.Empty(t, c.victims, "victims left undrained")
	var sum int64
	seen := map[*version]bool{}
	n := 0
	c.each(func(_ *index, v *version, size int64) {
		require.False(t, seen[v], "version v%d on the list twice", v.tsn)
		seen[v] = true
		require.True(t, v.lru.on, "v%d on the list, not marked so", v.tsn)
		require.Same(t, v, v.lru.next.lru.prev, "v%d's links", v.tsn)
		require.True(t, v.loaded, "v%d on the list, not loaded", v.tsn)
		require.Equal(t, objsSize(v.objs), size, "v%d charged for other contents", v.tsn)
		sum += size
		n++
	})
	require.Equal(t, c.n, n, "versions counted and on the list")
	require.Equal(t, sum, c.bytes, "bytes charged and on the list")
	for inc, in := range x.incs {
		for n, h := range in.pages {
			for _, v := range h.vs {
				for w := v; w != nil; w = w.base {
					if w.loaded && w.reloadable() {
						require.True(t, w.lru.on, "%s/%s v%d loaded, off the list", inc, pages.PageID(n), w.tsn)
					}
				}
			}
		}
	}
}

// Readers of a handle with a tiny cache (some holding snapshots across commits, some reading
// appends whose bases are pruned meanwhile) race with commits that prune, delete pages and drop
// namespaces; afterwards the cache's accounting is exact and nothing loaded lies off its list.
func TestCacheAccountingUnderLoad(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := mustOpen(t, dir, Config{CacheSize: 6000, NoSync: true, OneObjectPerPage: true})
	const nPages = 12
	pad := strings.Repeat("p", 300)
	var keyed []string
	_, _, err := update(ctx, db, func(tx *Tx) error {
		if err := tx.CreateNamespace("p"); err != nil {
			return err
		}
		for i := range nPages {
			if _, err := tx.Insert("p", map[string]any{"i": i, "pad": pad}); err != nil {
				return err
			}
		}
		for i := range 3 {
			id, err := tx.NewPage("p", map[string]any{"k": fmt.Sprint("base", i), "pad": pad})
			if err != nil {
				return err
			}
			keyed = append(keyed, id)
		}
		return nil
	})
	require.NoError(t, err)
	rounds := 150
	if testing.Short() {
		rounds = 60
	}
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for w := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range rounds {
				id := pages.PageID(uint64(1 + rng.IntN(nPages)))
				_, _, err := update(ctx, db, func(tx *Tx) error {
					if _, err := tx.ReadPage("p", id); err != nil {
						return err
					}
					return tx.UpdatePage("p", id, map[string]any{"w": w, "i": i, "pad": pad})
				})
				if err != nil && !isConflict(err) {
					errc <- err
					return
				}
				kp := keyed[rng.IntN(len(keyed))]
				_, _, err = update(ctx, db, func(tx *Tx) error {
					return tx.AppendPage("p", kp, fmt.Sprintf("w%d-%d", w, i), map[string]any{"w": w, "i": i})
				})
				if err != nil && !isConflict(err) {
					errc <- err
					return
				}
			}
		})
	}
	wg.Go(func() { // namespaces created, filled, emptied and dropped: sweep's drops
		for i := range rounds / 5 {
			ns := fmt.Sprintf("d%d", i%3)
			_, _, err := update(ctx, db, func(tx *Tx) error {
				if err := tx.CreateNamespace(ns); err != nil {
					return err
				}
				for range 3 {
					if _, err := tx.Insert(ns, map[string]any{"pad": pad}); err != nil {
						return err
					}
				}
				return nil
			})
			if err == nil {
				_, _, err = update(ctx, db, func(tx *Tx) error {
					if _, err := tx.ReadPage(ns, "page000001"); err != nil {
						return err
					}
					return tx.DeletePage(ns, "page000001")
				})
			}
			if err == nil {
				_, _, err = update(ctx, db, func(tx *Tx) error { return tx.DeleteNamespace(ns) })
			}
			if err != nil && !isConflict(err) {
				errc <- err
				return
			}
		}
	})
	for r := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 2))
			for range rounds {
				tx, err := db.Begin(ctx, false)
				if err != nil {
					errc <- err
					return
				}
				for range 1 + rng.IntN(4) { // a snapshot held across other commits
					var id string
					if rng.IntN(2) == 0 {
						id = keyed[rng.IntN(len(keyed))]
					} else {
						id = pages.PageID(uint64(1 + rng.IntN(nPages)))
					}
					if _, err := tx.ReadPage("p", id); err != nil {
						errc <- fmt.Errorf("read %s at %d: %w", id, tx.Snapshot(), err)
						_ = tx.Rollback()
						return
					}
				}
				_ = tx.Rollback()
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		require.NoError(t, err)
	}
	// One more commit and read, so the last applies and loads are drained.
	_, _, err = update(ctx, db, func(tx *Tx) error { _, err := tx.Insert("p", map[string]any{"end": 1}); return err })
	require.NoError(t, err)
	checkCacheAccounting(t, db)
	t.Logf("cache: %d bytes of %d, %d hits, %d misses", db.cache.used(), db.cache.limit, db.cache.hits.Load(), db.cache.misses.Load())
}

func isConflict(err error) bool { return errors.Is(err, ErrConflict) }
