package txn

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// maxRun returns the longest run of append ops on page of ns in the log, counted from the last
// put before each.
func maxRun(t *testing.T, dir, ns, page string) int {
	t.Helper()
	var run, longest int
	for _, o := range pageOps(t, dir, ns, pages.JSON) {
		if o.Page != page {
			continue
		}
		switch o.Kind {
		case wal.OpPut:
			run = 0
		case wal.OpAppend:
			run++
			longest = max(longest, run)
		}
	}
	return longest
}

// Readers of a handle that was open all along (its index has the whole run) still read every
// version after handles opened from checkpoints made the run long, and after further checkpoints.
func TestLongRunReadersAfterCheckpointOpens(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyedStore(t, dir)
	reader := mustOpen(t, dir, Config{CacheSize: 1})
	w := mustOpen(t, dir, Config{})
	var pins []*Tx
	var want [][]row
	cur := []row{{"a", 0}}
	for round := range 4 {
		for i := range maxAppends - 1 {
			key := fmt.Sprintf("r%d-%02d", round, i)
			_, _, err := update(ctx, w, func(tx *Tx) error {
				return tx.AppendPage("t", "page000001", key, row{key, i})
			})
			require.NoError(t, err)
			cur = append(cur, row{key, i})
			tx, err := reader.Begin(ctx, false)
			require.NoError(t, err)
			t.Cleanup(func() { _ = tx.Rollback() })
			pins = append(pins, tx)
			want = append(want, append([]row(nil), cur...))
		}
		require.NoError(t, w.Checkpoint(ctx))
		require.NoError(t, w.Close())
		w = mustOpen(t, dir, Config{})
	}
	require.NoError(t, w.Checkpoint(ctx))
	t.Logf("longest run %d", maxRun(t, dir, "t", "page000001"))
	for i, tx := range pins {
		got, err := decodeRows(tx.ReadPage("t", "page000001"))
		require.NoError(t, err, "pinned %d at %d", i, tx.Snapshot())
		require.Equal(t, want[i], got, "pinned %d", i)
	}
}

