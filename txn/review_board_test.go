package txn

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// Review tests of the commit board (board.go, delegate.go): what the holder commits for another
// process must be what that process would have committed itself, and the owner's Commit result
// must agree with the log in every failure window.

// delegate runs fn as b's commit while a holds the commit lock in a group of its own (a adds 1 to
// page000001), so that b offers it and a commits it; it returns b's commit result and a's.
// b learns under the lock when its wake-up is turned off (noWake).
func delegate(t *testing.T, a, b *DB, noWake bool, fn func(tx *Tx) error) (tsnB pages.TSN, errB, errA error) {
	t.Helper()
	ctx := context.Background()
	if noWake {
		b.board.own.wake = nil // as on a host without futex wakes
	}
	locked := holdFirstGroup(t, a)
	aDone := make(chan error, 1)
	go func() {
		_, _, err := update(ctx, a, addTo("page000001", 1))
		aDone <- err
	}()
	<-locked
	tx, err := b.Begin(ctx, true)
	require.NoError(t, err)
	require.NoError(t, fn(tx))
	errB = tx.Commit()
	return tx.CommitTSN(), errB, <-aDone
}

// A commit written by the lock holder keeps its objects' text byte for byte, as a commit of its
// own handle would: objects are stored as they are (no HTML escaping, wal.EncodeObjs), and a
// request body must not re-encode the ops it carries.
func TestOfferKeepsObjectText(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	a := mustOpen(t, dir, Config{OneObjectPerPage: true})
	b := mustOpen(t, dir, Config{OneObjectPerPage: true})
	text := `{"html":"<b>Tom & Jerry</b>","sep":"a` + "\u2028" + `b"}`
	obj, err := pages.ObjectFromText(pages.JSON, []byte(text))
	require.NoError(t, err)
	require.Equal(t, text, obj.Text())
	_, errB, errA := delegate(t, a, b, false, func(tx *Tx) error {
		if _, err := tx.ReadPage("c", "page000002"); err != nil {
			return err
		}
		return tx.UpdatePage("c", "page000002", obj)
	})
	require.NoError(t, errA)
	require.NoError(t, errB)
	require.Equal(t, int64(1), b.Stats().Delegated, "the commit was written by the holder")
	fresh := mustOpen(t, dir, Config{OneObjectPerPage: true})
	require.NoError(t, view(context.Background(), fresh, func(tx *Tx) error {
		objs, err := tx.ReadPage("c", "page000002")
		require.NoError(t, err)
		require.Len(t, objs, 1)
		require.Equal(t, text, objs[0].Text(), "the stored text of an object another process committed")
		return nil
	}))
	data, err := os.ReadFile(filepath.Join(dir, pages.MetaDir, logDirName, wal.SegName(1)))
	require.NoError(t, err)
	require.Contains(t, string(data), `<b>Tom & Jerry</b>`, "the log holds the object as written")
}

// An outcome too large for its region (here: 250 transactions of one offer that lose to the first
// of them, each conflict naming a 190-byte namespace) must not fail the holder's own commit: it
// is the other process's problem, and the holder's members did nothing wrong.
func TestOfferLargeOutcomeDoesNotFailHolder(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	a := mustOpen(t, dir, Config{OneObjectPerPage: true})
	c := mustOpen(t, dir, Config{OneObjectPerPage: true})
	ctx := context.Background()
	long := strings.Repeat("n", 95) + "." + strings.Repeat("m", 94)
	_, _, err := update(ctx, a, func(tx *Tx) error {
		if err := tx.CreateNamespace(long); err != nil {
			return err
		}
		_, err := tx.Insert(long, 0)
		return err
	})
	require.NoError(t, err)
	const n = 250
	var reqs []*request
	for range n {
		tx, err := c.Begin(ctx, true)
		require.NoError(t, err)
		v, err := readInt(tx, long, "page000001")
		require.NoError(t, err)
		require.NoError(t, tx.UpdatePage(long, "page000001", v+1))
		ops, opsJSON, err := tx.prepare()
		require.NoError(t, err)
		reqs = append(reqs, &request{tx: tx, ops: ops, opsJSON: opsJSON})
	}
	require.NoError(t, c.board.announce(c.ID(), reqs))
	_, _, err = update(ctx, a, addTo("page000001", 1))
	require.NoError(t, err, "the holder's own commit")
	out, ok, err := c.board.readOutcome(c.board.own.req)
	require.NoError(t, err)
	require.True(t, ok, "the offer's outcome is on the board")
	require.Len(t, out.Res, n)
	require.NotZero(t, out.Res[0].TSN)
	for i, r := range out.Res[1:] {
		require.NotNil(t, r.Conflict, "transaction %d", i+1)
		require.Equal(t, "write", r.Conflict.Reason)
		require.Equal(t, out.Res[0].TSN, r.Conflict.Committed)
	}
}

