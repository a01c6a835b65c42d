package txn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/txtdb/txtdb/pages"
)

// request is one member of a commit group: a transaction's prepared changes, or a reservation of
// page IDs for this process.
type request struct {
	ctx     context.Context // bounds the wait for the commit lock, not what follows it
	tx      *Tx             // nil for a reservation
	ops     []op            // prepared outside the lock (tx != nil)
	opsJSON []byte          // the ops, already encoded (tx != nil)
	reserve *reservation    // reservation request (tx == nil)

	done    chan struct{} // closed when the outcome is known
	promote chan struct{} // the lead is handed to this request's goroutine
	err     error         // set before done is closed
	tsn     pages.TSN     // the commit's TSN on success
}

type reservation struct {
	inc, ns    string
	n          uint64
	from, upto uint64 // result
}

// submit queues r for the next commit group and waits for the group's outcome. The goroutine
// that finds no group running leads one itself: it takes every queued request, commits them under
// one lock acquisition and one fsync, and hands the lead to the oldest request that queued in the
// meantime. An uncontended commit therefore runs entirely in its caller's goroutine.
//
// Until a group has taken r, ctx may abandon it (nothing happened); once taken, the caller waits
// for the outcome, because cancelling then would report failure for a commit that may have
// happened.
func (db *DB) submit(ctx context.Context, r *request) error {
	if err := db.usable(); err != nil {
		return err
	}
	r.ctx = ctx
	r.done = make(chan struct{})
	r.promote = make(chan struct{}, 1)
	faults.queue(+1)
	defer faults.queue(-1)
	db.qmu.Lock()
	if db.closed.Load() {
		db.qmu.Unlock()
		return ErrClosed
	}
	db.queue = append(db.queue, r)
	lead := !db.leading
	db.leading = true
	db.qmu.Unlock()
	if lead {
		db.lead()
	}
	cancelled := ctx.Done()
	for {
		select {
		case <-r.done:
			return r.err
		case <-r.promote:
			db.lead()
		case <-cancelled:
			db.qmu.Lock()
			i := slices.Index(db.queue, r)
			if i < 0 {
				db.qmu.Unlock()
				cancelled = nil // taken into a group: wait for its outcome
				continue
			}
			db.queue = slices.Delete(db.queue, i, i+1)
			promoted := len(r.promote) > 0
			db.qmu.Unlock()
			if promoted {
				<-r.promote
				db.lead() // the lead was already handed to r: pass it on
			}
			return fmt.Errorf("txtdb: commit not started: %w", ctx.Err())
		}
	}
}

// lead runs one commit group from the queue, then hands the lead to the oldest request that
// queued meanwhile (or gives it up if none did).
// REQUIRES: the caller holds the lead (db.leading was set for it).
func (db *DB) lead() {
	db.qmu.Lock()
	n := min(len(db.queue), maxBatch)
	batch := slices.Clone(db.queue[:n])
	db.queue = slices.Delete(db.queue, 0, n)
	db.qmu.Unlock()
	if len(batch) > 0 {
		db.runBatch(batch)
		for _, r := range batch {
			close(r.done)
		}
	}
	db.qmu.Lock()
	defer db.qmu.Unlock()
	if len(db.queue) == 0 || db.closed.Load() {
		db.leading = false
		db.qidle.Broadcast()
		return
	}
	db.queue[0].promote <- struct{}{} // buffered; a request is promoted at most once
}

// drainQueue fails every request still queued (Close). REQUIRES: qmu held, no group running.
func (db *DB) drainQueue() {
	for _, r := range db.queue {
		r.err = ErrClosed
		close(r.done)
	}
	db.queue = nil
}

type groupStats struct {
	mu sync.Mutex
	s  Stats // guarded by mu
}

func (g *groupStats) record(n int, synced bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.s.Groups++
	g.s.Commits += int64(n)
	if synced {
		g.s.Fsyncs++
	}
	g.s.MaxSize = max(g.s.MaxSize, int64(n))
}

