package txn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"syscall"
	"time"

	"github.com/txtdb/txtdb/wal"
)

// Commit requests of other processes (docs/PROTOCOL.md, "Commit requests of other processes"):
// a group that finds the commit lock taken offers its members on the board and waits for the
// lock; the holder takes the offers of live processes, validates them with its own members and
// commits them all under one fsync. Whoever gets the lock next, the offering process included,
// learns each outcome from the board.

// taken is a request of another process this group took from the board.
type taken struct {
	slot   int
	owner  string
	seq    uint64
	p      *slotPeer
	reqs   []*request
	wrote  bool // its outcome is written
	locked bool // its offer lock is held
}

// offerable reports whether the group's members may be offered to another process: transactions
// only (a reservation's result goes to this process's allocator), of a handle that fsyncs its
// commits (without an fsync to share, an offer costs more than the lock hand-off it saves) and
// has not turned it off (Config.NoOffer).
func (g *group) offerable() bool {
	b := g.db.board
	if b == nil || b.own == nil || g.db.cfg.NoSync || g.db.cfg.NoOffer {
		return false
	}
	for _, r := range g.members {
		if r.tx == nil {
			return false
		}
	}
	return true
}

// lockOrOffer takes the commit lock. If another process holds it, the group first offers its
// members on the board (g.offered). When the wait ends without the lock, an offer is withdrawn
// unless a holder took it: then the group waits for the lock, however long, to learn the outcome.
func (g *group) lockOrOffer() (func() error, error) {
	db := g.db
	if !g.offerable() {
		return g.lock()
	}
	unlock, ok, err := db.lock.TryLock()
	if err != nil {
		return nil, err
	}
	if ok {
		return unlock, nil
	}
	g.dropCancelled()
	var offer []*request
	for _, r := range g.members {
		if r.err == nil {
			offer = append(offer, r)
		}
	}
	if len(offer) == 0 || len(offer) > maxOfferTxs {
		return g.lock()
	}
	if err := db.board.announce(db.ID(), offer); err != nil {
		var unknown *UnknownError
		switch {
		case errors.Is(err, errAnnouncedTaken):
			g.offered = offer
			return g.waitTaken()
		case errors.As(err, &unknown):
			return nil, err
		}
		return g.lock() // nothing offered: commit it under the lock
	}
	g.offered = offer
	faults.didOffer(db)
	if db.board.own.wake != nil {
		ctx, cancel := g.lockContext()
		unlock, err = g.waitOffer(ctx)
		cancel()
	} else {
		unlock, err = g.lock()
	}
	if err == nil {
		return unlock, nil // nil: the outcome is known (learn)
	}
	took, werr := db.board.withdraw(db.ID())
	if werr != nil {
		return nil, &UnknownError{Err: errors.Join(err, fmt.Errorf("withdraw commit request: %w", werr))}
	}
	if !took {
		g.offered = nil
		return nil, err
	}
	return g.waitTaken()
}

// waitTaken waits, without bound, for the lock or for the outcome of the group's offer, which a
// holder took, whichever comes first (it may be published already).
func (g *group) waitTaken() (func() error, error) {
	db := g.db
	var unlock func() error
	var err error
	if db.board.own.wake != nil {
		if g.learn() {
			return nil, nil
		}
		unlock, err = g.waitOffer(context.Background())
	} else {
		unlock, err = db.lock.Lock(context.Background())
	}
	if err != nil {
		// Another process took the offer: it may have committed it.
		return nil, &UnknownError{Err: fmt.Errorf("wait for the commit lock to learn the outcome of an offered commit: %w", err)}
	}
	return unlock, nil
}

// abandonOffer gives up learning the outcome of the group's offer under the lock (the group
// failed before it could read it, with cause): it withdraws the offer, and if a holder took it
// already, the offered members' outcome is unknown (it may be committed).
func (g *group) abandonOffer(cause error) {
	if len(g.offered) == 0 {
		return
	}
	took, err := g.db.board.withdraw(g.db.ID())
	if err == nil && !took {
		g.offered = nil // withdrawn: nothing of it is committed, the plain error holds
		return
	}
	e := &UnknownError{Err: errors.Join(cause, err)}
	for _, r := range g.offered {
		if r.err == nil && !r.settled {
			r.err, r.settled = e, true
		}
	}
}

// offerPoll is how long the owner of an offer sleeps on its wake word before it looks again, and
// offerPolls how many times it does so before it also waits for the lock in flock(2). A holder
// rings the word once it has published the outcome, and, when it releases the lock with offers it
// did not take, rings their owners, so that one of them takes the lock; the polls bound the wait
// for a wake that never comes (a holder of another build, or one that died). Past offerPolls the
// sleeps double, up to offerPollMax: a long wait costs no CPU to speak of.
const (
	offerPoll    = 500 * time.Microsecond
	offerPolls   = 16
	offerPollMax = 32 * time.Millisecond
)