// An offered commit that another process committed must not be reported as a plain failure
// ("did not happen": its caller would retry and apply it twice) when the owner, under the lock,
// cannot recover the log before it reads the outcome: it is ErrCommitUnknown.
func TestOfferedCommitRecoverFailureIsUnknown(t *testing.T) {
	dir := t.TempDir()
	skipCheck(dir) // the planted tail stays behind an erase that failed
	setupPair(t, dir, Config{})
	a := mustOpen(t, dir, Config{OneObjectPerPage: true})
	b := mustOpen(t, dir, Config{OneObjectPerPage: true})
	// While a still holds the lock after its group (b's commit written, state published), a
	// torn record lands past state, as one a third process died writing, and erasing it fails.
	var once sync.Once
	woke := func(db *DB) {
		if db != a {
			return
		}
		once.Do(func() {
			st, err := a.readState()
			require.NoError(t, err)
			f, err := os.OpenFile(filepath.Join(dir, pages.MetaDir, logDirName, wal.SegName(st.Pos.Seg)), os.O_RDWR, 0)
			require.NoError(t, err)
			_, err = f.WriteAt([]byte(`{"tsn":`), st.Pos.Off)
			require.NoError(t, err)
			require.NoError(t, f.Close())
			inject := func(p faultPoint) error {
				if p == faultLogErase {
					return fmt.Errorf("planted: %w", os.ErrPermission)
				}
				return nil
			}
			faults.inject.Store(&inject)
		})
	}
	faults.woke.Store(&woke)
	t.Cleanup(func() { faults.woke.Store(nil); faults.inject.Store(nil) })
	tsnB, errB, errA := delegate(t, a, b, true, addTo("page000002", 10))
	require.NoError(t, errA)
	require.Zero(t, tsnB)
	var byB []pages.TSN
	for _, r := range goodRecords(t, dir) {
		if r.Proc == b.ID() {
			byB = append(byB, r.TSN)
		}
	}
	require.Len(t, byB, 1, "b's transaction is in the log (a committed it)")
	require.ErrorIs(t, errB, ErrCommitUnknown, "b's Commit failed with %v, yet its transaction is committed at %d", errB, byB[0])
}

// Reading the board must not fail silently: a holder that cannot read the slots file commits
// nothing, since it could not clear a stale outcome (one whose holder died between deciding and
// writing the log) before its own commit moves state past that outcome's TSN. Here the read fails
// (a descriptor that cannot read, EBADF) and the holder commits anyway; the stale outcome then
// reads as committed to its owner, whose transaction was never written.
func TestBoardReadErrorFailsHolder(t *testing.T) {
	a, c, _ := plantStaleOffer(t)
	own := c.board.own
	slots := a.board.m
	wo, err := os.OpenFile(a.board.slots.Name(), os.O_WRONLY, 0)
	require.NoError(t, err)
	a.board.m = wal.NewMappedFile(wo, boardSlots*annSize) // a write-only file maps not, and reads not
	t.Cleanup(func() { _ = wo.Close() })
	_, _, err = update(context.Background(), a, addTo("page000001", 1))
	a.board.m = slots
	after, rerr := a.readState()
	require.NoError(t, rerr)
	out, ok, rerr := c.board.readOutcome(own.req)
	require.NoError(t, rerr)
	if err == nil && ok && out.Seq == own.seq && !staleOutcome(out, after) {
		t.Fatalf("the holder committed (state %d) without reading the board; the stale outcome %+v of c's offer now reads as committed", after.TSN, out)
	}
}

// goodRecords returns the records of the store's log up to the first bad one (a torn tail).
func goodRecords(t *testing.T, dir string) []wal.Record {
	t.Helper()
	var out []wal.Record
	for _, s := range scanLog(t, dir, pages.JSON, true) {
		out = append(out, s.Rec)
	}
	return out
}