// runBatch commits one group. Every member gets err set.
func (db *DB) runBatch(batch []*request) {
	fail := func(err error) {
		for _, r := range batch {
			if r.err == nil {
				r.err = err
			}
		}
	}
	if err := db.usable(); err != nil {
		fail(err)
		return
	}
	// Wait for the lock at most LockTimeout, and no longer than the most patient member's
	// deadline: the shorter of Options.LockTimeout and the context wins.
	deadline := time.Now().Add(db.cfg.LockTimeout)
	latest, all := time.Time{}, true
	for _, r := range batch {
		d, ok := r.ctx.Deadline()
		all = all && ok
		if ok && d.After(latest) {
			latest = d
		}
	}
	if all && latest.Before(deadline) {
		deadline = latest
	}
	ctx, cancel := context.WithDeadline(db.ctx, deadline)
	unlock, err := db.lock.Lock(ctx)
	cancel()
	if err != nil {
		if db.ctx.Err() != nil {
			err = ErrClosed
		}
		fail(fmt.Errorf("txtdb: commit: %w", err))
		return
	}
	defer func() { _ = unlock() }()
	// Members whose context ended while the group waited leave now: nothing of them is written.
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = fmt.Errorf("txtdb: commit not started: %w", err)
		}
	}

	st, err := db.recoverLocked()
	var x *index
	if err == nil {
		x, err = db.catchUp(st, false)
		if errors.Is(err, errStale) {
			err = corrupt(db.state.path, 0, errors.New("state went backwards under the commit lock"))
		}
	}
	if err != nil {
		fail(fmt.Errorf("txtdb: commit: %w", err))
		return
	}
	if err := db.openWriter(st.pos.seg); err != nil {
		fail(fmt.Errorf("txtdb: commit: %w", err))
		return
	}

	// Validate in order, against committed data and the members accepted before.
	var (
		accepted []*request
		recs     []record
		ov       = newOverlay()
		next     = st.tsn
	)
	x.mu.RLock()
	for _, r := range batch {
		if r.err != nil {
			continue
		}
		var rec record
		if r.reserve != nil {
			if err := db.reserveLocked(x, r.reserve, ov); err != nil {
				r.err = err
				continue
			}
			rec = record{TSN: next, Ops: []op{{Op: opReserve, NS: r.reserve.ns, Inc: r.reserve.inc,
				From: r.reserve.from, Upto: r.reserve.upto}}}
		} else {
			if err := db.validate(x, r.tx, ov); err != nil {
				r.err = err
				db.stats.rejected(err)
				continue
			}
			next++
			rec = record{TSN: next, Ops: r.ops}
			r.tsn = rec.TSN
			ov.add(x, &rec)
		}
		accepted = append(accepted, r)
		recs = append(recs, rec)
	}
	x.mu.RUnlock()
	if len(accepted) == 0 {
		return
	}

	// Rotate to a new segment when this one is full; the old one is fsynced first (it holds
	// what the new one follows, also under NoSync). A segment is named by the TSN after the last
	// one committed before it; one started since the last commit (only reservations in it)
	// already has that name, so it is not rotated.
	pos := st.pos
	if pos.off >= db.cfg.SegmentBytes && pos.seg != st.tsn+1 {
		if err := db.w.Sync(); err != nil {
			fail(fmt.Errorf("txtdb: commit: fsync log before rotation: %w", err))
			return
		}
		if err := removeTemps(db.logDir); err != nil { // what a rotation killed midway left
			fail(fmt.Errorf("txtdb: commit: %w", err))
			return
		}
		hdr, err := createSegment(db.logDir, st.tsn+1, st.lineage, db.cfg.FileMode, db.growBytes())
		if err != nil {
			db.dropWriter()
			fail(fmt.Errorf("txtdb: commit: %w", err))
			return
		}
		crashAt(crashRotateCreated)
		pos = hdr
		if err := db.openWriter(pos.seg); err != nil {
			fail(fmt.Errorf("txtdb: commit: %w", err))
			return
		}
	}

	// Frame the records, each chained to the one before it.
	var buf bytes.Buffer
	ends := make([]logPos, len(recs))
	chain := pos.chain
	for i, r := range accepted {
		var err error
		if r.reserve != nil {
			chain, err = frame(&buf, &recs[i], chain)
		} else {
			chain = frameOps(&buf, recs[i].TSN, r.opsJSON, chain)
		}
		if err != nil { // INVARIANT: a reservation record always encodes
			panic(fmt.Sprintf("txn: frame reservation: %v", err))
		}
		ends[i] = logPos{seg: pos.seg, off: pos.off + int64(buf.Len()), chain: chain}
	}

	// Append, fsync (the commit point), publish in state.
	if err := db.appendLog(buf.Bytes(), pos.off); err != nil {
		db.undo(accepted, pos.off, buf.Len(), err)
		return
	}
	next2 := st
	next2.seq++
	next2.tsn = next
	next2.pos = ends[len(ends)-1]
	next2.boot = db.boot
	next2.noSync = db.cfg.NoSync
	if err := db.state.write(next2, false); err != nil {
		db.undo(accepted, pos.off, buf.Len(), err) // a torn slot fails its checksum: readers use the other
		return
	}
	// The first NoSync state of a boot is made durable, so that after a power cut the store
	// knows its tail may have been lost (and starts a new lineage) rather than reissue TSNs.
	if next2.noSync && !(st.noSync && st.boot == db.boot) {
		if err := db.state.sync(); err != nil {
			// The new slot is in place and readers may already have seen the commit: it cannot
			// be taken back, and whether it would survive a power cut is unknown.
			e := fmt.Errorf("fsync state: %w", err)
			db.broken.Store(&e)
			for _, r := range accepted {
				r.err = &UnknownError{Err: e}
			}
			return
		}
	}
	crashAt(crashAfterState)

	// Apply to this process's index (unless a reader's catch-up already did).
	db.catchMu.Lock()
	x.mu.Lock()
	var applyErr error
	switch x.pos {
	case next2.pos: // a reader's catch-up got here first
	case st.pos:
		start := pos
		for i := range recs {
			if applyErr = x.apply(&recs[i], start, ends[i]); applyErr != nil {
				break
			}
			start = ends[i]
		}
		x.seq = max(x.seq, next2.seq)
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
	db.stats.record(len(accepted), !db.cfg.NoSync)
	db.noteCommit(next2.tsn)
}

