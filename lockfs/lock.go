package lockfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// mode is the kind of a lock: shared (many holders) or exclusive (one holder).
type mode uint8

const (
	shared mode = iota
	exclusive
	numModes
)

// String returns "shared" or "exclusive".
func (m mode) String() string {
	switch m {
	case shared:
		return "shared"
	case exclusive:
		return "exclusive"
	default:
		return fmt.Sprintf("mode(%d)", uint8(m))
	}
}

// Lock is one lock file: an advisory flock(2) lock that excludes other processes, paired with
// an in-process lock that excludes other goroutines. A Lock is immutable and safe for
// concurrent use by any number of goroutines.
//
// All Lock values for the same path in one process (the registry key is the cleaned absolute
// path, computed by New) share one in-process state, because flock(2) conflicts with itself
// across two descriptors of one process: a second acquisition from the same process waits its
// turn in-process, in arrival order; it neither deadlocks nor "succeeds" on a lock another
// goroutine of the process holds. Holders of the shared lock in one process share one shared
// flock. The lock is not reentrant: a goroutine that takes it twice waits for itself until its
// context ends.
//
// The lock file is created (with the Lock's permissions) when first locked and is never
// removed by this package.
type Lock struct {
	path string       // as given to New; for Path and errors
	key  string       // cleaned absolute path: the registry key and the file that is opened
	perm os.FileMode  // for creating the lock file
	spin atomic.Int32 // SetSpin
}

// New returns the lock for the file at path, to be created with perm (0 means 0644) on first
// use. It does not touch the disk; a relative path is made absolute against the current
// directory now, not at lock time.
func New(path string, perm os.FileMode) *Lock {
	if perm == 0 {
		perm = 0o644
	}
	key, err := filepath.Abs(path)
	if err != nil {
		key = filepath.Clean(path)
	}
	return &Lock{path: path, key: key, perm: perm}
}

// Path returns the path as given to New.
func (l *Lock) Path() string { return l.path }

// SetSpin makes an acquisition through this Lock that finds the file lock held by another
// process try again up to tries times, yielding the CPU (sched_yield(2)) before each try, before
// it waits in flock(2); 0, the default, waits at once.
//
// The wait costs more than the tries: a goroutine of its own blocked in the system call, its
// thread handed off, then woken, then the waiter woken through a channel. A holder that keeps
// the lock for tens of microseconds, and yields the CPU when it lets go (unlock), is usually
// gone after a few yields. The price is fairness in a tight loop: a process that comes back for
// the lock at once gets tries of its own against a waiter the kernel woke. With 32 tries, 8
// processes incrementing a counter under the lock (TestCounterAcrossProcesses) kept the fewest
// above half the most without -race, not under it; txtdb's commit lock, whose holders come back
// only after a whole transaction, stays fair (bench: the fewest commits at least 0.7 of the
// most in every transfer row).
func (l *Lock) SetSpin(tries int) { l.spin.Store(int32(max(tries, 0))) }

// Lock takes the exclusive lock, waiting for holders in this and other processes until ctx
// ends. It returns the func that releases the lock (see the Lock type for who waits for whom).
//
// If ctx's deadline passes first, the error is a *TimeoutError (errors.Is matches both
// ErrLockTimeout and context.DeadlineExceeded); if ctx is cancelled, the error wraps
// ctx.Err(). A ctx that has already ended fails at once, even if the lock is free. Either way
// the caller returns at once and does not hold the lock; a goroutine left blocked in flock(2)
// releases the file lock the moment it gets it. Other errors (opening or locking the file)
// are wrapped with the path.
//
// The unlock func may be called from any goroutine. It releases the file lock, then the
// in-process state; a second call does nothing and returns an error matching ErrClosed.
func (l *Lock) Lock(ctx context.Context) (unlock func() error, err error) {
	return l.acquire(ctx, exclusive)
}

// RLock takes the shared lock: any number of goroutines of any processes may hold it at once,
// and none while anyone holds the exclusive lock. A goroutine that asks for the shared lock
// while an exclusive request of this process waits before it, waits too (no writer
// starvation in-process). Waiting, errors and the unlock func are as for Lock.
func (l *Lock) RLock(ctx context.Context) (unlock func() error, err error) {
	return l.acquire(ctx, shared)
}

// TryLock takes the exclusive lock if that needs no waiting. ok is false, with a nil error,
// if a goroutine of this process or another process holds or waits for the lock.
// On ok the unlock func is as for Lock.
func (l *Lock) TryLock() (unlock func() error, ok bool, err error) {
	return l.try(exclusive)
}

// TryRLock takes the shared lock if that needs no waiting; see TryLock.
func (l *Lock) TryRLock() (unlock func() error, ok bool, err error) {
	return l.try(shared)
}

// Retain keeps the lock file open in this process until release is called, so that taking and
// releasing the lock cost one flock(2) each instead of opening, checking and closing a fresh
// descriptor every time. The path is checked once, when the descriptor is opened: a retained
// lock file must never be unlinked or replaced (txtdb never removes its lock files). Retains of
// one path nest; the descriptors close when the last Retain is released and nobody holds or
// waits for the lock. release may be called from any goroutine; a second call does nothing.
// Safe for concurrent use.
func (l *Lock) Retain() (release func()) {
	e := lookup(l.key)
	e.mu.Lock()
	e.retains++
	e.mu.Unlock()
	var released atomic.Bool
	return func() {
		if !released.CompareAndSwap(false, true) {
			return
		}
		e.mu.Lock()
		e.retains--
		e.mu.Unlock()
		e.unref()
	}
}

func (l *Lock) acquire(ctx context.Context, m mode) (func() error, error) {
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return nil, l.waitError(err, start)
	}
	e := lookup(l.key)
	if err := e.admit(ctx, m); err != nil {
		e.unref()
		return nil, l.waitError(err, start)
	}
	// The entry stays referenced while this call waits and, on success, until unlock.
	if err := e.lockFile(ctx, m, l.perm, int(l.spin.Load())); err != nil {
		e.unref()
		return nil, l.waitError(err, start)
	}
	return l.unlocker(e, m), nil
}

func (l *Lock) try(m mode) (func() error, bool, error) {
	e := lookup(l.key)
	ok, err := e.tryLock(m, l.perm)
	if err != nil || !ok {
		e.unref()
		if err != nil {
			return nil, false, fmt.Errorf("lockfs: lock %s: %w", l.path, err)
		}
		return nil, false, nil
	}
	return l.unlocker(e, m), true, nil
}

// waitError turns the error of a wait into the error Lock returns: a deadline becomes a
// *TimeoutError, anything else (a cancellation, a file error) is wrapped with the path.
func (l *Lock) waitError(err error, start time.Time) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &TimeoutError{Path: l.path, Waited: time.Since(start)}
	}
	return fmt.Errorf("lockfs: lock %s: %w", l.path, err)
}

// unlocker returns the unlock func of a hold on e in mode m. It owns one reference to e.
func (l *Lock) unlocker(e *entry, m mode) func() error {
	var released atomic.Bool
	return func() error {
		if !released.CompareAndSwap(false, true) {
			return fmt.Errorf("lockfs: unlock %s: %w", l.path, ErrClosed)
		}
		err := e.unlock(m)
		e.unref()
		if err != nil {
			return fmt.Errorf("lockfs: unlock %s: %w", l.path, err)
		}
		return nil
	}
}