// A keyed append another process offers, which the holder writes whole (it is the 65th of its
// page's run), is re-encoded in its request's ops: that needs each op's span in the ops text,
// which the owner's ops arrive without when they are not in the fast parser's shape (here a key
// that is not ASCII). The record the holder writes must still be the offer's ops, whole.
func TestOfferWrittenWholeWithNonASCIIKey(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	a := mustOpen(t, dir, Config{OneObjectPerPage: true})
	b := mustOpen(t, dir, Config{OneObjectPerPage: true})
	ctx := context.Background()
	for i := range maxAppends {
		_, _, err := update(ctx, a, func(tx *Tx) error {
			k := fmt.Sprintf("k%d", i)
			return tx.AppendPage("c", "page000002", k, row{k, i})
		})
		require.NoError(t, err)
	}
	key := "schlüssel"
	_, errB, errA := delegate(t, a, b, false, func(tx *Tx) error {
		return tx.AppendPage("c", "page000002", key, row{key, 99})
	})
	require.NoError(t, errA)
	require.NoError(t, errB)
	require.Equal(t, int64(1), b.Stats().Delegated, "the commit was written by the holder")
	fresh, err := Open(ctx, dir, Config{OneObjectPerPage: true})
	require.NoError(t, err, "open after the holder wrote the offer whole")
	defer fresh.Close()
	require.NoError(t, view(ctx, fresh, func(tx *Tx) error {
		objs, err := tx.ReadPage("c", "page000002")
		require.NoError(t, err)
		require.Len(t, objs, 1+maxAppends+1)
		var last row
		require.NoError(t, objs[len(objs)-1].Decode(&last))
		require.Equal(t, row{key, 99}, last)
		return nil
	}))
}

// An outcome of which only a prefix landed (recovery adopted the dead holder's whole records and
// erased the rest: its first TSN is at or below state, its second above) is decided for the
// first transaction, which is committed: the next holder must neither commit it again nor leave
// the second TSN standing, which its own commit is about to reach.
func TestStalePartOutcomeNotTakenAgain(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	a := mustOpen(t, dir, Config{OneObjectPerPage: true})
	c := mustOpen(t, dir, Config{OneObjectPerPage: true})
	ctx := context.Background()
	var reqs []*request
	for _, p := range []string{"page000001", "page000002"} {
		tx, err := c.Begin(ctx, true)
		require.NoError(t, err)
		require.NoError(t, addTo(p, 10)(tx))
		ops, opsJSON, err := tx.prepare()
		require.NoError(t, err)
		reqs = append(reqs, &request{tx: tx, ops: ops, opsJSON: opsJSON})
	}
	st, err := a.readState()
	require.NoError(t, err)
	// State reaches st+1 (here through a commit of a's, made before the offer).
	_, _, err = update(ctx, a, func(tx *Tx) error { _, err := tx.Insert("c", 5); return err })
	require.NoError(t, err)
	require.NoError(t, c.board.announce(c.ID(), reqs))
	own := c.board.own
	// As a holder that died inside the second record of [c's first, c's second] would leave it
	// once recovery adopted the first.
	require.NoError(t, writeOutcome(own.req, offerOutcome{Owner: c.ID(), Seq: own.seq, Lineage: st.Lineage,
		Res: []offerResult{{TSN: st.TSN + 1}, {TSN: st.TSN + 2}}}, false))
	_, _, err = update(ctx, a, addTo("page000002", 1))
	require.NoError(t, err)
	require.Zero(t, a.Stats().Served, "the offer's first transaction is committed (st+1): it was taken again")
	out, ok, err := c.board.readOutcome(own.req)
	require.NoError(t, err)
	require.True(t, ok)
	after, err := a.readState()
	require.NoError(t, err)
	for _, r := range out.Res {
		require.False(t, r.TSN > st.TSN+1, "outcome %+v names a TSN the offer never got, state %d", out, after.TSN)
	}
	require.Equal(t, own.seq, out.Seq)
	require.Equal(t, st.TSN+1, out.Res[0].TSN, "the landed transaction keeps its TSN")
	require.NotEmpty(t, out.Res[1].Err)
}

