package lockfs

import (
	"context"
	"slices"
	"sync"
)

// registry holds the in-process state of every lock file this process is using, keyed by the
// cleaned absolute path. An entry lives while anyone references it (a call in progress, a
// holder, a goroutine blocked in flock(2)) and is dropped when the last reference goes, so a
// long-lived process that probes many lock files does not accumulate them.
//
// Lock order: registry.mu and entry.mu are never held at the same time.
var registry struct {
	mu      sync.Mutex
	entries map[string]*entry // guarded by mu
}

// entry is the in-process state of one lock file. Two layers sit in it:
//
//   - admission, an in-process readers-writer lock with a FIFO queue whose waits honour ctx:
//     it decides which goroutines of this process may hold (or go for) the file lock, and it
//     is the in-process sync primitive that lets the race detector see the exclusion
//     (holders hand over through mu and the waiters' channels);
//   - the file lock held on behalf of the admitted goroutines (one fileLock, shared by all
//     shared holders), and the cross-process attempts blocked in flock(2) for it.
//
// INVARIANT: writer implies readers == 0; held != nil implies heldRefs > 0 and heldRefs is at
// most the number of admitted goroutines (readers, or 1 for writer) and heldMode matches them.
type entry struct {
	key  string
	refs int // guarded by registry.mu

	mu       sync.Mutex
	readers  int       // admitted shared goroutines, holding or waiting for the file lock; guarded by mu
	writer   bool      // an exclusive goroutine is admitted; guarded by mu
	queue    []*waiter // goroutines waiting for admission, in arrival order; guarded by mu
	held     fileLock  // the file lock held for admitted goroutines, nil if none; guarded by mu
	heldMode mode      // guarded by mu
	heldRefs int       // admitted goroutines that hold held; guarded by mu
	// kept is, per mode, a descriptor of the lock file this process keeps open while a
	// Retain is in force (opened by Retain, closed with the entry), so that taking and
	// releasing the file lock costs one flock(2) each, not an open, a check and a close.
	// Nil: each acquisition opens a fresh descriptor. Written only while held and pending
	// are nil; guarded by mu.
	kept    [numModes]*keptLock
	retains int // Retain calls in force; guarded by mu
	// pending is, per mode, the attempt currently blocked in flock(2), nil if none. An attempt
	// with no waiters left has been given up on; it stays here until it finishes so that the
	// next goroutine going for that mode joins it instead of queueing a second one.
	pending [numModes]*attempt // guarded by mu
}

// waiter is a goroutine waiting for admission.
type waiter struct {
	mode     mode
	ready    chan struct{} // closed when admitted
	admitted bool          // guarded by entry.mu
}

// lookup returns the entry for key, creating it if needed, with one reference taken for the
// caller.
func lookup(key string) *entry {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	e := registry.entries[key]
	if e == nil {
		if registry.entries == nil {
			registry.entries = make(map[string]*entry)
		}
		e = &entry{key: key}
		registry.entries[key] = e
	}
	e.refs++
	return e
}

// ref takes another reference to e. REQUIRES: the caller holds a reference.
func (e *entry) ref() {
	registry.mu.Lock()
	e.refs++
	registry.mu.Unlock()
}

// unref drops a reference to e, and e from the registry with the last one.
func (e *entry) unref() {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	e.refs--
	if e.refs == 0 {
		delete(registry.entries, e.key)
		// Nobody references e, so nobody holds, waits for or retains its lock: close what it
		// kept (entry.mu need not be taken; nobody else can reach e now).
		for m := range e.kept {
			if e.kept[m] != nil {
				e.kept[m].close()
				e.kept[m] = nil
			}
		}
	}
}

// admit waits until the goroutine is admitted in mode m or ctx ends (then it returns
// ctx.Err() and is not admitted).
func (e *entry) admit(ctx context.Context, m mode) error {
	e.mu.Lock()
	if e.canAdmitLocked(m) {
		e.takeLocked(m)
		e.mu.Unlock()
		return nil
	}
	w := &waiter{mode: m, ready: make(chan struct{})}
	e.queue = append(e.queue, w)
	e.mu.Unlock()

	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if w.admitted {
		// Admitted while ctx ended: the caller gave up, so give the admission back.
		e.leaveLocked(m)
	} else {
		e.queue = slices.DeleteFunc(e.queue, func(x *waiter) bool { return x == w })
		e.grantLocked() // w may have been holding back those behind it
	}
	return ctx.Err()
}

// canAdmitLocked reports whether a goroutine asking for mode m may be admitted now without
// overtaking a waiter. REQUIRES: e.mu held.
func (e *entry) canAdmitLocked(m mode) bool {
	if len(e.queue) > 0 || e.writer {
		return false
	}
	return m == shared || e.readers == 0
}

// takeLocked admits one goroutine in mode m. REQUIRES: e.mu held, m compatible.
func (e *entry) takeLocked(m mode) {
	if m == exclusive {
		e.writer = true
	} else {
		e.readers++
	}
}

// leaveLocked ends one admission in mode m and admits whom that unblocks.
// REQUIRES: e.mu held.
func (e *entry) leaveLocked(m mode) {
	if m == exclusive {
		e.writer = false
	} else {
		e.readers--
	}
	e.grantLocked()
}

// grantLocked admits waiters from the head of the queue while they are compatible: one
// writer, or a run of readers. REQUIRES: e.mu held.
func (e *entry) grantLocked() {
	for len(e.queue) > 0 {
		w := e.queue[0]
		if e.writer || (w.mode == exclusive && e.readers > 0) {
			return
		}
		e.queue[0] = nil
		e.queue = e.queue[1:]
		e.takeLocked(w.mode)
		w.admitted = true
		close(w.ready)
	}
}
