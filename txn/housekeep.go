package txn

import (
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/txtdb/txtdb/pages"
)

// floorTracker publishes this process's snapshot floor in its registry entry, lazily: a Begin
// writes only when the entry says idle (one write after an idle spell), and the housekeeper raises
// the floor to the oldest pinned snapshot, or to idle once no transaction has been open for a
// tick. Lock order: floorTracker.mu before catchMu.
type floorTracker struct {
	mu        sync.Mutex
	reg       *registration     // nil for a read-only handle
	pins      map[pages.TSN]int // guarded by mu: snapshots of open transactions (multiset)
	beginning int               // guarded by mu: Begins between lowering the floor and pinning
	busy      bool              // guarded by mu: a Begin ran since the last tick
	seen      pages.TSN         // guarded by mu: the newest committed TSN this process has read

	plantNoLower bool                    // tests: a planted violation, Begin leaves an idle floor idle
	since        map[pages.TSN]time.Time // guarded by mu: when each pinned snapshot went from no pin to pinned (Stats)
}

func (f *floorTracker) init() { f.pins, f.since = map[pages.TSN]int{}, map[pages.TSN]time.Time{} }

// enter is called by Begin before it reads state: the published floor must be at or below every
// snapshot this Begin can get. Whatever state says next is at or above seen.
func (f *floorTracker) enter() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.beginning++
	f.busy = true
	if f.reg == nil {
		return nil
	}
	f.reg.mu.Lock()
	idle := f.reg.entry.idle
	f.reg.mu.Unlock()
	if !idle || f.plantNoLower {
		return nil
	}
	if err := f.reg.publish(f.seen, false); err != nil {
		f.beginning--
		return err
	}
	return nil
}

// pinned ends a Begin: its snapshot is now an open transaction (ok) or the Begin failed.
func (f *floorTracker) pinned(snap pages.TSN, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.beginning--
	if ok {
		if f.pins[snap] == 0 {
			f.since[snap] = time.Now()
		}
		f.pins[snap]++
		f.seen = max(f.seen, snap)
	}
}

// unpin ends a transaction.
func (f *floorTracker) unpin(snap pages.TSN) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pins[snap]--; f.pins[snap] <= 0 {
		delete(f.pins, snap)
		delete(f.since, snap)
	}
}

// saw records a committed TSN this process read (its own commits included).
func (f *floorTracker) saw(t pages.TSN) {
	f.mu.Lock()
	f.seen = max(f.seen, t)
	f.mu.Unlock()
}

// rewind forgets the TSNs seen in a history that was rewound (a new lineage).
func (f *floorTracker) rewind(t pages.TSN) {
	f.mu.Lock()
	f.seen = t
	f.mu.Unlock()
}

// raise moves the published floor up: to the oldest open snapshot, or to idle when no
// transaction was open or begun since the last tick.
func (f *floorTracker) raise() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reg == nil || f.beginning > 0 {
		return nil
	}
	busy := f.busy
	f.busy = false
	low, first := f.seen, true
	for s := range f.pins {
		if first || s < low {
			low, first = s, false
		}
	}
	if len(f.pins) == 0 && !busy {
		return f.reg.publish(0, true)
	}
	// Busy: stay non-idle (so Begins write nothing) but rise to the oldest open snapshot, or, with
	// none open, to the newest TSN seen: every Begin from now on reads a state at or above it.
	f.reg.mu.Lock()
	cur := f.reg.entry
	f.reg.mu.Unlock()
	if cur.idle || low > cur.floor {
		return f.reg.publish(low, false)
	}
	return nil
}

// settle raises the published floor to seen when this handle has no open transaction and no
// Begin in progress, so a checkpoint about to clean up need not wait for the next tick to free
// what this handle read before. Safe by the floor rule: a Begin from now on lowers nothing (the
// entry is not idle) and reads a state at or above seen. An idle entry stays idle.
func (f *floorTracker) settle() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reg == nil || f.beginning > 0 || len(f.pins) > 0 {
		return nil
	}
	f.reg.mu.Lock()
	cur := f.reg.entry
	f.reg.mu.Unlock()
	if cur.idle || f.seen <= cur.floor {
		return nil
	}
	return f.reg.publish(f.seen, false)
}

// oldest returns the oldest open snapshot of this process and whether there is one.
func (f *floorTracker) oldest() (pages.TSN, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var low pages.TSN
	found := false
	for s := range f.pins {
		if !found || s < low {
			low, found = s, true
		}
	}
	return low, found
}

// housekeepTick is how often the housekeeper raises the floor and looks at the checkpoint lag.
const housekeepTick = 200 * time.Millisecond

