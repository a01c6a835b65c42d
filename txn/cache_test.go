package txn

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// A handle with a tiny page cache keeps reading right: evicted versions come back from the log
// record (an append through its base), or from the page file once the log was trimmed past it,
// and the cache stays within its bound.
func TestSmallCacheReloads(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	const nPages = 60
	w := mustOpen(t, dir, Config{SegmentBytes: 4096, LogRetention: -1, OneObjectPerPage: true})
	_, _, err := update(ctx, w, func(tx *Tx) error {
		if err := tx.CreateNamespace("p"); err != nil {
			return err
		}
		if err := tx.CreateNamespace("q"); err != nil {
			return err
		}
		for i := range nPages {
			if _, err := tx.Insert("p", i); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	r := mustOpen(t, dir, Config{CacheSize: 1024})
	want := map[string]int{}
	for i := range nPages {
		want[fmt.Sprintf("page%06d", i+1)] = i
	}
	qWant := 0
	check := func(step int) {
		t.Helper()
		require.NoError(t, view(ctx, r, func(tx *Tx) error {
			for round := range 2 { // the second round reads what the first evicted
				for id, v := range want {
					for range 2 { // the second read of a page in a row is a hit
						got, err := readInt(tx, "p", id)
						require.NoError(t, err, "step %d round %d page %s", step, round, id)
						require.Equal(t, v, got, "step %d page %s", step, id)
					}
				}
				m, err := tx.Match("q", "*")
				require.NoError(t, err)
				n := 0
				for _, objs := range m {
					n += len(objs)
				}
				require.Equal(t, qWant, n, "step %d: objects appended to q", step)
			}
			return nil
		}))
		require.LessOrEqual(t, r.cache.used(), r.cache.limit+512, "step %d: the cache stays within its bound", step)
	}
	for step := range 8 {
		for i := range 10 {
			id := fmt.Sprintf("page%06d", 1+(step*10+i)%nPages)
			_, _, err := update(ctx, w, func(tx *Tx) error {
				v, err := readInt(tx, "p", id)
				if err != nil {
					return err
				}
				return tx.UpdatePage("p", id, v+100)
			})
			require.NoError(t, err)
			want[id] += 100
			_, _, err = update(ctx, w, func(tx *Tx) error { _, err := tx.Insert("q", step*10+i); return err })
			require.NoError(t, err)
			qWant++
		}
		if step%2 == 1 {
			require.NoError(t, w.Checkpoint(ctx))
		}
		check(step)
	}
	require.Positive(t, r.cache.misses.Load())
	require.Positive(t, r.cache.hits.Load())
}