// waitOffer waits for the commit lock, until ctx ends, or, sooner, for a holder's wake-up after
// which the offer's outcome is decided and published (learn). It returns the unlock func, or nil
// if it learned the outcome without the lock. At first it only tries the lock, each time it
// wakes: a blocked flock(2) could not be called off once the outcome is learned, and would take
// the lock only to give it back.
func (g *group) waitOffer(ctx context.Context) (func() error, error) {
	db := g.db
	w := db.board.own.wake
	for range offerPolls {
		if ctx.Err() != nil {
			break
		}
		v, ok := w.load()
		if !ok {
			break
		}
		if g.learn() {
			return nil, nil
		}
		unlock, got, err := db.lock.TryLock()
		if err != nil {
			return nil, err
		}
		if got {
			return unlock, nil
		}
		futexWait(w.word, v, offerPoll)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type got struct {
		unlock func() error
		err    error
	}
	ch := make(chan got, 1)
	go func() {
		u, err := db.lockWith(ctx)
		ch <- got{u, err}
		futexWake(w.word) // the waiter below looks at ch
	}()
	// A long wait (a slow holder, or one that stopped): the sleeps double up to offerPollMax, as
	// the grant and every holder that decides the offer ring the word.
	for sleep := offerPoll; ; sleep = min(2*sleep, offerPollMax) {
		v, ok := w.load()
		select {
		case r := <-ch:
			return r.unlock, r.err
		default:
		}
		if g.learn() {
			cancel()
			if r := <-ch; r.err == nil {
				_ = r.unlock() // granted as it was abandoned
			}
			return nil, nil
		}
		if ok {
			futexWait(w.word, v, sleep)
		} else {
			r := <-ch
			return r.unlock, r.err
		}
	}
}

// learn reads the offer's outcome without the lock. It counts only if every accepted TSN is at or
// below state in the outcome's lineage and the outcome reads the same again after state: a holder
// that found it stale would have cleared it before moving state past it (PROTOCOL.md).
func (g *group) learn() bool {
	db, o := g.db, g.db.board.own
	line, err := db.board.outcomeLine(o.outcome)
	if err != nil || !outcomeNames(line, db.ID(), o.seq) {
		return false
	}
	first := slices.Clone(line)
	st, err := db.readState()
	if err != nil {
		return false
	}
	if line, err = db.board.outcomeLine(o.outcome); err != nil || !bytes.Equal(first, line) {
		return false
	}
	out, ok := decodeOutcome(first)
	if !ok || out.Local || len(out.Res) != len(g.offered) || st.Lineage != out.Lineage || staleOutcome(out, st) {
		return false
	}
	g.adopt(out)
	return true
}

// adopt gives the offered members the outcome a holder decided.
func (g *group) adopt(out offerOutcome) {
	for i, r := range g.offered {
		res := out.Res[i]
		r.settled = true
		switch {
		case res.TSN != 0:
			r.tsn = res.TSN
			g.delegated++
		case res.Conflict != nil:
			r.err, r.rejected = res.Conflict, true
			g.db.stats.rejected(r.err)
		default:
			r.err = fmt.Errorf("txtdb: commit: %s", res.Err)
		}
	}
}

// delegatedStats counts the members another process committed.
func (g *group) delegatedStats() {
	if g.delegated > 0 {
		g.db.stats.delegate(g.delegated)
		g.db.noteCommit(g.maxTSN())
	}
}

// ding wakes the owners of the offers this group decided.
func (g *group) ding() {
	woke := false
	for _, t := range g.taken {
		if t.wrote {
			g.db.board.ding(t.slot)
			woke = true
		}
	}
	if woke {
		faults.didWake(g.db)
	}
}

// settle learns what became of this group's offer, under the commit lock after recovery. Members
// a holder committed or rejected get their outcome (settled); if no holder took the offer, or the
// one that did died before its batch reached the log, the group commits them itself, and the
// outcome says so first (no later holder takes the offer then).
func (g *group) settle() error {
	if len(g.offered) == 0 {
		return nil
	}
	db, o := g.db, g.db.board.own
	out, ok, err := db.board.readOutcome(o.outcome)
	if err != nil {
		return err
	}
	if ok && out.Owner == db.ID() && out.Seq == o.seq && !out.Local {
		if len(out.Res) != len(g.offered) {
			return fmt.Errorf("outcome of %d transactions for %d offered", len(out.Res), len(g.offered))
		}
		if out.Lineage != g.st.Lineage {
			e := &UnknownError{Err: errors.New("the store's history changed after another process took the commit")}
			for _, r := range g.offered {
				r.err, r.settled = e, true
			}
			return nil
		}
		if !staleOutcome(out, g.st) {
			g.adopt(out)
			return nil
		}
		// Stale: the holder died before all of its batch landed. Recovery may have adopted a
		// prefix of it: the members whose TSN state reaches are committed (at that TSN), only
		// the others are still to be done.
		if err := writeOutcome(o.req, offerOutcome{Owner: db.ID(), Seq: o.seq, Local: true}, false); err != nil {
			return err
		}
		for i, r := range g.offered {
			if t := out.Res[i].TSN; t != 0 && t <= g.st.TSN {
				r.settled, r.tsn = true, t
				g.delegated++
			}
		}
		return nil
	}
	return writeOutcome(o.req, offerOutcome{Owner: db.ID(), Seq: o.seq, Local: true}, false)
}

// hasTSN reports whether out accepts a transaction (its fate then follows state).
func hasTSN(out offerOutcome) bool {
	for _, r := range out.Res {
		if r.TSN != 0 {
			return true
		}
	}
	return false
}

// landed marks the offers this group accepted as decided for good: their batch is published.
func (g *group) landed() {
	for _, t := range g.taken {
		if t.wrote {
			g.db.board.done[t.slot] = offerID{t.owner, t.seq}
		}
	}
}

// landedPart rewrites a stale outcome of which recovery adopted a prefix (some of its TSNs state
// reaches): the committed members keep their TSN, the others get an error (they were not
// committed, and are not taken again: the request is decided). An outcome none of whose TSNs
// state reaches is not rewritten (ok false): it is cleared and its request taken again whole.
func landedPart(out offerOutcome, st state) (offerOutcome, bool) {
	landed := false
	for _, r := range out.Res {
		landed = landed || (r.TSN != 0 && r.TSN <= st.TSN)
	}
	if !landed {
		return out, false
	}
	part := out
	part.Res = make([]offerResult, len(out.Res))
	for i, r := range out.Res {
		if r.TSN > st.TSN {
			r = offerResult{Err: "not committed: the commit lock holder that took it died before its batch reached the log whole"}
		}
		part.Res[i] = r
	}
	return part, true
}

// staleOutcome reports whether out names TSNs that state does not reach: the holder that wrote it
// died before its batch landed (recovery erased it), and the request is still to be done.
func staleOutcome(out offerOutcome, st state) bool {
	for _, r := range out.Res {
		if r.TSN > st.TSN {
			return true
		}
	}
	return false
}

// collect takes the offers of other live processes from the board and adds them to the group's
// members, after its own. An offer whose snapshot is older than the history this index keeps
// whole stays on the board (its owner commits it under the lock itself). Reading the board must
// not fail: a holder that commits without rewriting an outcome past state would make it look
// committed. REQUIRES: commit lock held, recovered and caught up.
func (g *group) collect() error {
	db := g.db
	b := db.board
	if b == nil {
		return nil
	}
	n, err := b.readSlots() // the slots past the file's end were never used
	if err != nil {
		return err
	}
	for i := range n / annSize {
		if b.own != nil && i == b.own.i {
			continue
		}
		a, ok := decodeAnnouncement(b.buf[i*annSize : (i+1)*annSize])
		if !ok || a.n == 0 {
			continue
		}
		t, err := g.take(i, a)
		if err != nil {
			return fmt.Errorf("commit board slot %d: %w", i, err)
		}
		if t != nil {
			g.taken = append(g.taken, t)
			g.members = append(g.members, t.reqs...)
		}
	}
	return nil
}

// take takes slot i's offer a, or returns nil if it is done, withdrawn, its owner is dead, or it
// cannot be validated here. The slot's offer lock stays held until its outcome is written.
func (g *group) take(i int, a announcement) (*taken, error) {
	db := g.db
	b := db.board
	if b.done[i] == a.id() {
		return nil, nil
	}
	p, err := b.peer(i)
	if err != nil {
		return nil, err
	}
	line, err := b.outcomeLine(p.outcome)
	if err != nil {
		return nil, err
	}
	var out offerOutcome
	ok := false
	if outcomeNames(line, a.owner, a.seq) {
		out, ok = decodeOutcome(line)
	}
	if ok {
		if out.Local || out.Lineage != g.st.Lineage || !staleOutcome(out, g.st) {
			b.done[i] = a.id()
			if !out.Local && out.Lineage == g.st.Lineage {
				b.ding(i) // decided by a batch recovery adopted: its owner may be asleep
			}
			return nil, nil // decided
		}
		// Stale: its holder died before the batch landed. Clear it before anything this group
		// commits moves state past its TSNs, whether or not the offer is taken again below.
		// If a prefix of the batch landed, the request is decided: the members state reaches
		// are committed and must not be committed again; the others are not.
		if part, ok := landedPart(out, g.st); ok {
			if err := writeOutcome(p.req, part, false); err != nil {
				return nil, err
			}
			b.done[i] = a.id()
			return nil, nil
		}
		if err := writeOutcome(p.req, offerOutcome{Owner: a.owner, Seq: a.seq - 1}, false); err != nil {
			return nil, err
		}
	}
	// The offer lock first: a handle claiming the slot holds it until it has replaced a dead
	// owner's announcement, so a live slot read under it never carries a dead owner's offer.
	fd := int(p.offer.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil // its owner is withdrawing it, or a handle is claiming the slot
		}
		return nil, err
	}
	t := &taken{slot: i, owner: a.owner, seq: a.seq, p: p, locked: true}
	ok = false
	defer func() {
		if !ok {
			_ = syscall.Flock(fd, syscall.LOCK_UN)
		}
	}()
	if alive, err := p.alive(); err != nil || !alive {
		if err == nil {
			b.done[i] = a.id() // a dead owner's offer is never taken
		}
		return nil, err
	}
	slot := make([]byte, annSize)
	if _, err := b.m.ReadAt(slot, int64(i*annSize)); err != nil {
		return nil, err
	}
	if again, good := decodeAnnouncement(slot); !good || again != a {
		return nil, nil // withdrawn (or replaced) since the board was read
	}
	body := make([]byte, a.n)
	if _, err := p.req.ReadAt(body, outcomeRegion); err != nil || crc32.Checksum(body, wal.CRCTable) != a.crc {
		return nil, nil // not yet whole: an announcement follows its body, so this is a stale one
	}
	x := g.x
	reqs, err := decodeForeign(db, x, body)
	if err == nil && len(reqs) > maxOfferTxs {
		return nil, nil // its outcome might not fit: its owner commits it under the lock
	}
	if err != nil {
		// A live owner offered what this build cannot read: tell it, rather than leave it waiting.
		if err := writeOutcome(p.req, offerOutcome{Owner: a.owner, Seq: a.seq, Lineage: g.st.Lineage,
			Res: []offerResult{{Err: "undecodable commit request: " + err.Error()}}}, false); err != nil {
			return nil, err // the offer lock is released (not taken)
		}
		t.reqs = nil
		ok = true
		return t, nil
	}
	x.mu.RLock()
	exact := x.exactSince()
	x.mu.RUnlock()
	for _, r := range reqs {
		if r.tx.idx != nil && r.tx.snap < exact {
			return nil, nil // history needed to validate it was forgotten here
		}
		r.from = t
	}
	t.reqs = reqs
	ok = true
	return t, nil
}