// An owner whose wait for the lock ends (LockTimeout) after a holder took its offer waits to learn
// the outcome. When the holder has published it and woken the owner, the owner learns it without
// the lock, as it would have before its wait ended, and does not wait for the lock (here the
// holder keeps it until the owner's commit returns: a wait for the lock would never end).
func TestOfferTakenThenLockTimeoutLearnsWithoutLock(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	a := mustOpen(t, dir, Config{OneObjectPerPage: true})
	b := mustOpen(t, dir, Config{OneObjectPerPage: true, LockTimeout: 1})
	if b.board.own.wake == nil {
		t.Skip("no futex wake on this host: owners learn outcomes under the lock")
	}
	locked := make(chan struct{})
	offered := make(chan struct{})
	decided := make(chan struct{})
	var recOnce, offOnce, decOnce, wokeOnce sync.Once
	rec := func(db *DB, _ bool) {
		if db == a {
			recOnce.Do(func() { close(locked); <-offered })
		}
	}
	// b's wait for the lock starts (and at once times out) only once a decided its offer.
	off := func(db *DB) {
		if db == b {
			offOnce.Do(func() { close(offered); <-decided })
		}
	}
	inject := func(p faultPoint) error {
		if p == faultLogWrite { // a's group, after deciding the outcomes
			decOnce.Do(func() { close(decided) })
		}
		return nil
	}
	bDone := make(chan error, 1)
	var whileHeld error = errors.New("b's commit had not returned when a's group ended: it waited for the lock")
	woke := func(db *DB) {
		if db == a {
			wokeOnce.Do(func() {
				select {
				case whileHeld = <-bDone:
				case <-time.After(longStop):
				}
			})
		}
	}
	faults.recovered.Store(&rec)
	faults.offer.Store(&off)
	faults.inject.Store(&inject)
	faults.woke.Store(&woke)
	t.Cleanup(func() {
		faults.recovered.Store(nil)
		faults.offer.Store(nil)
		faults.inject.Store(nil)
		faults.woke.Store(nil)
	})
	require.NoError(t, holderThenOfferer(a, b, locked, bDone))
	require.NoError(t, whileHeld)
	require.Equal(t, int64(1), b.Stats().Delegated)
}

// The offer of a process that died stays on the board until a new handle claims its slot. A
// holder must not take it while that handle holds the slot's lock but has not yet written its
// own announcement: the slot looks alive then, and the dead process's commit would be committed
// long after it died (its restarted self may have done the work again meanwhile).
func TestDeadOffererSlotBeingClaimed(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	a := mustOpen(t, dir, Config{OneObjectPerPage: true})
	c := mustOpen(t, dir, Config{OneObjectPerPage: true})
	plantOffer(t, c, addTo("page000002", 10))
	slot := c.board.own.i
	// c dies: its slot lock is free (its other descriptors stay open, as nothing else counts).
	require.NoError(t, syscall.Flock(int(c.board.own.lock.Fd()), syscall.LOCK_UN))
	claiming := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	claim := func(i int) {
		if i == slot {
			once.Do(func() { close(claiming); <-release })
		}
	}
	faults.claim.Store(&claim)
	t.Cleanup(func() { faults.claim.Store(nil) })
	opened := make(chan *DB, 1)
	go func() {
		n, err := Open(context.Background(), dir, Config{OneObjectPerPage: true})
		require.NoError(t, err)
		opened <- n
	}()
	select {
	case <-claiming:
	case <-time.After(longStop):
		t.Fatal("the new handle did not claim the dead process's slot")
	}
	_, _, err := update(context.Background(), a, addTo("page000001", 1))
	waitLeadIdle(a) // before the claim ends: a later round of a's hold must not take the offer either
	close(release)
	require.NoError(t, (<-opened).Close())
	require.NoError(t, err)
	require.Zero(t, a.Stats().Served, "the dead process's offer was committed")
	require.NoError(t, view(context.Background(), a, func(tx *Tx) error {
		v, err := readInt(tx, "c", "page000002")
		require.NoError(t, err)
		require.Equal(t, 0, v)
		return nil
	}))
	require.NoError(t, syscall.Flock(int(c.board.own.lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB))
}

// A handle closed while its commit is offered ends the wait: the commit either was taken by the
// holder (here closed once the holder decided it: Commit returns once the outcome is known, and
// agrees with the log) or is withdrawn (closed before the holder collects: ErrClosed, nothing in
// the log). Close returns either way.
func TestCloseWhileOffered(t *testing.T) {
	for _, takenFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("taken=%v", takenFirst), func(t *testing.T) {
			dir := t.TempDir()
			setupPair(t, dir, Config{})
			a := mustOpen(t, dir, Config{OneObjectPerPage: true})
			b, err := Open(context.Background(), dir, Config{OneObjectPerPage: true})
			require.NoError(t, err)
			ctx := context.Background()
			locked := make(chan struct{})
			offered := make(chan struct{})
			closing := make(chan struct{})
			var recOnce, offOnce sync.Once
			rec := func(db *DB, _ bool) {
				if db == a {
					recOnce.Do(func() {
						close(locked)
						<-offered
						if !takenFirst {
							<-closing // b's wait ends (Close) before a collects
						}
					})
				}
			}
			off := func(db *DB) {
				if db == b {
					offOnce.Do(func() { close(offered) })
				}
			}
			closed := make(chan error, 1)
			var decOnce sync.Once
			inject := func(p faultPoint) error {
				if p == faultLogWrite && takenFirst { // a decided b's offer: close b now
					decOnce.Do(func() { go func() { closed <- b.Close() }() })
				}
				return nil
			}
			faults.recovered.Store(&rec)
			faults.offer.Store(&off)
			faults.inject.Store(&inject)
			t.Cleanup(func() { faults.recovered.Store(nil); faults.offer.Store(nil); faults.inject.Store(nil) })
			aDone := make(chan error, 1)
			go func() {
				_, _, err := update(ctx, a, addTo("page000001", 1))
				aDone <- err
			}()
			<-locked
			tx, err := b.Begin(ctx, true)
			require.NoError(t, err)
			require.NoError(t, addTo("page000002", 10)(tx))
			bDone := make(chan error, 1)
			go func() { bDone <- tx.Commit() }()
			<-offered
			if takenFirst {
				require.NoError(t, <-aDone)
			} else {
				slot := b.board.own.i
				go func() { closed <- b.Close() }()
				// Close cancels b's wait; b withdraws its offer before a collects it (a waits for
				// the withdrawal's empty announcement).
				waitFor(t, func() bool {
					buf := make([]byte, annSize)
					_, _ = a.board.slots.ReadAt(buf, int64(slot*annSize))
					_, offers := decodeAnnouncement(buf)
					return !offers
				})
				close(closing)
				require.NoError(t, <-aDone)
			}
			errB := <-bDone
			require.NoError(t, <-closed)
			var inLog []pages.TSN
			for _, r := range logRecords(t, dir, pages.JSON) {
				if r.TSN > 1 && r.Ops[0].Page == "page000002" {
					inLog = append(inLog, r.TSN)
				}
			}
			if errB == nil {
				require.Equal(t, []pages.TSN{tx.CommitTSN()}, inLog)
			} else {
				require.ErrorIs(t, errB, ErrClosed)
				require.Empty(t, inLog, "b's Commit failed (%v), yet its transaction is in the log", errB)
			}
			require.Equal(t, takenFirst, errB == nil, "b's commit: %v", errB)
		})
	}
}