// appendLog writes the group's records at off and fsyncs them (unless NoSync).
// REQUIRES: commit lock held.
func (db *DB) appendLog(b []byte, off int64) error {
	if err := faults.hit(faultLogWrite); err != nil {
		return err
	}
	end := off + int64(len(b))
	if end > db.wSize {
		// Another process may have grown the segment since this handle last looked.
		if fi, err := db.w.Stat(); err == nil {
			db.wSize = max(db.wSize, fi.Size())
		}
	}
	if end > db.wSize {
		// Grow the segment with real zeros past the batch, so later batches overwrite
		// preallocated space (their fdatasync then has no size change to journal).
		grown := end + db.growBytes()
		if err := faults.hit(faultLogGrow); err != nil {
			return err
		}
		if err := writeZeros(db.w, max(db.wSize, end), grown); err != nil {
			return fmt.Errorf("grow log: %w", err)
		}
		db.wSize = grown
	}
	if crashHit(crashMidRecord) {
		_, _ = db.w.WriteAt(b[:len(b)/2], off)
		die(crashMidRecord)
	}
	if _, err := db.w.WriteAt(b, off); err != nil {
		return fmt.Errorf("write log: %w", err)
	}
	crashAt(crashAfterAppend)
	if db.cfg.NoSync {
		return nil
	}
	if err := faults.hit(faultLogSync); err != nil {
		return err
	}
	if err := datasync(db.w); err != nil {
		return fmt.Errorf("fsync log: %w", err)
	}
	faults.didSync(uint64(db.wSeg), off+int64(len(b)))
	crashAt(crashAfterSync)
	return nil
}

// undo takes a failed group's bytes back out of the log. If that works, the commits did not happen
// and used no TSN; if not, their outcome is unknown and the handle refuses further work.
// REQUIRES: commit lock held.
func (db *DB) undo(accepted []*request, off int64, n int, cause error) {
	err := fmt.Errorf("txtdb: commit: %w", cause)
	// Erase what may have been written, but not past the file's end: growing the file to erase
	// would need the very space whose lack may have caused the failure.
	to := off + int64(n)
	var terr error
	if fi, serr := db.w.Stat(); serr != nil {
		terr = serr
	} else if to = min(to, fi.Size()); to > off {
		terr = eraseSync(db.w, off, to)
	}
	// Forget the handle: after a failure its segment may be removed by the next lock holder's
	// recovery (an empty rotated segment) and re-created under the same name.
	db.dropWriter()
	if terr != nil {
		e := errors.Join(cause, terr)
		db.broken.Store(&e)
		err = &UnknownError{Err: e}
	}
	for _, r := range accepted {
		r.err = err
		r.tsn = 0
	}
}

// dropWriter closes the group leader's segment handle; the next batch reopens by name.
func (db *DB) dropWriter() {
	if db.w != nil {
		_ = db.w.Close()
		db.w, db.wSeg, db.wSize = nil, 0, 0
	}
}

// growBytes is how much zeroed space a segment gets ahead of its records.
func (db *DB) growBytes() int64 { return min(db.cfg.SegmentBytes, 1<<20) }

// openWriter makes db.w the read-write handle on segment seg. Used only by the goroutine leading
// a commit group.
//
// INVARIANT: a cached handle names the live file. Only segments past state are ever removed
// (recovery drops an unused rotated segment) or re-created under their name, and this process
// writes past state only inside a batch: a batch that fails drops the handle (dropWriter), one
// that succeeds moves state onto the segment.
func (db *DB) openWriter(seg pages.TSN) error {
	if db.w != nil && db.wSeg == seg {
		return nil
	}
	path := filepath.Join(db.logDir, segName(seg))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open log segment: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("open log segment: %w", err)
	}
	db.dropWriter()
	db.w, db.wSeg, db.wSize = f, seg, fi.Size()
	return nil
}

// frameOps appends a commit record with pre-encoded ops: {"tsn":N,"ops":<ops>,"crc":"..."}.
func frameOps(buf *bytes.Buffer, tsn pages.TSN, opsJSON []byte, prev uint32) uint32 {
	start := buf.Len()
	buf.WriteString(`{"tsn":`)
	buf.WriteString(strconv.FormatUint(uint64(tsn), 10))
	buf.WriteString(`,"ops":`)
	buf.Write(opsJSON)
	return appendCRC(buf, start, prev)
}
