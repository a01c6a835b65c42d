package txn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// group is one commit group on its way through the protocol (docs/PROTOCOL.md, "Commit"): lock,
// recover, catch up, validate, rotate, frame, append and fsync, publish, apply. Used only by the
// goroutine leading the group.
type group struct {
	db       *DB
	members  []*request
	st       state         // state as recovery left it: what the group commits after
	x        *index        // the index, caught up to st
	accepted []*request    // members that passed validation, in order
	recs     []record      // their records
	convs    []conversion  // keyed appends to be written whole, in order
	pos      logPos        // where the records go (after a rotation: the new segment's header)
	ends     []logPos      // where each record ends
	buf      *bytes.Buffer // db.frame, once frameRecords ran
	next     state         // state naming the group's last record

	offered   []*request // members offered on the board while the group waited for the lock
	taken     []*taken   // offers of other processes this group took
	delegated int        // offered members another process committed
}

// maxRounds bounds the groups one lock hold commits: the process's own, then the offers of other
// processes and the process's own requests that arrived meanwhile (each round under one fsync).
const maxRounds = 4

// runBatch commits one group. If, under the same lock hold, offers of other processes or more of
// this handle's requests arrived while it wrote and synced, it hands the lock and the lead to a
// goroutine that commits them in rounds of their own (serve) and reports true: the batch's
// callers return meanwhile, so that their next commits can join a later round instead of waiting
// for the lock. Every member gets err set (nil for those that committed).
// REQUIRES: the caller holds the lead.
func (db *DB) runBatch(batch []*request) (handedOn bool) {
	g := &group{db: db, members: batch}
	if err := db.usable(); err != nil {
		g.fail(err)
		return false
	}
	db.catchUpAhead()
	unlock, err := g.lockOrOffer()
	if err != nil {
		g.fail(fmt.Errorf("txtdb: commit: %w", err))
		return false
	}
	if unlock == nil { // the offer's outcome came without the lock
		g.delegatedStats()
		return false
	}
	faults.didLock(db)
	if !g.run(true) {
		db.release(unlock, true)
		return false
	}
	if !db.moreRounds() {
		db.release(unlock, false)
		return false
	}
	go db.serve(unlock)
	return true
}

// moreRounds reports whether a lock holder has more to commit: offers on the board it has not
// seen decided, or requests of this handle in the queue (ownRounds). REQUIRES: commit lock held.
func (db *DB) moreRounds() bool {
	return (db.board != nil && db.board.pending()) || (db.ownRounds() && db.queued())
}

// ownRounds reports whether the handle's queued requests join the rounds of a lock hold: only if
// it fsyncs, and is not being closed. A round that fsyncs lasts long enough for the callers it
// returned to to commit again; a NoSync round is over before they do, and holding the lock for
// them only makes the other processes wait (measured: relaxed transfers with 4 clients per
// process lost a quarter of their rate at P=8).
func (db *DB) ownRounds() bool { return !db.cfg.NoSync && !db.closed.Load() }

// serve commits, under the lock runBatch took, up to maxRounds-1 more groups, each of the offers
// on the board and this handle's queued requests, then releases the lock and hands on the lead.
// REQUIRES: commit lock held, the lead held (both handed over by runBatch).
func (db *DB) serve(unlock func() error) {
	ringLate := true
	for range maxRounds - 1 {
		if !db.moreRounds() {
			ringLate = false // nothing left
			break
		}
		var own []*request
		if db.ownRounds() {
			own = db.dequeue()
		}
		wrote := (&group{db: db, members: own}).run(false)
		for _, r := range own {
			close(r.done)
		}
		if !wrote {
			break
		}
	}
	db.release(unlock, ringLate)
	db.passLead()
}

// release gives the commit lock back. With ringLate, offers may be left on the board that the
// hold did not take (a round that took nothing, or failed, or the last round): their owners are
// rung after the release, so that one of them takes the lock rather than notice it free only
// when its sleep ends. REQUIRES: commit lock held.
func (db *DB) release(unlock func() error, ringLate bool) {
	var late []*wakeWord
	if ringLate {
		late = db.board.pendingWakes()
	}
	_ = unlock()
	for _, w := range late {
		w.ring()
	}
}