// housekeep is the handle's background goroutine (owned by the DB; Close stops it): it raises the
// snapshot floor, and checkpoints when this process committed and the checkpoint lags by more than
// CheckpointEvery or CheckpointCommits (the checkpoint on disk, whoever wrote it: catalogWatch).
// Whoever commits takes its turn, so the lag stays bounded without any long-lived process.
func (db *DB) housekeep() {
	defer db.housekeeper.Done()
	t := time.NewTicker(housekeepTick)
	defer t.Stop()
	var dirtySince time.Time // first commit of this process not yet checkpointed
	var keptSince time.Time  // first tick with nothing to checkpoint and superseded files kept
	var cat catalogWatch
	var tried time.Time // the last tryCheckpoint
	for {
		kicked := false
		select {
		case <-db.ctx.Done():
			return
		case <-t.C:
		case <-db.kick:
			kicked = true
		}
		_ = db.floor.raise()
		if db.commitsSinceCheckpoint() == 0 {
			dirtySince = time.Time{}
			// The store went quiet after runs that kept superseded files for reuse: a
			// cleanup removes them (the next tick after CheckpointEvery without commits).
			if db.kept.Load() {
				if keptSince.IsZero() {
					keptSince = time.Now()
				} else if time.Since(keptSince) >= db.cfg.CheckpointEvery {
					db.kept.Store(false)
					if !db.tryCheckpoint(false) {
						db.kept.Store(true)
					}
					keptSince = time.Time{}
				}
			}
			continue
		}
		keptSince = time.Time{}
		if dirtySince.IsZero() {
			dirtySince = time.Now()
		}
		// Another process may have checkpointed meanwhile: the lag that counts is the store's,
		// measured from the checkpoint on disk, not the one this handle last wrote. Without this,
		// every committing process ran its own checkpoint on its own clock, and each wrote
		// nearly every hot page again (4 runs a second at 4 processes, where 1 does).
		if seenAt, ok := cat.refresh(db); ok {
			if db.commitsSinceCheckpoint() == 0 {
				dirtySince = time.Time{}
				continue
			}
			if seenAt.After(dirtySince) {
				dirtySince = seenAt // this process's commits before it are checkpointed
			}
		}
		due := time.Since(dirtySince) >= db.cfg.CheckpointEvery ||
			(kicked && db.commitsSinceCheckpoint() >= CheckpointCommits)
		if !due || (kicked && time.Since(tried) < housekeepTick) {
			continue // a kick comes with every commit group: one try per tick is enough
		}
		tried = time.Now()
		if db.tryCheckpoint(true) {
			dirtySince = time.Time{}
		}
	}
}

// catalogWatch is what the housekeeper knows of the checkpoint on disk: the catalog file it last
// read (its identity), that checkpoint's TSN, and when this handle first saw it. It lives in the
// housekeeper's goroutine.
type catalogWatch struct {
	fi     os.FileInfo
	tsn    pages.TSN
	seenAt time.Time
}

// refresh stats the catalog and, if it is another file than the one read last, reads its TSN and
// raises the handle's view of the checkpoint (ckptTSN) to it. It reports when the handle first
// saw the newest checkpoint (its own included: a stat within a tick of the publish), and false if
// the catalog cannot be read (the view stays as it was).
func (c *catalogWatch) refresh(db *DB) (time.Time, bool) {
	fi, err := os.Stat(db.catalogPath())
	if err != nil {
		return time.Time{}, false
	}
	if sameCatalog(fi, c.fi) {
		return c.seenAt, true
	}
	cat, have, err := readCatalog(db.catalogPath())
	if err != nil || !have {
		return time.Time{}, false
	}
	c.fi = fi
	if cat.TSN > c.tsn {
		c.tsn, c.seenAt = cat.TSN, time.Now()
		raiseTo(&db.ckptTSN, uint64(cat.TSN))
	}
	return c.seenAt, true
}

// raiseTo stores v in a if it is greater than what a holds.
func raiseTo(a *atomic.Uint64, v uint64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// commitsSinceCheckpoint is how far this handle's last commit is past the checkpoint it last saw.
func (db *DB) commitsSinceCheckpoint() uint64 {
	last, ck := db.lastCommit.Load(), db.ckptTSN.Load()
	if last <= ck {
		return 0
	}
	return last - ck
}

// tryCheckpoint checkpoints if no other process is doing it; it reports whether the checkpoint
// is now at or past this handle's last commit.
func (db *DB) tryCheckpoint(keep bool) bool {
	unlock, ok, err := db.ckptLock.TryLock()
	if err != nil || !ok {
		return false
	}
	defer func() { _ = unlock() }()
	if db.checkpointLocked(db.ctx, keep) != nil {
		return false
	}
	return db.commitsSinceCheckpoint() == 0
}

// noteCommit tells the housekeeper about a commit group that ended at tsn.
func (db *DB) noteCommit(tsn pages.TSN) {
	db.lastCommit.Store(uint64(tsn))
	db.floor.saw(tsn)
	if uint64(tsn)-min(uint64(tsn), db.ckptTSN.Load()) >= CheckpointCommits {
		select {
		case db.kick <- struct{}{}:
		default:
		}
	}
}

// checkpointStats counts checkpoint runs and keeps the last error.
type checkpointStats struct {
	mu       sync.Mutex
	runs     int64 // guarded by mu
	fails    int64 // guarded by mu
	lastErr  error // guarded by mu
	recycled atomic.Int64
}

func (c *checkpointStats) record(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runs++
	if err != nil {
		c.fails++
	}
	c.lastErr = err
}
