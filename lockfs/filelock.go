package lockfs

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"syscall"

	"github.com/gofrs/flock"
)

// testHookBlock, if set (by tests, before any lock is taken), is called by an attempt's
// goroutine with the lock's key just before it blocks in flock(2).
var testHookBlock func(key string)

// testHookLocked, if set (by tests, before any lock is taken), is called by an attempt's
// goroutine on a kept descriptor with the lock's key just after flock(2) granted it.
var testHookLocked func(key string)

// testRetainAll, if set (by tests, before any lock is taken), makes every lock behave as retained:
// the whole suite then runs on kept descriptors too.
var testRetainAll bool

// attempt is one cross-process acquisition of the file lock in one mode: a goroutine blocked
// in flock(2) on a fresh descriptor, which nothing can interrupt. The goroutines of this
// process that want the lock wait on done or on their ctx. When the last of them gives up,
// the attempt stays in entry.pending so that the next one to want that mode joins it (keeping
// its place in the kernel's queue); if nobody does, it releases the file lock the moment it
// gets it. Nothing waits for the goroutine, and there is at most one per entry and mode.
type attempt struct {
	mode     mode
	perm     os.FileMode
	kept     *keptLock     // the kept descriptor it blocks on, nil: a fresh one (set at start)
	done     chan struct{} // closed after finished is set
	waiters  int           // goroutines waiting for the result; guarded by entry.mu
	finished bool          // the result is in (held or err); guarded by entry.mu
	err      error         // written under entry.mu before finished is set; read after done or finished
}

// lockFile takes the file lock in mode m for a goroutine admitted in mode m, waiting until
// ctx ends; first it tries again up to spin times, yielding the CPU before each try
// (Lock.SetSpin). On success the goroutine counts in heldRefs; on failure (ctx.Err() or a file
// error) its admission is given back.
func (e *entry) lockFile(ctx context.Context, m mode, perm os.FileMode, spin int) error {
	e.mu.Lock()
	ok, err := e.tryFileLocked(m, perm)
	for i := 0; i < spin && err == nil && !ok && e.pending[m] == nil && ctx.Err() == nil; i++ {
		e.mu.Unlock()
		yieldCPU()
		e.mu.Lock()
		ok, err = e.tryFileLocked(m, perm)
	}
	if err != nil || ok {
		if err != nil {
			e.leaveLocked(m)
		}
		e.mu.Unlock()
		return err
	}
	a := e.pending[m]
	start := a == nil
	if start {
		k, err := e.keptFor(m, perm)
		if err != nil {
			e.leaveLocked(m)
			e.mu.Unlock()
			return err
		}
		a = &attempt{mode: m, perm: perm, kept: k, done: make(chan struct{})}
		e.pending[m] = a
	}
	a.waiters++
	e.mu.Unlock()
	if start {
		e.ref() // the goroutine's own: it may outlive every caller
		go e.run(a)
	}

	select {
	case <-a.done:
	case <-ctx.Done():
		e.mu.Lock()
		if !a.finished {
			a.waiters--
			e.leaveLocked(m)
			e.mu.Unlock()
			return ctx.Err()
		}
		e.mu.Unlock() // finished as ctx ended: take the result
	}
	if a.err != nil {
		e.mu.Lock()
		e.leaveLocked(m)
		e.mu.Unlock()
		return a.err
	}
	return nil
}

// tryLock admits the goroutine in mode m and takes the file lock if neither needs waiting.
func (e *entry) tryLock(m mode, perm os.FileMode) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.canAdmitLocked(m) {
		return false, nil
	}
	e.takeLocked(m)
	ok, err := e.tryFileLocked(m, perm)
	if !ok {
		e.leaveLocked(m)
	}
	return ok, err
}

// tryFileLocked takes the file lock in mode m for an admitted goroutine if that needs no
// waiting: it joins a held shared lock, or takes the lock on a fresh descriptor with a
// non-blocking flock(2). REQUIRES: e.mu held, the goroutine admitted in mode m.
func (e *entry) tryFileLocked(m mode, perm os.FileMode) (bool, error) {
	if e.held != nil {
		if m != shared || e.heldMode != shared {
			panic("lockfs: admitted " + m.String() + " goroutine finds a held " + e.heldMode.String() + " file lock")
		}
		e.heldRefs++
		return true, nil
	}
	if a := e.pending[m]; a != nil && (a.waiters > 0 || a.kept != nil) {
		// Goroutines of this process already wait in flock(2): join them. (An abandoned
		// attempt on the kept descriptor is waited for too: a second flock(2) on the same open
		// file description would share its lock, and the attempt's release would drop it.)
		return false, nil
	}
	k, err := e.keptFor(m, perm)
	if err != nil {
		return false, err
	}
	if k != nil {
		ok, err := k.try(m)
		if ok {
			e.held, e.heldMode, e.heldRefs = k, m, 1
		}
		return ok, err
	}
	f, ok, err := tryFile(e.key, m, perm)
	if ok {
		e.held, e.heldMode, e.heldRefs = f, m, 1
	}
	return ok, err
}

