package txn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/lockfs"
	"github.com/txtdb/txtdb/pages"
)

// holdFirstGroup makes holder's next commit group wait, under the commit lock and after recovery,
// until another handle has offered its members on the board. locked is closed when the holder has
// the lock; the returned func undoes the hooks.
func holdFirstGroup(t *testing.T, holder *DB) (locked chan struct{}) {
	t.Helper()
	locked = make(chan struct{})
	offered := make(chan struct{})
	var once, offerOnce sync.Once
	rec := func(db *DB, _ bool) {
		if db == holder {
			once.Do(func() {
				close(locked)
				<-offered
			})
		}
	}
	off := func(db *DB) {
		if db != holder {
			offerOnce.Do(func() { close(offered) })
		}
	}
	faults.recovered.Store(&rec)
	faults.offer.Store(&off)
	t.Cleanup(func() {
		faults.recovered.Store(nil)
		faults.offer.Store(nil)
	})
	return locked
}

// holderThenOfferer starts a's commit (1 onto page000001), and once a holds the lock (locked),
// b's (10 onto page000002), whose error goes to bDone; it returns a's error.
func holderThenOfferer(a, b *DB, locked <-chan struct{}, bDone chan<- error) error {
	ctx := context.Background()
	aDone := make(chan error, 1)
	go func() {
		_, _, err := update(ctx, a, addTo("page000001", 1))
		aDone <- err
	}()
	<-locked
	go func() {
		_, _, err := update(ctx, b, addTo("page000002", 10))
		bDone <- err
	}()
	return <-aDone
}

// addTo is a transaction that adds d to the int on page p of namespace "c".
func addTo(p string, d int) func(tx *Tx) error {
	return func(tx *Tx) error {
		v, err := readInt(tx, "c", p)
		if err != nil {
			return err
		}
		return tx.UpdatePage("c", p, v+d)
	}
}

// A commit that finds the lock taken is offered on the board; the holder commits it with its own
// under one fsync (also a NoSync holder: the offer is durable), the record names the offering
// handle, and each handle counts what it did.
func TestHolderCommitsOffer(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		t.Run(fmt.Sprintf("holder_nosync=%v", noSync), func(t *testing.T) { holderCommitsOffer(t, noSync) })
	}
}

func holderCommitsOffer(t *testing.T, noSync bool) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	a := mustOpen(t, dir, Config{OneObjectPerPage: true, NoSync: noSync})
	b := mustOpen(t, dir, Config{OneObjectPerPage: true})
	ctx := context.Background()
	sa0, sb0 := a.Stats(), b.Stats()
	locked := holdFirstGroup(t, a)
	aDone := make(chan error, 1)
	go func() {
		_, _, err := update(ctx, a, addTo("page000001", 1))
		aDone <- err
	}()
	<-locked
	tsnB, attempts, err := update(ctx, b, addTo("page000002", 10))
	require.NoError(t, err)
	require.Equal(t, 1, attempts)
	require.NoError(t, <-aDone)
	sa, sb := a.Stats(), b.Stats()
	require.Equal(t, int64(1), sa.Served-sa0.Served, "a wrote b's commit")
	require.Equal(t, int64(1), sb.Delegated-sb0.Delegated, "b's commit was written by a")
	require.Equal(t, int64(1), sb.Commits-sb0.Commits)
	require.Equal(t, int64(1), (sa.Fsyncs-sa0.Fsyncs)+(sb.Fsyncs-sb0.Fsyncs), "one fsync for both commits")
	require.NoError(t, view(ctx, b, func(tx *Tx) error {
		v1, err := readInt(tx, "c", "page000001")
		require.NoError(t, err)
		v2, err := readInt(tx, "c", "page000002")
		require.NoError(t, err)
		require.Equal(t, []int{1, 10}, []int{v1, v2})
		return nil
	}))
	var proc string
	for _, r := range logRecords(t, dir, pages.JSON) {
		if r.TSN == tsnB {
			proc = r.Proc
		}
	}
	require.Equal(t, b.ID(), proc, "the record names the handle whose transaction it is")
}

// An offer that loses validation against the holder's own member gets the holder's verdict: a
// *ConflictError naming the holder's commit.
func TestOfferRejectedByHolder(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	a := mustOpen(t, dir, Config{OneObjectPerPage: true})
	b := mustOpen(t, dir, Config{OneObjectPerPage: true})
	ctx := context.Background()
	txB, err := b.Begin(ctx, true)
	require.NoError(t, err)
	require.NoError(t, addTo("page000001", 10)(txB))
	locked := holdFirstGroup(t, a)
	aDone := make(chan pages.TSN, 1)
	go func() {
		tsn, _, err := update(ctx, a, addTo("page000001", 1))
		require.NoError(t, err)
		aDone <- tsn
	}()
	<-locked
	err = txB.Commit()
	tsnA := <-aDone
	var ce *ConflictError
	require.ErrorAs(t, err, &ce)
	require.ErrorIs(t, err, ErrConflict)
	require.Equal(t, tsnA, ce.Committed)
	require.Equal(t, "write", ce.Reason)
	require.Equal(t, int64(1), b.Stats().Conflicts)
	require.NoError(t, view(ctx, b, func(tx *Tx) error {
		v, err := readInt(tx, "c", "page000001")
		require.NoError(t, err)
		require.Equal(t, 1, v)
		return nil
	}))
}