// flipInRecord overwrites one byte in the middle of the log record that wrote the version back
// appends below the latest of page n of "t" (following the chain of bases in the handle's index)
// and returns a function that puts it back.
func flipInRecord(t *testing.T, db *DB, n uint64, back int) func() {
	t.Helper()
	x := db.idxp.Load()
	x.mu.RLock()
	inc := x.incAt("t", x.applied)
	v := x.incs[inc].pages[n].latest()
	for range back {
		v = v.base
	}
	loc := v.loc
	x.mu.RUnlock()
	require.NotZero(t, loc.seg, "the version has a record")
	f, err := os.OpenFile(filepath.Join(db.logDir, wal.SegName(loc.seg)), os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	at := loc.off + loc.n/2
	b := make([]byte, 1)
	_, err = f.ReadAt(b, at)
	require.NoError(t, err)
	orig := b[0]
	b[0] ^= 0x01
	_, err = f.WriteAt(b, at)
	require.NoError(t, err)
	return func() {
		f, err := os.OpenFile(filepath.Join(db.logDir, wal.SegName(loc.seg)), os.O_RDWR, 0)
		require.NoError(t, err)
		defer f.Close()
		_, err = f.WriteAt([]byte{orig}, at)
		require.NoError(t, err)
	}
}

// A keyed append written whole needs the page's latest contents under the commit lock; when they
// cannot be loaded (here a record of the page's run fails its checksum) the commit fails with a
// plain error: no TSN used, nothing of it visible, the handle still usable, and once the record
// reads again the same append commits.
func TestWriteWholeLoadFails(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyedStore(t, dir)
	db := mustOpen(t, dir, Config{CacheSize: 1})
	appendKey := func(key string) error {
		_, _, err := update(ctx, db, func(tx *Tx) error {
			return tx.AppendPage("t", "page000001", key, row{key, 1})
		})
		return err
	}
	for i := range maxAppends {
		require.NoError(t, appendKey(fmt.Sprintf("k%02d", i)))
	}
	tx := begin(t, db)
	require.NoError(t, tx.AppendPage("t", "page000001", "whole", row{"whole", 1}))
	// Evict page000001's contents (read the other page), then break a record of its run.
	_ = rows(t, db, "t", "page000002")
	restore := flipInRecord(t, db, 1, maxAppends/2)
	before := readStateOf(t, dir)
	err := tx.Commit()
	require.Error(t, err)
	t.Logf("the failed commit: %v", err)
	require.ErrorIs(t, err, pages.ErrCorrupt)
	require.NotErrorIs(t, err, ErrConflict)
	require.NotErrorIs(t, err, ErrCommitUnknown)
	require.NoError(t, db.usable())
	require.Equal(t, before.TSN, readStateOf(t, dir).TSN, "no TSN used")
	// The handle still commits what does not need the page.
	_, _, err = update(ctx, db, func(tx *Tx) error {
		if _, err := tx.ReadPage("t", "page000002"); err != nil {
			return err
		}
		return tx.UpdatePage("t", "page000002", row{"y", 1})
	})
	require.NoError(t, err)
	restore()
	require.NoError(t, appendKey("whole"))
	got := rows(t, db, "t", "page000001")
	require.Len(t, got, 2+maxAppends)
	require.Equal(t, "whole", got[len(got)-1].K)
	ops := pageOps(t, dir, "t", pages.JSON)
	last := ops[len(ops)-1]
	require.Equal(t, wal.OpPut, last.Kind, "written whole")
	require.Equal(t, []string{"whole"}, last.Keys)
}

// A keyed append written whole that cannot load its page fails alone: a member of its group that
// only creates a page has nothing to do with that page and commits (it used to get the other
// member's error, one matching pages.ErrCorrupt, and callers that retry only conflicts gave up).
func TestWriteWholeLoadFailsInGroup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyedStore(t, dir)
	db := mustOpen(t, dir, Config{CacheSize: 1})
	for i := range maxAppends {
		key := fmt.Sprintf("k%02d", i)
		_, _, err := update(ctx, db, func(tx *Tx) error {
			return tx.AppendPage("t", "page000001", key, row{key, 1})
		})
		require.NoError(t, err)
	}
	t1, t2 := begin(t, db), begin(t, db)
	require.NoError(t, t1.AppendPage("t", "page000001", "whole", row{"whole", 1}))
	_, err := t2.NewPage("t", row{"innocent", 1})
	require.NoError(t, err)
	_ = rows(t, db, "t", "page000002")
	restore := flipInRecord(t, db, 1, maxAppends/2)
	errs := inOneGroupAnyOutcome(t, db, t1.Commit, t2.Commit)
	require.ErrorIs(t, errs[0], pages.ErrCorrupt)
	require.NoError(t, errs[1], "a member that does not touch the page")
	restore()
	require.Len(t, rows(t, db, "t", "page000001"), 1+maxAppends, "nothing of the failed member")
}

func inOneGroupAnyOutcome(t *testing.T, db *DB, commits ...func() error) []error {
	t.Helper()
	hold, entered := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	var inSubmit atomic.Int64
	queued := make(chan int64, 4*len(commits)+4)
	armFaults(t, func(p faultPoint) error {
		if p == faultLogSync && first.CompareAndSwap(false, true) {
			close(entered)
			<-hold
		}
		return nil
	}, nil, func(d int) { queued <- inSubmit.Add(int64(d)) })
	lead := make(chan error, 1)
	go func() {
		_, _, err := update(context.Background(), db, func(tx *Tx) error {
			if _, err := tx.ReadPage("t", "page000002"); err != nil {
				return err
			}
			return tx.UpdatePage("t", "page000002", row{"lead", 1})
		})
		lead <- err
	}()
	select {
	case <-entered:
	case <-time.After(longStop):
		t.Fatal("leader never reached its fsync")
	}
	errs := make([]error, len(commits))
	var wg sync.WaitGroup
	deadline := time.After(longStop)
	for i, c := range commits {
		wg.Go(func() { errs[i] = c() })
		for n := int64(0); n != int64(i+2); { // the leader and the commits queued so far
			select {
			case n = <-queued:
			case <-deadline:
				t.Fatalf("only %d of %d commits waiting", n, i+2)
			}
		}
	}
	close(hold)
	wg.Wait()
	require.NoError(t, <-lead)
	return errs
}
