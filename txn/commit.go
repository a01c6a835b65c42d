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
