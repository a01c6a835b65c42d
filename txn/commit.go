package txn

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// request is one member of a commit group: a transaction's prepared changes, or a reservation of
// page IDs for this process.
type request struct {
	ctx     context.Context // bounds the wait for the commit lock, not what follows it
	tx      *Tx             // nil for a reservation
	ops     []op            // prepared outside the lock (tx != nil)
	opsJSON []byte          // the ops, already encoded (tx != nil); each op's Span names its text here
	reserve *reservation    // reservation request (tx == nil)

	done    chan struct{} // closed when the outcome is known
	promote chan struct{} // the lead is handed to this request's goroutine
	err     error         // set before done is closed
	// rejected: err is validation's verdict, which a group that drops a member after
	// validation reconsiders
	rejected bool
	tsn      pages.TSN // the commit's TSN on success
	// from: another process's request, taken from the board (its tx carries only what validation
	// needs); settled: an offered member whose outcome another process decided
	from    *taken
	settled bool
}

// proc is the handle id the request's record names.
func (r *request) proc(db *DB) string {
	if r.from != nil {
		return r.from.owner
	}
	return db.ID()
}

// reencode encodes op i again (the commit lock holder changed it: a keyed append written whole),
// keeping the others' bytes; the spans of the ops after it move with them.
func (r *request) reencode(i int) error {
	start := int(r.ops[i].Span.Off)
	end := start + int(r.ops[i].Span.Len)
	var b bytes.Buffer
	b.Grow(len(r.opsJSON))
	b.Write(r.opsJSON[:start])
	if err := wal.AppendOp(&b, &r.ops[i]); err != nil {
		return err
	}
	r.ops[i].Span = wal.MakeSpan(b.Bytes(), start, b.Len())
	delta := b.Len() - end
	b.Write(r.opsJSON[end:])
	for j := i + 1; j < len(r.ops); j++ {
		r.ops[j].Span.Off = uint32(int(r.ops[j].Span.Off) + delta)
	}
	r.opsJSON = b.Bytes()
	return nil
}

type reservation struct {
	inc, ns    string
	n          uint64
	from, upto uint64 // result
}

// commitQueue is where a process's commit requests wait for a group; one goroutine at a time
// leads a group.
type commitQueue struct {
	mu      sync.Mutex
	idle    *sync.Cond // signalled when the lead is given up
	reqs    []*request // guarded by mu
	leading bool       // guarded by mu
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
	db.q.mu.Lock()
	if db.closed.Load() {
		db.q.mu.Unlock()
		return ErrClosed
	}
	db.q.reqs = append(db.q.reqs, r)
	lead := !db.q.leading
	db.q.leading = true
	db.q.mu.Unlock()
	faults.queue(+1) // after r is in the queue: a test that waits for it knows its place
	defer faults.queue(-1)
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
			db.q.mu.Lock()
			i := slices.Index(db.q.reqs, r)
			if i < 0 {
				db.q.mu.Unlock()
				cancelled = nil // taken into a group: wait for its outcome
				continue
			}
			db.q.reqs = slices.Delete(db.q.reqs, i, i+1)
			promoted := len(r.promote) > 0
			db.q.mu.Unlock()
			if promoted {
				<-r.promote
				db.lead() // the lead was already handed to r: pass it on
			}
			return fmt.Errorf("txtdb: commit not started: %w", ctx.Err())
		}
	}
}

// lead runs one commit group from the queue, then hands the lead to the oldest request that
// queued meanwhile (or gives it up if none did). When the group leaves the commit lock held for
// more rounds (runBatch), the lead goes with it to the goroutine that runs them, and this one
// returns to its caller.
// REQUIRES: the caller holds the lead (db.q.leading was set for it).
func (db *DB) lead() {
	batch := db.dequeue()
	if len(batch) > 0 {
		handedOn := db.runBatch(batch)
		for _, r := range batch {
			close(r.done)
		}
		if handedOn {
			return
		}
	}
	db.passLead()
}

// dequeue takes the oldest queued requests, at most maxBatch.
func (db *DB) dequeue() []*request {
	db.q.mu.Lock()
	defer db.q.mu.Unlock()
	n := min(len(db.q.reqs), maxBatch)
	batch := slices.Clone(db.q.reqs[:n])
	db.q.reqs = slices.Delete(db.q.reqs, 0, n)
	return batch
}

// queued reports whether requests wait in the queue.
func (db *DB) queued() bool {
	db.q.mu.Lock()
	defer db.q.mu.Unlock()
	return len(db.q.reqs) > 0
}

// passLead hands the lead to the oldest queued request, or gives it up if none is queued.
// REQUIRES: the caller holds the lead.
func (db *DB) passLead() {
	db.q.mu.Lock()
	defer db.q.mu.Unlock()
	if len(db.q.reqs) == 0 || db.closed.Load() {
		db.q.leading = false
		db.q.idle.Broadcast()
		return
	}
	db.q.reqs[0].promote <- struct{}{} // buffered; a request is promoted at most once
}

// drainQueue fails every request still queued (Close). REQUIRES: q.mu held, no group running.
func (db *DB) drainQueue() {
	for _, r := range db.q.reqs {
		r.err = ErrClosed
		close(r.done)
	}
	db.q.reqs = nil
}

type groupStats struct {
	mu sync.Mutex
	s  Stats // guarded by mu
}

// record counts a group this handle wrote: own of its n commits were this handle's.
func (g *groupStats) record(own, n int, synced bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.s.Groups++
	g.s.Commits += int64(own)
	g.s.Served += int64(n - own)
	if synced {
		g.s.Fsyncs++
	}
	g.s.MaxSize = max(g.s.MaxSize, int64(n))
}

// delegate counts n commits of this handle that another process wrote.
func (g *groupStats) delegate(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.s.Commits += int64(n)
	g.s.Delegated += int64(n)
}
