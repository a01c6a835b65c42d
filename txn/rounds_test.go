package txn

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// PROTOCOL.md, "Commit (group commit)": a handle that fsyncs commits its own requests that queued
// during a group's fsync in a further round of the same lock hold, and the first group's caller
// returns before that round is written. A NoSync handle's queued request waits for the next lock
// acquisition instead. The first group is held at its log write until the second request is
// queued; the test counts lock acquisitions and looks, at the second group's log write, whether the
// first commit has returned.
func TestQueuedCommitsJoinLaterRound(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		t.Run(map[bool]string{false: "fsync", true: "nosync"}[noSync], func(t *testing.T) {
			dir := t.TempDir()
			setupPair(t, dir, Config{})
			db := mustOpen(t, dir, Config{OneObjectPerPage: true, NoSync: noSync})
			ctx := context.Background()

			var writes, locks atomic.Int32
			held, release := make(chan struct{}), make(chan struct{})
			firstReturned := make(chan struct{})
			var returnedAtSecond atomic.Bool
			queued := make(chan struct{}, 4)
			armFaults(t, func(p faultPoint) error {
				if p != faultLogWrite {
					return nil
				}
				switch writes.Add(1) {
				case 1:
					close(held)
					<-release
				case 2:
					select { // the caller's goroutine may not have run yet: wait for it, boundedly
					case <-firstReturned:
						returnedAtSecond.Store(true)
					case <-time.After(longStop):
					}
				}
				return nil
			}, nil, func(d int) {
				if d > 0 {
					queued <- struct{}{}
				}
			})
			lockHook := func(*DB) { locks.Add(1) }
			faults.locked.Store(&lockHook)
			t.Cleanup(func() { faults.locked.Store(nil) })

			var wg sync.WaitGroup
			errs := make([]error, 2)
			wg.Go(func() {
				_, _, errs[0] = update(ctx, db, addTo("page000001", 1))
				close(firstReturned)
			})
			<-queued
			<-held
			wg.Go(func() { _, _, errs[1] = update(ctx, db, addTo("page000002", 1)) })
			<-queued // the second request waits in the queue while the first group holds the lock
			close(release)
			wg.Wait()
			waitLeadIdle(db)
			require.NoError(t, errs[0])
			require.NoError(t, errs[1])
			require.EqualValues(t, 2, writes.Load(), "two groups")
			if noSync {
				require.EqualValues(t, 2, locks.Load(), "a NoSync handle takes the lock again for its queued request")
				return
			}
			require.EqualValues(t, 1, locks.Load(), "the queued request commits under the same lock hold")
			require.True(t, returnedAtSecond.Load(), "the first commit returns before the second round is written")
			require.EqualValues(t, 2, db.Stats().Fsyncs)
		})
	}
}

// An announcement whose write failed may still be read by a holder (on FUSE a failed write's
// bytes stay in the page cache, where a mapping sees them). The owner withdraws it; a holder that
// took it first committed it, and the owner then learns that outcome instead of committing the
// transaction a second time.
func TestFailedAnnouncementTakenIsLearned(t *testing.T) {
	a, b := wakeablePair(t)
	locked, offered, decided := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var lockOnce, offerOnce, wokeOnce sync.Once
	rec := func(db *DB, _ bool) {
		if db == a {
			lockOnce.Do(func() { close(locked); <-offered })
		}
	}
	woke := func(db *DB) {
		if db == a {
			wokeOnce.Do(func() { close(decided) })
		}
	}
	faults.recovered.Store(&rec)
	faults.woke.Store(&woke)
	t.Cleanup(func() { faults.recovered.Store(nil); faults.woke.Store(nil) })
	armFaults(t, func(p faultPoint) error {
		if p != faultAnnounced {
			return nil
		}
		failed := false
		offerOnce.Do(func() {
			failed = true
			close(offered)
			select { // the holder takes and decides the offer before the owner withdraws it
			case <-decided:
			case <-time.After(longStop):
			}
		})
		if failed {
			return errInjected
		}
		return nil
	}, nil, nil)

	bDone := make(chan error, 1)
	require.NoError(t, holderThenOfferer(a, b, locked, bDone))
	require.NoError(t, <-bDone, "the holder committed the offer: the owner's commit succeeded")
	waitLeadIdle(a)
	require.NoError(t, view(context.Background(), a, func(tx *Tx) error {
		v, err := readInt(tx, "c", "page000002")
		require.NoError(t, err)
		require.Equal(t, 10, v, "the offered transaction committed exactly once")
		return nil
	}))
	require.EqualValues(t, 1, a.Stats().Served)
	require.EqualValues(t, 1, b.Stats().Delegated)
}