// When the lock stays taken for LockTimeout and nobody took the offer, the commit fails with a
// lock timeout and the offer is withdrawn: a later holder does not commit it.
func TestOfferWithdrawnAtLockTimeout(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	a := mustOpen(t, dir, Config{OneObjectPerPage: true})
	b := mustOpen(t, dir, Config{OneObjectPerPage: true, LockTimeout: 100e6})
	ctx := context.Background()
	unlock, err := a.lock.Lock(ctx) // held outside any group: nobody takes offers
	require.NoError(t, err)
	_, _, err = update(ctx, b, addTo("page000002", 10))
	require.ErrorIs(t, err, lockfs.ErrLockTimeout)
	require.NoError(t, unlock())
	_, _, err = update(ctx, a, addTo("page000001", 1))
	require.NoError(t, err)
	waitLeadIdle(a) // a later round of a's hold would take the offer after a's commit returned
	require.NoError(t, view(ctx, a, func(tx *Tx) error {
		v, err := readInt(tx, "c", "page000002")
		require.NoError(t, err)
		require.Equal(t, 0, v, "a withdrawn offer was committed")
		return nil
	}))
	require.Zero(t, a.Stats().Served)
}

// plantOffer puts a prepared transaction of c on c's board slot, as a group would before waiting.
func plantOffer(t *testing.T, c *DB, fn func(tx *Tx) error) {
	t.Helper()
	tx, err := c.Begin(context.Background(), true)
	require.NoError(t, err)
	require.NoError(t, fn(tx))
	ops, opsJSON, err := tx.prepare()
	require.NoError(t, err)
	require.NoError(t, c.board.announce(c.ID(), []*request{{tx: tx, ops: ops, opsJSON: opsJSON}}))
}

// plantStaleOffer opens two handles on a fresh store of setupPair: c has an offer on the board (10
// onto page000002) whose outcome names the TSN after state st, as a holder that died before its
// batch landed leaves it.
func plantStaleOffer(t *testing.T) (a, c *DB, st state) {
	t.Helper()
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	a = mustOpen(t, dir, Config{OneObjectPerPage: true})
	c = mustOpen(t, dir, Config{OneObjectPerPage: true})
	plantOffer(t, c, addTo("page000002", 10))
	st, err := a.readState()
	require.NoError(t, err)
	own := c.board.own
	require.NoError(t, writeOutcome(own.req, offerOutcome{Owner: c.ID(), Seq: own.seq, Lineage: st.Lineage,
		Res: []offerResult{{TSN: st.TSN + 1}}}, false))
	return a, c, st
}

// The offer of a handle whose slot lock is free (its process died) is ignored; the same offer
// with the lock held is committed (the check can fail).
func TestDeadOffererIgnored(t *testing.T) {
	for _, alive := range []bool{false, true} {
		dir := t.TempDir()
		setupPair(t, dir, Config{})
		a := mustOpen(t, dir, Config{OneObjectPerPage: true})
		c := mustOpen(t, dir, Config{OneObjectPerPage: true})
		plantOffer(t, c, addTo("page000002", 10))
		fd := int(c.board.own.lock.Fd())
		if !alive {
			require.NoError(t, syscall.Flock(fd, syscall.LOCK_UN))
		}
		_, _, err := update(context.Background(), a, addTo("page000001", 1))
		require.NoError(t, err)
		waitLeadIdle(a) // the offer may be taken in a later round of a's hold, after its commit returned
		want := 0
		if alive {
			want = 10
		}
		require.NoError(t, view(context.Background(), a, func(tx *Tx) error {
			v, err := readInt(tx, "c", "page000002")
			require.NoError(t, err)
			require.Equal(t, want, v, "offer of a live (%v) owner", alive)
			return nil
		}))
		if !alive {
			require.NoError(t, syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB))
		}
	}
}

// An outcome naming TSNs past state (its holder died before the batch landed) is taken again and
// committed once; one naming TSNs state reached is left alone.
func TestStaleOutcomeTakenAgain(t *testing.T) {
	a, c, st := plantStaleOffer(t)
	own := c.board.own
	_, _, err := update(context.Background(), a, addTo("page000001", 1))
	require.NoError(t, err)
	waitLeadIdle(a)
	require.Equal(t, int64(1), a.Stats().Served, "the stale outcome's offer was taken again")
	out, ok, err := c.board.readOutcome(own.req)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, st.TSN+2, out.Res[0].TSN, "after a's own commit")
	for range 3 {
		_, _, err = update(context.Background(), a, addTo("page000001", 1))
		require.NoError(t, err)
	}
	waitLeadIdle(a)
	require.Equal(t, int64(1), a.Stats().Served, "a decided offer is not taken twice")
	require.NoError(t, view(context.Background(), a, func(tx *Tx) error {
		v, err := readInt(tx, "c", "page000002")
		require.NoError(t, err)
		require.Equal(t, 10, v)
		return nil
	}))
	require.False(t, errors.Is(err, ErrConflict))
}