// decide writes the outcome of every taken offer and releases its offer lock: before the log
// write, so that whoever holds the lock next can tell, from state, whether its TSNs landed.
func (g *group) decide() error {
	var errs []error
	for _, t := range g.taken {
		if t.wrote || t.reqs == nil {
			continue
		}
		out := offerOutcome{Owner: t.owner, Seq: t.seq, Lineage: g.st.Lineage, Res: make([]offerResult, len(t.reqs))}
		for i, r := range t.reqs {
			var ce *ConflictError
			switch {
			case r.err == nil && r.tsn != 0:
				out.Res[i].TSN = r.tsn
			case errors.As(r.err, &ce):
				out.Res[i].Conflict = ce
			case r.err != nil:
				out.Res[i].Err = r.err.Error()
			default:
				out.Res[i].Err = "not committed"
			}
		}
		if err := writeOutcome(t.p.req, out, true); err != nil {
			errs = append(errs, err)
			continue
		}
		t.wrote = true
		if !hasTSN(out) {
			g.db.board.done[t.slot] = offerID{t.owner, t.seq} // rejections are final at once
		}
	}
	g.releaseOffers()
	crashAt(crashAfterOutcomes)
	return errors.Join(errs...)
}

// releaseOffers releases the offer locks of the taken offers.
func (g *group) releaseOffers() {
	for _, t := range g.taken {
		if t.locked {
			_ = syscall.Flock(int(t.p.offer.Fd()), syscall.LOCK_UN)
			t.locked = false
		}
	}
}

// ownMembers counts the accepted members that are this handle's.
func (g *group) ownMembers() int {
	n := 0
	for _, r := range g.accepted {
		if r.from == nil {
			n++
		}
	}
	return n
}
