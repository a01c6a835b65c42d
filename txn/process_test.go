package txn

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

// 4 processes x 250 increments of one counter (a pair of pages) end at exactly 1000.
func TestProcessesIncrement(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	const procs, each = 4, 250
	var kids []*child
	for i := 0; i < procs; i++ {
		kids = append(kids, startChild(t, "bumper", configEnv(t, childConfig{Dir: dir, N: each})))
	}
	for _, k := range kids {
		lines, err := k.all(t)
		require.NoError(t, err, "child output: %v", tail(lines))
		require.Contains(t, strings.Join(lines, "\n"), "attempts")
	}
	db := mustOpen(t, dir, Config{})
	require.NoError(t, view(context.Background(), db, func(tx *Tx) error {
		a, err := readInt(tx, "c", "page000001")
		require.NoError(t, err)
		require.Equal(t, procs*each, a, "counter after %d x %d increments", procs, each)
		return nil
	}))
}

// 8 processes allocate TSNs that are unique and gap-free.
func TestProcessesTSNsUniqueGapFree(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir, Config{})
	setupTSN, _, err := update(context.Background(), db, func(tx *Tx) error { return tx.CreateNamespace("t") })
	require.NoError(t, err)
	require.NoError(t, db.Close())
	const procs, each = 8, 40
	var kids []*child
	for i := 0; i < procs; i++ {
		kids = append(kids, startChild(t, "inserter", configEnv(t, childConfig{Dir: dir, N: each})))
	}
	var tsns []int
	for _, k := range kids {
		lines, err := k.all(t)
		require.NoError(t, err, "child output: %v", tail(lines))
		for _, l := range lines {
			if rest, ok := strings.CutPrefix(l, "tsn "); ok {
				tsns = append(tsns, atoi(t, rest))
			}
		}
	}
	require.Len(t, tsns, procs*each)
	slices.Sort(tsns)
	for i, got := range tsns {
		require.Equal(t, int(setupTSN)+1+i, got, "TSNs must be unique and gap-free: sorted[%d]", i)
	}
}

// A reader in another process never sees half of a multi-page transaction.
func TestProcessesNoTornReads(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	n := 2000
	if testing.Short() {
		n = 500
	}
	w := startChild(t, "bumper", configEnv(t, childConfig{Dir: dir, N: n / 4}))
	r := startChild(t, "reader", configEnv(t, childConfig{Dir: dir, N: n}))
	rl, err := r.all(t)
	require.NoError(t, err, "reader output: %v", tail(rl))
	wl, err := w.all(t)
	require.NoError(t, err, "writer output: %v", tail(wl))
}

// A View in one process completes while another process holds the commit lock: reads take no
// file lock.
func TestViewWhileLockHeld(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	db := mustOpen(t, dir, Config{})
	h := startChild(t, "holder", configEnv(t, childConfig{Dir: dir}))
	h.expect(t, "locked")
	require.NoError(t, view(context.Background(), db, func(tx *Tx) error {
		v, err := readInt(tx, "c", "page000002")
		require.NoError(t, err)
		require.Equal(t, 0, v)
		return nil
	}))
	// A commit, by contrast, must wait: with a short lock timeout it fails with ErrLockTimeout
	// and changes nothing.
	short := mustOpen(t, dir, Config{LockTimeout: 50 * 1e6})
	_, _, err := update(context.Background(), short, func(tx *Tx) error { _, err := bumpPair(tx); return err })
	require.ErrorIs(t, err, errLockTimeout())
	h.send(t, "release")
	_, err = h.all(t)
	require.NoError(t, err)
	require.NoError(t, view(context.Background(), db, func(tx *Tx) error {
		v, err := readInt(tx, "c", "page000001")
		require.NoError(t, err)
		require.Equal(t, 0, v, "a commit that timed out on the lock must not be visible")
		require.Equal(t, pages.TSN(1), tx.Snapshot())
		return nil
	}))
}

func tail(lines []string) []string {
	if len(lines) > 5 {
		return lines[len(lines)-5:]
	}
	return lines
}

// Several processes creating the same new directory at once all end up in the same store.
func TestProcessesCreateSameStore(t *testing.T) {
	for round := 0; round < 3; round++ {
		dir := filepath.Join(t.TempDir(), "new", "store")
		var kids []*child
		for i := 0; i < 4; i++ {
			kids = append(kids, startChild(t, "creator", configEnv(t, childConfig{Dir: dir})))
		}
		var want []string
		for _, k := range kids {
			want = append(want, k.expect(t, "created"))
			_, err := k.all(t)
			require.NoError(t, err)
		}
		db := mustOpen(t, dir, Config{})
		tx, err := db.Begin(context.Background(), false)
		require.NoError(t, err)
		got, err := tx.Namespaces()
		require.NoError(t, err)
		require.ElementsMatch(t, want, got, "every creator's namespace is in the one store")
		require.NoError(t, tx.Rollback())
	}
}

// 4 processes x 200 single-insert transactions into one namespace: 800 objects, zero conflicts,
// zero retries; in both layouts (appending to pages, and a page per object).
func TestProcessesInsertNoConflicts(t *testing.T) {
	for _, packed := range []bool{true, false} {
		t.Run(fmt.Sprintf("packed=%v", packed), func(t *testing.T) {
			dir := t.TempDir()
			db := mustOpen(t, dir, Config{})
			_, _, err := update(context.Background(), db, func(tx *Tx) error { return tx.CreateNamespace("t") })
			require.NoError(t, err)
			const procs, each = 4, 200
			var kids []*child
			for i := 0; i < procs; i++ {
				kids = append(kids, startChild(t, "inserter", configEnv(t, childConfig{Dir: dir, N: each, Packed: packed})))
			}
			attempts := 0
			for _, k := range kids {
				attempts += atoi(t, k.expect(t, "attempts"))
				_, err := k.all(t)
				require.NoError(t, err)
			}
			require.Equal(t, procs*each, attempts, "every insert committed at its first attempt")
			seen := map[string]bool{}
			require.NoError(t, view(context.Background(), db, func(tx *Tx) error {
				pages, err := tx.Match("t", "*")
				require.NoError(t, err)
				for _, objs := range pages {
					for _, o := range objs {
						require.False(t, seen[o.Text()], "object %s stored twice", o.Text())
						seen[o.Text()] = true
					}
				}
				return nil
			}))
			require.Len(t, seen, procs*each, "every inserted object is there exactly once")
		})
	}
}
