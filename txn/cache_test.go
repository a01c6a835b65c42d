package txn

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
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

// Versions that left their page's history leave the cache too: a page rewritten many times by a
// handle no reader pins costs the cache about one version, not one per commit (they used to stay
// charged, and in memory, until the list evicted them, crowding out live pages).
func TestSupersededVersionsLeaveCache(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db := mustOpen(t, dir, Config{NoSync: true})
	big := strings.Repeat("x", 4000)
	_, _, err := update(ctx, db, func(tx *Tx) error {
		if err := tx.CreateNamespace("p"); err != nil {
			return err
		}
		_, err := tx.Insert("p", map[string]any{"v": 0, "pad": big})
		return err
	})
	require.NoError(t, err)
	for i := 1; i <= 200; i++ {
		_, _, err := update(ctx, db, func(tx *Tx) error {
			if _, err := tx.ReadPage("p", "page000001"); err != nil {
				return err
			}
			return tx.UpdatePage("p", "page000001", map[string]any{"v": i, "pad": big})
		})
		require.NoError(t, err)
	}
	require.Less(t, db.cache.used(), int64(4*len(big)), "cache bytes after 200 rewrites of one 4 kB page")
}

// A version evicted from the cache is read again from its own op in the record, not the whole
// record: a byte changed in another page's op of the same record does not stop it (the whole
// record's checksum would), and the changed page reads as corrupt.
func TestReloadReadsItsOwnOp(t *testing.T) {
	db, _, seg, data := markedPages(t)
	ctx := context.Background()
	at := bytes.Index(data, []byte("BBBBBBBB"))
	require.Positive(t, at)
	data[at] = 'C'
	require.NoError(t, os.WriteFile(seg, data, 0o644))

	read := func(page string) ([]pages.Object, error) {
		var objs []pages.Object
		err := view(ctx, db, func(tx *Tx) error {
			var err error
			objs, err = tx.ReadPage("p", page)
			return err
		})
		return objs, err
	}
	for range 2 { // each read evicts the other page (the cache holds one version)
		objs, err := read("page000001")
		require.NoError(t, err)
		require.Len(t, objs, 1)
		require.Contains(t, objs[0].Text(), "AAAAAAAA")
		_, err = read("page000002")
		require.ErrorIs(t, err, pages.ErrCorrupt)
	}
}

// markedPages opens a handle with a cache of one version over a new store whose one record put
// two pages, {"mark":"AAAAAAAA"} and {"mark":"BBBBBBBB"}, and returns it with the store's
// folder and the path and bytes of the log segment holding the record, for a test to damage
// (the store is not checked at the end).
func markedPages(t *testing.T) (db *DB, dir, seg string, data []byte) {
	t.Helper()
	dir = t.TempDir()
	skipCheck(dir)
	db = mustOpen(t, dir, Config{CacheSize: 1, LogRetention: -1, CheckpointEvery: time.Hour, OneObjectPerPage: true})
	_, _, err := update(context.Background(), db, func(tx *Tx) error {
		if err := tx.CreateNamespace("p"); err != nil {
			return err
		}
		if _, err := tx.Insert("p", map[string]any{"mark": "AAAAAAAA"}); err != nil {
			return err
		}
		_, err := tx.Insert("p", map[string]any{"mark": "BBBBBBBB"})
		return err
	})
	require.NoError(t, err)
	segs := segsOf(t, dir)
	seg = filepath.Join(dir, pages.MetaDir, logDirName, wal.SegName(segs[len(segs)-1]))
	data, err = os.ReadFile(seg)
	require.NoError(t, err)
	return db, dir, seg, data
}