// run is one round under the commit lock: recover, learn what became of this group's offer
// (first round), take other processes' offers, validate, write, fsync, publish, apply. It reports
// whether the round wrote to the log. REQUIRES: commit lock held.
func (g *group) run(first bool) bool {
	defer g.releaseOffers()
	defer g.dropFrame()
	if err := g.recover(); err != nil {
		err = fmt.Errorf("txtdb: commit: %w", err)
		if first {
			g.abandonOffer(err) // before fail: a holder may have committed the offered members
		}
		g.fail(err)
		return false
	}
	if first {
		if err := g.settle(); err != nil {
			g.fail(&UnknownError{Err: fmt.Errorf("read the outcome of an offered commit: %w", err)})
			return false
		}
		g.delegatedStats()
		g.dropCancelled()
	}
	if err := g.collect(); err != nil {
		g.fail(fmt.Errorf("txtdb: commit: %w", err))
		return false
	}
	for {
		if g.validate(); len(g.accepted) == 0 {
			_ = g.decide() // rejections only: an outcome that failed to be written is taken again
			g.ding()
			return false
		}
		failed, err := g.writeWhole()
		if err == nil {
			break
		}
		// Only the member whose page could not be loaded fails. The members after it were
		// validated against its changes (and a later write-whole would include its objects):
		// validate them again without it. The members before it, and the write-wholes of theirs
		// already done, do not depend on it.
		failed.err = fmt.Errorf("txtdb: commit: %w", err)
		g.retry()
	}
	if err := g.rotate(); err != nil {
		g.fail(fmt.Errorf("txtdb: commit: %w", err))
		return false
	}
	g.frameRecords()
	if err := g.decide(); err != nil {
		g.fail(fmt.Errorf("txtdb: commit: write the outcome of another process's commit: %w", err))
		return false
	}
	if !g.appendAndPublish() {
		return false
	}
	g.apply()
	g.landed()
	g.ding()
	return true
}

// dropFrame lets go of the framing buffer after a group too large for it to be kept.
func (g *group) dropFrame() {
	if g.buf != nil && g.buf.Cap() > maxReadBuf {
		g.db.frame = bytes.Buffer{}
	}
	g.buf = nil
}

// noSync reports whether the group skips the log fsync: a NoSync handle's group that took no
// offer (only handles that fsync offer their commits).
func (g *group) noSync() bool { return g.db.cfg.NoSync && len(g.taken) == 0 }

// maxTSN is the newest TSN of the group's members.
func (g *group) maxTSN() pages.TSN {
	var t pages.TSN
	for _, r := range g.members {
		t = max(t, r.tsn)
	}
	return t
}

// fail gives err to every member that has no outcome yet.
func (g *group) fail(err error) {
	for _, r := range g.members {
		if r.err == nil && !r.settled {
			r.err = err
		}
	}
}

// lock takes the commit lock, waiting at most LockTimeout and no longer than the most patient
// member's deadline (the shorter of Options.LockTimeout and the context wins).
func (g *group) lock() (func() error, error) {
	if unlock, ok, err := g.db.lock.TryLock(); err != nil || ok {
		return unlock, err // free: no deadline to set up (a context and a timer per group)
	}
	ctx, cancel := g.lockContext()
	defer cancel()
	return g.db.lockWith(ctx)
}

// lockContext bounds the wait for the commit lock (see lock).
func (g *group) lockContext() (context.Context, context.CancelFunc) {
	db := g.db
	deadline := time.Now().Add(db.cfg.LockTimeout)
	latest, all := time.Time{}, true
	for _, r := range g.members {
		d, ok := r.ctx.Deadline()
		all = all && ok
		if ok && d.After(latest) {
			latest = d
		}
	}
	if all && latest.Before(deadline) {
		deadline = latest
	}
	return context.WithDeadline(db.ctx, deadline)
}

// lockWith takes the commit lock, waiting until ctx ends.
func (db *DB) lockWith(ctx context.Context) (func() error, error) {
	unlock, err := db.lock.Lock(ctx)
	if err != nil && db.ctx.Err() != nil {
		err = ErrClosed
	}
	return unlock, err
}

// dropCancelled lets members whose context ended while the group waited leave: nothing of them is
// written.
func (g *group) dropCancelled() {
	for _, r := range g.members {
		if r.settled || r.from != nil || r.err != nil {
			continue
		}
		if err := r.ctx.Err(); err != nil {
			r.err = fmt.Errorf("txtdb: commit not started: %w", err)
		}
	}
}

// recover repairs what a dead committer left, catches the index up to the authoritative state and
// opens the segment writer on state's segment. REQUIRES: commit lock held.
func (g *group) recover() error {
	db := g.db
	st, err := db.recoverLocked()
	if err != nil {
		return err
	}
	x, err := db.catchUpGroup(st)
	if errors.Is(err, errStale) {
		err = corrupt(db.state.Path, 0, fmt.Errorf("state went backwards under the commit lock: %w", err))
	}
	if err != nil {
		return err
	}
	g.st, g.x = st, x
	return db.openWriter(st.Pos.Seg)
}