// keptFor returns the kept descriptor for mode m, opening it if a Retain is in force and none is
// open yet; nil if none is retained. REQUIRES: e.mu held, no hold and no attempt in mode m.
func (e *entry) keptFor(m mode, perm os.FileMode) (*keptLock, error) {
	if e.kept[m] != nil || (e.retains == 0 && !testRetainAll) {
		return e.kept[m], nil
	}
	k, err := openKept(e.key, perm)
	if err != nil {
		return nil, err
	}
	e.kept[m] = k
	return k, nil
}

// unlock releases one hold in mode m: the file lock with the last holder, then the
// admission.
//
// After releasing the file lock it yields the CPU. flock(2) does not hand a released lock to
// the waiter it wakes: a process that comes straight back for the lock takes it again before
// the woken waiter runs, and so can keep it for a whole time slice (measured on 2 cores: runs
// of 100 to 450 consecutive holds by one of 8 processes, the fewest holds under half the most
// in 6 of 40 runs of TestCounterAcrossProcesses). Yielding lets a waiter woken onto this CPU
// run first (then: runs under 35, and 0 of 80 runs unfair, with and without -race).
func (e *entry) unlock(m mode) error {
	e.mu.Lock()
	var err error
	e.heldRefs--
	released := e.heldRefs == 0
	if released {
		err = e.releaseFile(e.held) // flock(LOCK_UN), and close unless kept
		e.held = nil
	}
	e.leaveLocked(m)
	e.mu.Unlock()
	if released {
		yieldCPU()
	}
	return err
}

// run is the goroutine of attempt a: it blocks in flock(2) until it holds the file lock on
// the file the path names, then hands it to a's waiters, or releases it if there are none.
func (e *entry) run(a *attempt) {
	if a.kept != nil {
		if hook := testHookBlock; hook != nil {
			hook(e.key)
		}
		err := a.kept.lock(a.mode)
		if hook := testHookLocked; hook != nil && err == nil {
			hook(e.key)
		}
		var f fileLock = a.kept
		if err != nil {
			f = nil
		}
		e.finish(a, f, err)
		e.unref()
		close(a.done)
		return
	}
	var f *flock.Flock
	var err error
	for {
		f = flock.New(e.key, flock.SetPermissions(a.perm))
		if hook := testHookBlock; hook != nil {
			hook(e.key)
		}
		if a.mode == exclusive {
			err = f.Lock()
		} else {
			err = f.RLock()
		}
		if errors.Is(err, syscall.EINTR) {
			continue // Go installs its signal handlers with SA_RESTART, but be sure
		}
		if err != nil {
			break
		}
		var same bool
		if same, err = sameFile(f, e.key); err == nil && same {
			break
		}
		// The path names another file now (unlinked or replaced while we waited), or cannot
		// be checked: let go of the stale one and, if no error, lock the one it names.
		if uerr := f.Unlock(); err == nil {
			err = uerr
		}
		if err != nil {
			break
		}
	}
	var fl fileLock
	if err == nil {
		fl = f
	}
	e.finish(a, fl, err)
	// The goroutine's reference goes before the waiters learn the result, so that when the
	// last of them returns, nothing of the attempt is left.
	e.unref()
	close(a.done)
}

// finish records the outcome of attempt a: the file lock f, or err. REQUIRES: e.mu not held.
func (e *entry) finish(a *attempt, f fileLock, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a.finished = true
	e.pending[a.mode] = nil
	switch {
	case a.waiters == 0:
		// Given up on by every waiter: release at once. There is no one to report an error to.
		if err == nil {
			_ = e.releaseFile(f)
		}
	case err != nil:
		a.err = err
	case e.held == nil:
		e.held, e.heldMode, e.heldRefs = f, a.mode, a.waiters
	default:
		// Not reached today (new shared goroutines join a pending attempt with waiters rather
		// than take a lock of their own), but joining a held shared lock is correct.
		if a.mode != shared || e.heldMode != shared {
			panic("lockfs: " + a.mode.String() + " attempt finishes while a " + e.heldMode.String() + " file lock is held")
		}
		e.heldRefs += a.waiters
		if f != e.held { // a lock on the same kept descriptor is the held one itself
			_ = f.Unlock()
		}
	}
}

