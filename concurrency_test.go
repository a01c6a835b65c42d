package txtdb

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Transactions on several handles of one directory stand in for transactions in several
// processes: handles coordinate only through the files, exactly like processes.

func TestUpdateRetriesConflicts(t *testing.T) {
	// Read-modify-write increments of one counter page via Update, which retries conflicts.
	tests := []struct {
		name       string
		handles    int
		goroutines int // per handle
		each       int // increments per goroutine
		iso        Isolation
		long       bool
	}{
		{"2 handles x 100", 2, 1, 100, Serializable, false},
		{"1 handle x 8 goroutines x 100 (group commit)", 1, 8, 100, Serializable, false},
		{"1 handle x 8 goroutines x 50 (group commit), snapshot isolation", 1, 8, 50, Snapshot, false},
		{"2 handles x 2 goroutines x 50, snapshot isolation", 2, 2, 50, Snapshot, false},
		{"4 handles x 4 goroutines x 100", 4, 4, 100, Serializable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.long && testing.Short() {
				t.Skip("long case; skipped in -short")
			}
			dir := t.TempDir()
			dbs := openN(t, dir, tt.handles, &Options{Isolation: tt.iso})
			id := seedPages(t, dir, "counters", 0)[0]
			before := lastTSN(t, dbs[0])
			want := tt.handles * tt.goroutines * tt.each
			var (
				calls atomic.Int64
				wg    sync.WaitGroup
				errs  = make(chan error, want)
			)
			for _, db := range dbs {
				for range tt.goroutines {
					wg.Go(func() {
						for range tt.each {
							errs <- db.Update(t.Context(), func(tx *Tx) error {
								calls.Add(1)
								return incr(tx, "counters", id)
							})
						}
					})
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err, "Update")
			}
			for h, db := range dbs {
				assert.Equal(t, want, committedN(t, db, "counters", id), "handle %d: counter", h)
			}
			assert.Equal(t, before+TSN(want), lastTSN(t, dbs[0]), "TSN: exactly one per increment")
			assert.GreaterOrEqual(t, calls.Load(), int64(want), "fn calls")
			t.Logf("%d fn calls for %d increments (%d retries)", calls.Load(), want, calls.Load()-int64(want))
		})
	}
}