// validate checks each member in order against committed data and the members accepted before it
// (the overlay), and gives the accepted ones their records and TSNs. A reservation takes the next
// block of page IDs and no TSN. REQUIRES: commit lock held, index caught up.
func (g *group) validate() {
	db, x := g.db, g.x
	ov := newOverlay()
	next := g.st.TSN
	now := time.Now().UnixNano()
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, r := range g.members {
		if r.err != nil || r.settled {
			continue
		}
		var rec record
		if r.reserve != nil {
			if err := db.reserveLocked(x, r.reserve, ov); err != nil {
				r.err = err
				continue
			}
			rec = record{TSN: next, Ops: []op{{Kind: opReserve, NS: r.reserve.ns, Inc: r.reserve.inc,
				From: r.reserve.from, Upto: r.reserve.upto}}}
		} else {
			if err := db.validate(x, r.tx, ov); err != nil {
				r.err, r.rejected = err, true
				if r.from == nil {
					db.stats.rejected(err)
				}
				continue
			}
			next++
			rec = record{TSN: next, Time: now, Proc: r.proc(db), Ops: r.ops}
			r.tsn = rec.TSN
			g.convs = append(g.convs, ov.add(x, r, &rec)...)
		}
		g.accepted = append(g.accepted, r)
		g.recs = append(g.recs, rec)
	}
}

// retry forgets the outcome of validation (of every member that has no error of its own) so that
// validate runs again.
func (g *group) retry() {
	for _, r := range g.members {
		if r.settled {
			continue
		}
		if r.rejected {
			r.err, r.rejected = nil, false
		}
		r.tsn = 0
	}
	g.accepted, g.recs, g.convs = nil, nil, nil
}

// writeWhole turns the keyed appends that would make a page's run of appends pass maxAppends into
// puts of the whole page (its latest contents, the changes of the members before in the group,
// and the appended objects) that keep their keys, and encodes those ops again. Contents may be
// loaded from the disk; if that fails, it returns the member it failed for (the conversions before
// it are done). REQUIRES: commit lock held, validate done, the index's mu not held.
func (g *group) writeWhole() (*request, error) {
	db, x := g.db, g.x
	for _, c := range g.convs {
		o := &c.req.ops[c.i]
		// Start from the last whole page: a member's put (earlier conversions of the page are
		// done already), else the page's latest committed version.
		var cur []pages.Object
		from := -1
		for j := len(c.prior) - 1; j >= 0 && from < 0; j-- {
			switch c.prior[j].Kind {
			case opPut:
				cur, from = c.prior[j].Objects, j+1
			case opDel:
				panic("txn: keyed append accepted after a delete in its group") // INVARIANT: validate
			}
		}
		if from < 0 {
			from = 0
			x.mu.RLock()
			var v *version
			if in := x.incs[o.Inc]; in != nil && in.pages[o.PageNo] != nil {
				v = in.pages[o.PageNo].latest()
			}
			x.mu.RUnlock()
			if v == nil || v.deleted {
				panic("txn: keyed append accepted for a page that is gone") // INVARIANT: validate
			}
			var err error
			if cur, err = db.contents(x, o.Inc, o.PageNo, v); err != nil {
				return c.req, fmt.Errorf("write %s/%s whole: %w", o.NS, o.Page, err)
			}
		}
		for _, p := range c.prior[from:] {
			cur = slices.Concat(cur, p.Objects)
		}
		whole := slices.Concat(cur, o.Objects)
		raw, err := wal.EncodeObjs(db.format, whole)
		if err != nil {
			return c.req, fmt.Errorf("write %s/%s whole: %w", o.NS, o.Page, err)
		}
		o.Kind, o.Objs, o.Compact, o.Objects = opPut, raw, true, whole
		if err := c.req.reencode(c.i); err != nil {
			return c.req, fmt.Errorf("write %s/%s whole: %w", o.NS, o.Page, err)
		}
	}
	return nil, nil
}