// tryFile takes the file lock at path in mode m on a fresh descriptor without blocking,
// creating the file with perm if needed. ok is false if another descriptor holds it.
func tryFile(path string, m mode, perm os.FileMode) (f *flock.Flock, ok bool, err error) {
	for {
		f = flock.New(path, flock.SetPermissions(perm))
		if m == exclusive {
			ok, err = f.TryLock()
		} else {
			ok, err = f.TryRLock()
		}
		if errors.Is(err, syscall.EINTR) {
			continue // flock closed the descriptor; as in run, be sure
		}
		if err != nil || !ok {
			return nil, false, err // flock closed the descriptor
		}
		var same bool
		if same, err = sameFile(f, path); err == nil && same {
			return f, true, nil
		}
		if uerr := f.Unlock(); err == nil {
			err = uerr
		}
		if err != nil {
			return nil, false, err
		}
		// The path was replaced between open and flock: lock the file it names now.
	}
}

// sameFile reports whether path still names the file f holds locked. It is false if the path
// is gone or names another file: a lock on an unlinked file excludes nobody.
func sameFile(f *flock.Flock, path string) (bool, error) {
	held, err := f.Stat() // fstat of the held descriptor
	if err != nil {
		return false, err
	}
	cur, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(held, cur), nil
}

// fileLock is a file lock held on one descriptor: a *flock.Flock (a fresh descriptor, closed on
// Unlock) or a *keptLock (a descriptor kept open, only unlocked).
type fileLock interface{ Unlock() error }

// keptLock is a descriptor of a lock file kept open while the lock is retained. Locking and
// unlocking it are one flock(2) each. The path was checked to name the descriptor's file when it
// was opened; lock files a process retains are never unlinked or replaced (see Retain).
type keptLock struct {
	fd   int
	path string
}

// openKept opens the lock file at path (creating it with perm) and checks that the path names
// the file opened.
func openKept(path string, perm os.FileMode) (*keptLock, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CREAT|syscall.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	var held, cur syscall.Stat_t
	if err := syscall.Fstat(fd, &held); err != nil {
		_ = syscall.Close(fd)
		return nil, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	if err := syscall.Stat(path, &cur); err != nil {
		_ = syscall.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if held.Dev != cur.Dev || held.Ino != cur.Ino {
		_ = syscall.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: path, Err: errors.New("lock file replaced while opened")}
	}
	return &keptLock{fd: fd, path: path}, nil
}

func (k *keptLock) how(m mode) int {
	if m == exclusive {
		return syscall.LOCK_EX
	}
	return syscall.LOCK_SH
}

// lock blocks in flock(2) until the file lock in mode m is held on the kept descriptor.
func (k *keptLock) lock(m mode) error {
	for {
		err := syscall.Flock(k.fd, k.how(m))
		if err != syscall.EINTR {
			if err != nil {
				return &fs.PathError{Op: "flock", Path: k.path, Err: err}
			}
			return nil
		}
	}
}

// try takes the file lock in mode m without blocking; false if another descriptor holds it.
func (k *keptLock) try(m mode) (bool, error) {
	for {
		err := syscall.Flock(k.fd, k.how(m)|syscall.LOCK_NB)
		switch err {
		case nil:
			return true, nil
		case syscall.EWOULDBLOCK:
			return false, nil
		case syscall.EINTR:
			continue
		}
		return false, &fs.PathError{Op: "flock", Path: k.path, Err: err}
	}
}

// Unlock releases the file lock; the descriptor stays open. A release that fails leaves the
// lock on the descriptor: the caller must then close it (see entry.releaseFile).
func (k *keptLock) Unlock() error {
	for {
		err := syscall.Flock(k.fd, syscall.LOCK_UN)
		if err == nil {
			return nil
		}
		if err != syscall.EINTR {
			return &fs.PathError{Op: "flock", Path: k.path, Err: err}
		}
	}
}

// releaseFile releases the file lock f, retrying EINTR. A kept descriptor whose release failed
// still holds the lock, and would go on excluding other processes while nobody here holds it: it
// is closed (which releases the lock) and forgotten, so the next acquisition opens a new one.
// Nothing else uses it: it is f itself, held or just granted to an attempt nobody waits for.
// REQUIRES: e.mu held.
func (e *entry) releaseFile(f fileLock) error {
	err := f.Unlock()
	for errors.Is(err, syscall.EINTR) {
		err = f.Unlock() // gofrs/flock keeps the descriptor, still locked, when LOCK_UN fails
	}
	if k, ok := f.(*keptLock); ok && err != nil {
		for m := range e.kept {
			if e.kept[m] == k {
				e.kept[m] = nil
			}
		}
		k.close()
	}
	return err
}

// close closes the descriptor (which releases any lock still on it).
func (k *keptLock) close() { _ = syscall.Close(k.fd) }