func TestLostUpdateConcurrentCommits(t *testing.T) {
	// k transactions of one handle read and update one page at one snapshot, then commit at
	// once, so they meet in one commit group: exactly one wins.
	for _, tc := range []struct {
		k   int
		iso Isolation
	}{{2, Serializable}, {8, Serializable}, {8, Snapshot}} {
		k := tc.k
		t.Run(fmt.Sprintf("%d transactions/%v", k, tc.iso), func(t *testing.T) {
			dir := t.TempDir()
			db := mustOpen(t, dir, &Options{Isolation: tc.iso})
			id := seedPages(t, dir, "acct", 0)[0]
			before := lastTSN(t, db)
			txs := make([]*Tx, k)
			for i := range txs {
				txs[i] = mustBegin(t, db, true)
				require.Equal(t, 0, readN(t, txs[i], "acct", id))
				require.NoError(t, txs[i].UpdatePage("acct", id, item{N: i + 1}))
			}
			errs := make([]error, k)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, tx := range txs {
				wg.Go(func() {
					<-start
					errs[i] = tx.Commit()
				})
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, err := range errs {
				if err == nil {
					require.Equal(t, -1, winner, "transactions %d and %d both committed", winner, i)
					winner = i
					continue
				}
				ce := conflictOf(t, err, before)
				assert.Equal(t, id, ce.Page, "tx %d ConflictError.Page", i)
				assert.Equal(t, before+1, ce.Committed, "tx %d ConflictError.Committed", i)
			}
			require.NotEqual(t, -1, winner, "no transaction committed")
			assert.Equal(t, winner+1, committedN(t, db, "acct", id), "value: the winner's")
			assert.Equal(t, before+1, lastTSN(t, db), "TSN: the losers used none")
		})
	}
}

func TestReadOfMissingPageIsARead(t *testing.T) {
	// T1 reads a page that does not exist yet; T2 creates exactly that page (its insert's page
	// ID is known before T1 reads) and commits. T1's read is stale, so under Serializable T1's
	// commit fails.
	for _, iso := range []Isolation{Serializable, Snapshot} {
		t.Run(iso.String(), func(t *testing.T) {
			dir := t.TempDir()
			dbs := openN(t, dir, 2, &Options{Isolation: iso})
			seedPages(t, dir, "ns", 1)
			seedPages(t, dir, "out")
			t1 := mustBegin(t, dbs[0], true)
			t2 := mustBegin(t, dbs[1], true)
			id, err := t2.Insert("ns", item{N: 2})
			require.NoError(t, err)
			_, err = t1.ReadPage("ns", id)
			require.ErrorIs(t, err, ErrNotFound, "T1: ReadPage of a page not yet committed")
			require.NoError(t, t2.Commit())
			_, err = t1.Insert("out", item{N: 3})
			require.NoError(t, err)
			err = t1.Commit()
			if iso == Snapshot {
				require.NoError(t, err, "T1 Commit under Snapshot")
				return
			}
			ce := conflictOf(t, err, t1.Snapshot())
			assert.Equal(t, id, ce.Page, "ConflictError.Page")
		})
	}
}

func TestPageIDsNeverReused(t *testing.T) {
	dir := t.TempDir()
	dbs := openN(t, dir, 2, &Options{OneObjectPerPage: true})
	old := seedPages(t, dir, "ns", 1, 2, 3)
	used := map[string]bool{}
	for _, id := range old {
		used[id] = true
	}
	// Delete every page, on one handle.
	require.NoError(t, dbs[0].Update(t.Context(), func(tx *Tx) error {
		for _, id := range old {
			if _, err := tx.ReadPage("ns", id); err != nil {
				return err
			}
			if err := tx.DeletePage("ns", id); err != nil {
				return err
			}
		}
		return nil
	}))
	// A rolled-back insert's page was never committed; a committed one is used.
	insert := func(db *DB, commit bool) string {
		tx := mustBegin(t, db, true)
		id, err := tx.Insert("ns", item{N: 9})
		require.NoError(t, err)
		if commit {
			require.NoError(t, tx.Commit())
		} else {
			require.NoError(t, tx.Rollback())
		}
		return id
	}
	for round, db := range []*DB{dbs[0], dbs[1], mustOpen(t, dir, nil), dbs[0]} {
		insert(db, false)
		id := insert(db, true)
		assert.False(t, used[id], "round %d: Insert returned page ID %s, already used before", round, id)
		used[id] = true
	}
}

func TestNoTornReads(t *testing.T) {
	// A writer keeps x and y equal, updating both in every transaction; readers on other
	// handles must never see one without the other.
	rounds := 200
	if testing.Short() {
		rounds = 50
	}
	dir := t.TempDir()
	dbs := openN(t, dir, 3, nil)
	ids := seedPages(t, dir, "pair", 0, 0)
	x, y := ids[0], ids[1]
	done := make(chan struct{})
	var (
		wg       sync.WaitGroup
		writeErr error
		readErrs = make([]error, 2)
		views    atomic.Int64
	)
	wg.Go(func() {
		defer close(done)
		for i := 1; i <= rounds; i++ {
			if writeErr = dbs[0].Update(t.Context(), func(tx *Tx) error {
				if _, err := tx.ReadPage("pair", x); err != nil {
					return err
				}
				if _, err := tx.ReadPage("pair", y); err != nil {
					return err
				}
				if err := tx.UpdatePage("pair", x, item{N: i}); err != nil {
					return err
				}
				return tx.UpdatePage("pair", y, item{N: i})
			}); writeErr != nil {
				return
			}
		}
	})
	for r, db := range dbs[1:] {
		wg.Go(func() {
			for last := -1; ; {
				select {
				case <-done:
					return
				default:
				}
				readErrs[r] = db.View(t.Context(), func(tx *Tx) error {
					vx, err := readPage(tx, "pair", x)
					if err != nil {
						return err
					}
					vy, err := readPage(tx, "pair", y)
					if err != nil {
						return err
					}
					if vx != vy {
						return fmt.Errorf("torn read at snapshot %d: x = %d, y = %d", tx.Snapshot(), vx, vy)
					}
					if vx < last {
						return fmt.Errorf("went back in time: %d after %d", vx, last)
					}
					last = vx
					return nil
				})
				views.Add(1)
				if readErrs[r] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, writeErr, "writer")
	for r, err := range readErrs {
		require.NoError(t, err, "reader %d", r)
	}
	assert.Equal(t, rounds, committedN(t, dbs[1], "pair", x))
	t.Logf("%d views during %d commits", views.Load(), rounds)
}

func readPage(tx *Tx, ns, id string) (int, error) {
	objs, err := tx.ReadPage(ns, id)
	if err != nil {
		return 0, err
	}
	return pageN(objs)
}

func TestMatchPatterns(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir, nil)
	ids := seedPages(t, dir, "ns", 1, 2, 3)
	tx := mustBegin(t, db, false)
	all := map[string]bool{}
	for _, id := range ids {
		all[id] = true
	}
	tests := []struct {
		pattern string
		want    func(id string) bool
	}{
		{"*", func(string) bool { return true }},
		{"", func(string) bool { return false }},
		{ids[1], func(id string) bool { return id == ids[1] }},
		{"page*", func(string) bool { return true }},
		{ids[0][:len(ids[0])-1] + "?", func(id string) bool { return len(id) == len(ids[0]) && id[:len(id)-1] == ids[0][:len(id)-1] }},
		{"*" + ids[2][len(ids[2])-1:], func(id string) bool { return id[len(id)-1] == ids[2][len(ids[2])-1] }},
		{"nomatch*", func(string) bool { return false }},
		{"?", func(string) bool { return false }},
	}
	for _, tt := range tests {
		got, err := tx.Match("ns", tt.pattern)
		require.NoError(t, err, "Match(%q)", tt.pattern)
		want := map[string]bool{}
		for id := range all {
			if tt.want(id) {
				want[id] = true
			}
		}
		gotIDs := map[string]bool{}
		for id := range got {
			gotIDs[id] = true
		}
		assert.Equal(t, want, gotIDs, "Match(%q) page IDs", tt.pattern)
	}
}

func TestUpdateGivesUpAfterMaxRetries(t *testing.T) {
	for _, maxRetries := range []int{1, 3} {
		t.Run(fmt.Sprintf("MaxRetries=%d", maxRetries), func(t *testing.T) {
			dir := t.TempDir()
			a := mustOpen(t, dir, &Options{MaxRetries: maxRetries})
			b := mustOpen(t, dir, nil)
			id := seedPages(t, dir, "counters", 0)[0]
			calls := 0
			err := a.Update(t.Context(), func(tx *Tx) error {
				calls++
				if err := incr(tx, "counters", id); err != nil {
					return err
				}
				// Every attempt loses: another "process" changes the page before it commits.
				return b.Update(t.Context(), func(tx *Tx) error { return incr(tx, "counters", id) })
			})
			ce := conflictOf(t, err, TSN(maxRetries)+1)
			assert.Equal(t, id, ce.Page, "ConflictError.Page")
			assert.Equal(t, maxRetries+1, calls, "fn calls: one attempt and MaxRetries retries")
			assert.Equal(t, calls, committedN(t, a, "counters", id), "counter: only the other handle's increments")
		})
	}
	t.Run("fn error is not retried", func(t *testing.T) {
		db := mustOpen(t, t.TempDir(), nil)
		sentinel := errors.New("stop")
		calls := 0
		err := db.Update(t.Context(), func(tx *Tx) error {
			calls++
			if err := tx.CreateNamespace("ns"); err != nil {
				return err
			}
			return sentinel
		})
		assert.ErrorIs(t, err, sentinel)
		assert.Equal(t, 1, calls, "fn calls")
		assert.Empty(t, namespaces(t, db), "namespaces after fn failed")
	})
}

func TestConcurrentInsertsDoNotConflict(t *testing.T) {
	tests := []struct {
		name       string
		handles    int
		perHandle  int // goroutines per handle
		perRoutine int // single-insert transactions per goroutine
		oneEach    bool
		long       bool // skipped in -short
	}{
		{name: "4 handles x 200", handles: 4, perHandle: 1, perRoutine: 200},
		{name: "2 handles x 4 goroutines x 100", handles: 2, perHandle: 4, perRoutine: 100},
		{name: "4 handles x 2 goroutines x 100, one object per page", handles: 4, perHandle: 2, perRoutine: 100, oneEach: true},
		{name: "8 handles x 100", handles: 8, perHandle: 1, perRoutine: 100, long: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if testing.Short() && tt.long {
				t.Skip("long case; skipped in -short")
			}
			dir := t.TempDir()
			dbs := openN(t, dir, tt.handles, &Options{OneObjectPerPage: tt.oneEach})
			seedPages(t, dir, "queue")
			var (
				calls atomic.Int64
				wg    sync.WaitGroup
				total = tt.handles * tt.perHandle * tt.perRoutine
				errs  = make(chan error, total)
			)
			for h, db := range dbs {
				for g := range tt.perHandle {
					wg.Go(func() {
						for i := range tt.perRoutine {
							errs <- db.Update(t.Context(), func(tx *Tx) error {
								calls.Add(1)
								_, err := tx.Insert("queue", item{N: (h*tt.perHandle+g)*tt.perRoutine + i})
								return err
							})
						}
					})
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err, "Update(Insert)")
			}
			assert.Equal(t, int64(total), calls.Load(), "fn calls: every insert must commit at the first attempt (zero conflicts)")
			want := make([]int, total)
			for i := range want {
				want[i] = i
			}
			for h, db := range dbs {
				assert.Equal(t, want, nsValues(t, mustBegin(t, db, false), "queue"), "handle %d: objects in queue", h)
			}
		})
	}
}