// rotate starts a new segment when the current one is full; the old one is fsynced first (it
// holds what the new one follows, also under NoSync). A segment is named by the TSN after the
// last one committed before it; one started since the last commit (only reservations in it)
// already has that name, so it is not rotated. REQUIRES: commit lock held.
func (g *group) rotate() error {
	db, st := g.db, g.st
	g.pos = st.Pos
	if g.pos.Off < db.cfg.SegmentBytes || g.pos.Seg == st.TSN+1 {
		return nil
	}
	if err := db.wr.f.Sync(); err != nil {
		return fmt.Errorf("fsync log before rotation: %w", err)
	}
	if err := wal.RemoveTemps(db.logDir); err != nil { // what a rotation killed midway left
		return err
	}
	hdr, err := wal.CreateSegment(db.logDir, st.TSN+1, st.Lineage, db.cfg.FileMode, db.growBytes())
	if err != nil {
		db.dropWriter()
		return err
	}
	crashAt(crashRotateCreated)
	g.pos = hdr
	return db.openWriter(g.pos.Seg)
}

// frameRecords encodes the accepted records, each chained to the one before it (ops were encoded before
// the lock was taken).
func (g *group) frameRecords() {
	g.ends = make([]logPos, len(g.recs))
	g.buf = &g.db.frame
	g.buf.Reset()
	chain := g.pos.Chain
	for i, r := range g.accepted {
		if r.reserve != nil {
			var err error
			if chain, err = wal.Frame(g.buf, &g.recs[i], chain); err != nil {
				panic(fmt.Sprintf("txn: frame reservation: %v", err)) // INVARIANT: a reservation record always encodes
			}
		} else {
			rec := &g.recs[i]
			lineAt := g.buf.Len()
			chain = wal.FrameOps(g.buf, rec.TSN, rec.Time, rec.Proc, r.opsJSON, chain)
			opsAt := g.buf.Len() - lineAt - wal.CRCSuffixLen - len(r.opsJSON)
			for j := range rec.Ops { // rec.Ops is r.ops: spans in opsJSON become spans in the line
				rec.Ops[j].Span.Off += uint32(opsAt) // INVARIANT: a request is framed once
			}
		}
		g.ends[i] = logPos{Seg: g.pos.Seg, Off: g.pos.Off + int64(g.buf.Len()), Chain: chain}
	}
}

// appendAndPublish writes the records with one write, fsyncs them (the commit point) and writes
// state naming them. On failure the batch is taken back (undo) and it reports false.
// REQUIRES: commit lock held.
func (g *group) appendAndPublish() bool {
	db, st := g.db, g.st
	if err := db.appendLog(g.buf.Bytes(), g.pos.Off, g.noSync()); err != nil {
		db.undo(g.accepted, g.pos.Off, g.buf.Len(), err)
		return false
	}
	g.next = st
	g.next.Seq++
	g.next.TSN = g.recs[len(g.recs)-1].TSN
	g.next.Pos = g.ends[len(g.ends)-1]
	g.next.Boot = db.boot
	g.next.NoSync = g.noSync()
	if err := writeState(db.state, g.next, false); err != nil {
		db.undo(g.accepted, g.pos.Off, g.buf.Len(), err) // a torn slot fails its checksum: readers use the other
		return false
	}
	// The first NoSync state of a boot is made durable, so that after a power cut the store
	// knows its tail may have been lost (and starts a new lineage) rather than reissue TSNs.
	if g.next.NoSync && !(st.NoSync && st.Boot == db.boot) {
		if err := syncState(db.state); err != nil {
			// The new slot is in place and readers may already have seen the commit: it cannot
			// be taken back, and whether it would survive a power cut is unknown.
			e := fmt.Errorf("fsync state: %w", err)
			db.broken.Store(&e)
			for _, r := range g.accepted {
				r.err = &UnknownError{Err: e}
			}
			return false
		}
	}
	crashAt(crashAfterState)
	return true
}

// apply adds the group's records to this process's index (unless a reader's catch-up already
// read them from the log) and tells the stats and the housekeeper.
func (g *group) apply() {
	db, x := g.db, g.x
	db.catchMu.Lock()
	x.mu.Lock()
	var applyErr error
	switch x.pos {
	case g.next.Pos: // a reader's catch-up got here first
	case g.st.Pos:
		start := g.pos
		for i := range g.recs {
			if applyErr = x.apply(&g.recs[i], start, g.ends[i]); applyErr != nil {
				break
			}
			start = g.ends[i]
		}
		x.seq = max(x.seq, g.next.Seq)
	default:
		// A reader's catch-up stopped between segments (at the new segment's header, say, after
		// a read error): it will read this batch from the log, as state names it.
	}
	x.mu.Unlock()
	db.catchMu.Unlock()
	db.cache.drain()
	if applyErr != nil {
		panic(fmt.Sprintf("txn: own committed record does not apply: %v", applyErr)) // broken invariant
	}
	db.stats.record(g.ownMembers(), len(g.accepted), !g.noSync())
	db.noteCommit(g.next.TSN)
}