// waitFor waits, up to longStop, until cond holds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(longStop)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		runtime.Gosched()
	}
}

// A holder that cannot write the outcome of an offer it could not decode fails its group, and
// releases the slot's offer lock: else the owner's withdrawal (a blocking flock) never returns.
func TestUndecodableOfferOutcomeWriteFails(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	a := mustOpen(t, dir, Config{OneObjectPerPage: true})
	c := mustOpen(t, dir, Config{OneObjectPerPage: true})
	own := c.board.own
	body := []byte(`[{"snap":1,"ops":{"not":"an array"}}]`)
	_, err := own.req.WriteAt(body, outcomeRegion)
	require.NoError(t, err)
	ann := announcement{owner: c.ID(), seq: own.seq + 1, n: uint32(len(body)), crc: crc32.Checksum(body, wal.CRCTable)}
	_, err = c.board.slots.WriteAt(ann.encode(), int64(own.i*annSize))
	require.NoError(t, err)
	own.seq++
	p, err := a.board.peer(own.i)
	require.NoError(t, err)
	ro, err := os.Open(p.req.Name()) // the outcome write fails (EBADF)
	require.NoError(t, err)
	rw := p.req
	p.req = ro
	_, _, err = update(context.Background(), a, addTo("page000001", 1))
	p.req = rw
	require.NoError(t, ro.Close())
	require.Error(t, err, "the holder could not write the outcome")
	probe, err := os.OpenFile(p.offer.Name(), os.O_RDWR, 0)
	require.NoError(t, err)
	defer probe.Close()
	require.NoError(t, syscall.Flock(int(probe.Fd()), syscall.LOCK_EX|syscall.LOCK_NB), "the slot's offer lock is still held")
	require.NoError(t, syscall.Flock(int(probe.Fd()), syscall.LOCK_UN))
}