// A stale outcome is cleared even when its offer is not taken again (here its owner holds the offer
// lock, as while withdrawing): the holder's own commit then moves state past its TSN, and the
// outcome must not read as committed.
func TestStaleOutcomeClearedWhenNotTaken(t *testing.T) {
	a, c, _ := plantStaleOffer(t)
	own := c.board.own
	offer, err := os.OpenFile(c.board.path(own.i, ".offer"), os.O_RDWR, 0)
	require.NoError(t, err)
	defer func() { _ = offer.Close() }()
	require.NoError(t, syscall.Flock(int(offer.Fd()), syscall.LOCK_EX))
	_, _, err = update(context.Background(), a, addTo("page000001", 1))
	require.NoError(t, err)
	waitLeadIdle(a) // before the offer lock is released: a later round of a's hold must not take it either
	require.Zero(t, a.Stats().Served)
	out, ok, err := c.board.readOutcome(own.req)
	require.NoError(t, err)
	require.True(t, ok)
	require.NotEqual(t, own.seq, out.Seq, "the stale outcome still names the offer, and state has passed its TSN")
	require.NoError(t, syscall.Flock(int(offer.Fd()), syscall.LOCK_UN))
}

// The owner of an offer learns its outcome when the holder wakes it, while the holder still holds
// the lock: its commit returns before the holder's group ends.
func TestOfferOutcomeWithoutLock(t *testing.T) {
	a, b := wakeablePair(t)
	require.NoError(t, offeredWhileHeld(t, a, b))
	require.Equal(t, int64(1), b.Stats().Delegated)
}

// wakeablePair opens two handles on a fresh pair store, a to hold and b to offer; it skips where
// b cannot be woken (no futex): owners then learn outcomes under the lock.
func wakeablePair(t *testing.T) (a, b *DB) {
	t.Helper()
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	a = mustOpen(t, dir, Config{OneObjectPerPage: true})
	b = mustOpen(t, dir, Config{OneObjectPerPage: true})
	if b.board.own.wake == nil {
		t.Skip("no futex wake on this host: owners learn outcomes under the lock")
	}
	return a, b
}

// offeredWhileHeld has b offer a commit while a holds the lock (holderThenOfferer), and returns
// nil if b's commit returned before a's group ended, an error saying so if not.
func offeredWhileHeld(t *testing.T, a, b *DB) error {
	t.Helper()
	locked := holdFirstGroup(t, a)
	bDone := make(chan error, 1)
	var once sync.Once
	var whileHeld error = errors.New("b's commit had not returned when a's group ended: it waited for the lock")
	woke := func(db *DB) {
		if db == a {
			once.Do(func() {
				select {
				case whileHeld = <-bDone: // b's commit returned while a holds the lock
				case <-time.After(longStop):
				}
			})
		}
	}
	faults.woke.Store(&woke)
	t.Cleanup(func() { faults.woke.Store(nil) })
	require.NoError(t, holderThenOfferer(a, b, locked, bDone))
	return whileHeld
}

// outcomeNames recognises exactly the outcome lines writeOutcome writes for an owner and seq (a
// seq that is a prefix of another's digits included), so lines it rejects need no decoding.
func TestOutcomeNames(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "req"))
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	owner := "0b6c7f2e-5d4e-4e55-9a3e-1c7f1e0d2a91"
	b := &board{}
	for _, out := range []offerOutcome{
		{Owner: owner, Seq: 7},
		{Owner: owner, Seq: 7, Local: true},
		{Owner: owner, Seq: 7, Lineage: "l", Res: []offerResult{{TSN: 3}, {Err: "x"}}},
	} {
		require.NoError(t, writeOutcome(f, out, false))
		line, err := b.outcomeLine(f)
		require.NoError(t, err)
		require.True(t, outcomeNames(line, owner, 7), "%s", line)
		require.False(t, outcomeNames(line, owner, 70))
		require.False(t, outcomeNames(line, owner, 8))
		require.False(t, outcomeNames(line, "1b6c7f2e-5d4e-4e55-9a3e-1c7f1e0d2a91", 7))
		got, ok := decodeOutcome(line)
		require.True(t, ok)
		require.Equal(t, out, got)
	}
	require.NoError(t, writeOutcome(f, offerOutcome{Owner: owner, Seq: 70}, false))
	line, err := b.outcomeLine(f)
	require.NoError(t, err)
	require.False(t, outcomeNames(line, owner, 7))
}
