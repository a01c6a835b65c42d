package txn

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

// armFaults installs fault hooks for one test and removes them afterwards. Tests that use the
// hooks do not run in parallel: the hooks are process-wide.
func armFaults(t *testing.T, inject func(faultPoint) error, synced func(uint64, int64), queued func(int)) {
	t.Helper()
	store := func(i func(faultPoint) error, s func(uint64, int64), q func(int)) {
		faults.inject.Store(ptrOrNil(i))
		faults.synced.Store(ptrOrNil(s))
		faults.queued.Store(ptrOrNil(q))
	}
	store(inject, synced, queued)
	t.Cleanup(func() { store(nil, nil, nil) })
}

// ptrOrNil returns a pointer to fn, or nil for a nil fn (an unarmed hook).
func ptrOrNil[F any](fn F) *F {
	if reflect.ValueOf(fn).IsNil() {
		return nil
	}
	return &fn
}

var errInjected = errors.New("injected fault")

// Every acknowledged commit's record was covered by a log fsync before Commit returned. The same
// check run with NoSync must find violations (the checker can fail).
func TestDurabilityEveryAckCovered(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		t.Run(fmt.Sprintf("nosync=%v", noSync), func(t *testing.T) {
			dir := t.TempDir()
			db := mustOpen(t, dir, Config{NoSync: noSync})
			_, _, err := update(context.Background(), db, func(tx *Tx) error { return tx.CreateNamespace("d") })
			require.NoError(t, err)
			var covered atomic.Int64
			armFaults(t, nil, func(seg uint64, off int64) {
				for {
					c := covered.Load()
					if off <= c || covered.CompareAndSwap(c, off) {
						return
					}
				}
			}, nil)
			type ack struct {
				tsn     pages.TSN
				covered int64
			}
			var (
				mu   sync.Mutex
				acks []ack
				wg   sync.WaitGroup
			)
			for g := 0; g < 8; g++ {
				wg.Go(func() {
					for i := 0; i < 25; i++ {
						tsn, _, err := update(context.Background(), db, func(tx *Tx) error {
							_, err := tx.Insert("d", i)
							return err
						})
						if err != nil {
							t.Error(err)
							return
						}
						c := covered.Load()
						mu.Lock()
						acks = append(acks, ack{tsn, c})
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			ends := recordEnds(t, dir)
			violations := 0
			for _, a := range acks {
				end, ok := ends[a.tsn]
				require.True(t, ok, "acked tsn %d has no record", a.tsn)
				if end.Off > a.covered { // one segment: the test never rotates
					violations++
				}
			}
			if noSync {
				require.Positive(t, violations, "the checker must notice commits that were never fsynced")
			} else {
				require.Zero(t, violations, "acknowledged commits not covered by an fsync before Commit returned")
			}
		})
	}
}

// The Nth log write, fsync, truncate or state write fails: each caller gets a clean error or
// ErrCommitUnknown, nothing of a failed commit is visible, no TSN is used up, and a new handle
// opens the directory cleanly.
func TestCommitFaults(t *testing.T) {
	type tc struct {
		name   string
		point  faultPoint
		broken bool // truncation fails too: the outcome is unknown
	}
	cases := []tc{
		{"write", faultLogWrite, false},
		{"fsync", faultLogSync, false},
		{"state", faultStateWrite, false},
		{"fsync+truncate", faultLogSync, true},
		{"write+truncate", faultLogWrite, true},
	}
	for _, c := range cases {
		for n := 1; n <= 5; n++ {
			t.Run(fmt.Sprintf("%s/%d", c.name, n), func(t *testing.T) {
				dir := t.TempDir()
				setupPair(t, dir, Config{})
				var hits atomic.Int64
				var failed atomic.Bool
				armFaults(t, func(p faultPoint) error {
					if p == c.point && hits.Add(1) == int64(n) {
						failed.Store(true)
						return errInjected
					}
					if c.broken && p == faultLogErase && failed.Load() {
						return errInjected
					}
					return nil
				}, nil, nil)
				db, err := Open(context.Background(), dir, Config{})
				require.NoError(t, err)
				acked, unknown, clean := 0, false, 0
				for i := 0; i < 8 && !unknown; i++ {
					tx, err := db.Begin(context.Background(), true)
					require.NoError(t, err)
					v, err := bumpPair(tx)
					require.NoError(t, err)
					err = tx.Commit()
					switch {
					case err == nil:
						require.Equal(t, acked+1, v, "a failed commit must not be visible")
						acked++
					case errors.Is(err, ErrCommitUnknown):
						require.True(t, c.broken, "ErrCommitUnknown although the log could be repaired: %v", err)
						require.ErrorIs(t, err, errInjected)
						unknown = true
						_, err := db.Begin(context.Background(), true)
						require.ErrorIs(t, err, ErrBroken, "a broken handle refuses further work")
						require.NotErrorIs(t, err, ErrCommitUnknown, "work never attempted is not 'unknown'")
					default:
						require.ErrorIs(t, err, errInjected)
						clean++
					}
				}
				require.True(t, failed.Load(), "the fault was never reached")
				require.Equal(t, !c.broken, clean == 1 && !unknown, "exactly one clean failure expected")
				_ = db.Close()
				armFaults(t, nil, nil, nil)

				db2 := mustOpen(t, dir, Config{})
				var v int
				require.NoError(t, view(context.Background(), db2, func(tx *Tx) error {
					v, err = readInt(tx, "c", "page000001")
					return err
				}))
				require.GreaterOrEqual(t, v, acked)
				if !unknown {
					require.Equal(t, acked, v, "store holds exactly the acknowledged commits")
				}
				var v2 int
				tsn, _, err := update(context.Background(), db2, func(tx *Tx) error { v2, err = bumpPair(tx); return err })
				require.NoError(t, err, "a new handle carries on")
				require.Equal(t, pages.TSN(v2+1), tsn, "TSN = setup + one per increment: no TSN used up by a failed commit")
				if unknown {
					t.Logf("unknown commit turned out to have happened: %v", v2 == acked+2)
				}
			})
		}
	}
}

// 8 goroutines x 100 increments of one page in one process end at exactly 800.
func TestGroupCommitIncrements(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	db := mustOpen(t, dir, Config{})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for i := 0; i < 100; i++ {
				if _, _, err := update(context.Background(), db, func(tx *Tx) error { _, err := bumpPair(tx); return err }); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, view(context.Background(), db, func(tx *Tx) error {
		v, err := readInt(tx, "c", "page000001")
		require.Equal(t, 800, v)
		return err
	}))
	s := db.Stats()
	t.Logf("groups %d commits %d fsyncs %d max group %d", s.Groups, s.Commits, s.Fsyncs, s.MaxSize)
}

// With the leader held inside its fsync, k commits queued behind it share one fsync.
func TestGroupCommitSharesFsync(t *testing.T) {
	const k = 8
	dir := t.TempDir()
	db := mustOpen(t, dir, Config{OneObjectPerPage: true})
	_, _, err := update(context.Background(), db, func(tx *Tx) error {
		if err := tx.CreateNamespace("g"); err != nil {
			return err
		}
		for i := 0; i <= k; i++ {
			if _, err := tx.Insert("g", 0); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)

	hold, entered := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	var inSubmit atomic.Int64
	queued := make(chan int64, 4*k)
	armFaults(t, func(p faultPoint) error {
		if p == faultLogSync && first.CompareAndSwap(false, true) {
			close(entered)
			<-hold
		}
		return nil
	}, nil, func(d int) { queued <- inSubmit.Add(int64(d)) })

	before := db.Stats()
	bump := func(page int) error {
		tx, err := db.Begin(context.Background(), true)
		if err != nil {
			return err
		}
		id := pages.PageID(uint64(page))
		if _, err := tx.ReadPage("g", id); err != nil {
			return err
		}
		if err := tx.UpdatePage("g", id, page); err != nil {
			return err
		}
		return tx.Commit()
	}
	var wg sync.WaitGroup
	errs := make(chan error, k+1)
	wg.Go(func() { errs <- bump(1) })
	select {
	case <-entered:
	case <-time.After(longStop):
		t.Fatal("leader never reached its fsync")
	}
	for i := 2; i <= k+1; i++ {
		wg.Go(func() { errs <- bump(i) })
	}
	deadline := time.After(longStop)
	for n := int64(0); n != k+1; {
		select {
		case n = <-queued:
		case <-deadline:
			t.Fatalf("only %d of %d commits waiting", n, k+1)
		}
	}
	close(hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	after := db.Stats()
	require.Equal(t, int64(2), after.Groups-before.Groups, "the held group and one group of the k queued")
	require.Equal(t, int64(2), after.Fsyncs-before.Fsyncs, "k queued commits share one fsync")
	require.Equal(t, int64(k), after.MaxSize)
}

// A 1-page commit writes the same number of bytes to a 10-page store and to a 10,000-page store.
func TestCommitCostProportional(t *testing.T) {
	bytesFor := func(n int) int64 {
		dir := t.TempDir()
		db := mustOpen(t, dir, Config{OneObjectPerPage: true})
		_, _, err := update(context.Background(), db, func(tx *Tx) error { return tx.CreateNamespace("p") })
		require.NoError(t, err)
		for done := 0; done < n; {
			batch := min(1000, n-done)
			_, _, err := update(context.Background(), db, func(tx *Tx) error {
				for i := 0; i < batch; i++ {
					if _, err := tx.Insert("p", i); err != nil {
						return err
					}
				}
				return nil
			})
			require.NoError(t, err)
			done += batch
		}
		before, err := db.state.Read()
		require.NoError(t, err)
		_, _, err = update(context.Background(), db, func(tx *Tx) error {
			if _, err := tx.ReadPage("p", "page000005"); err != nil {
				return err
			}
			return tx.UpdatePage("p", "page000005", "changed")
		})
		require.NoError(t, err)
		after, err := db.state.Read()
		require.NoError(t, err)
		require.Equal(t, before.Pos.Seg, after.Pos.Seg)
		return after.Pos.Off - before.Pos.Off
	}
	small, large := bytesFor(10), bytesFor(10000)
	t.Logf("log bytes for a 1-page commit: 10-page store %d, 10,000-page store %d", small, large)
	require.InDelta(t, small, large, 4, "only the TSN's digits may differ")
}

// An insert that appends to a page writes its object to the log, not the whole page; a process
// that reads the log back rebuilds the same page.
func TestInsertCostProportional(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir, Config{})
	_, _, err := update(context.Background(), db, func(tx *Tx) error { return tx.CreateNamespace("q") })
	require.NoError(t, err)
	var deltas []int64
	var ids []string
	for i := 0; i < 60; i++ {
		before, err := db.state.Read()
		require.NoError(t, err)
		_, _, err = update(context.Background(), db, func(tx *Tx) error {
			id, err := tx.Insert("q", map[string]int{"job": 1000 + i})
			ids = append(ids, id)
			return err
		})
		require.NoError(t, err)
		after, err := db.state.Read()
		require.NoError(t, err)
		deltas = append(deltas, after.Pos.Off-before.Pos.Off)
	}
	require.Equal(t, ids[1], ids[59], "small inserts share a page")
	require.InDelta(t, deltas[2], deltas[59], 4, "the 60th insert into a page writes as much as the 3rd")
	other := mustOpen(t, dir, Config{})
	require.NoError(t, view(context.Background(), other, func(tx *Tx) error {
		objs, err := tx.ReadPage("q", ids[59])
		require.NoError(t, err)
		first := slices.Index(ids, ids[59])
		require.Len(t, objs, 60-first)
		for i, o := range objs {
			var v map[string]int
			require.NoError(t, o.Decode(&v))
			require.Equal(t, 1000+first+i, v["job"], "object %d of the rebuilt page", i)
		}
		return nil
	}))
}
