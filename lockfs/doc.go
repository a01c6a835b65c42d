// Package lockfs provides the file-system primitives the rest of txtdb stands on: advisory
// file locks that many OS processes (and many goroutines in each) share, waits on them that
// honour a context, and crash-safe publication of files and directories.
//
// # Locks
//
// A Lock is a lock file taken with flock(2) (through github.com/gofrs/flock on a fresh
// descriptor, or directly on a kept one while the lock is retained), exclusively
// (Lock, TryLock) or shared (RLock, TryRLock). It guarantees:
//
//   - Exclusion across processes and goroutines alike: an exclusive holder is alone, shared
//     holders exclude exclusive ones, in this process and in every other process on the host.
//     Inside a process the exclusion goes through an in-process lock that the race detector
//     sees; Lock values for one path share it, so two of them never deadlock on each other's
//     flock(2) and never both "hold" the lock.
//   - Waits that honour ctx: a wait ends at once when ctx ends, with a *TimeoutError
//     (errors.Is matches ErrLockTimeout and context.DeadlineExceeded) on a deadline, or the
//     wrapped ctx.Err() on a cancellation. The caller then does not hold the lock.
//   - No sleep-polling: in-process waiters queue on channels in arrival order; a cross-process
//     wait is a blocking flock(2) in a goroutine, so the kernel wakes waiters close to arrival
//     order, and a releaser yields the CPU so that it does not take the lock straight back
//     from the waiter just woken: hand-off between processes is fair. A Lock may be told to
//     try a held lock again a few times, yielding the CPU before each try, before it waits
//     (Lock.SetSpin: cheaper than the wait where holders are brief, less fair in tight loops).
//   - The lock is on the file the path names when it is granted: after flock(2) succeeds the
//     path is checked (os.SameFile against the locked descriptor), and if someone unlinked or
//     replaced the file meanwhile, the stale lock is dropped and the new file locked. A
//     retained lock (Lock.Retain) keeps one descriptor per mode open instead, checked once when
//     it is opened, so that a hold costs one flock(2) to take and one to release; its file must
//     never be unlinked or replaced while retained.
//   - A process that dies, however it dies, releases its locks at once (the kernel closes its
//     descriptors): nobody waits for a timeout.
//
// Lock files are created with the Lock's permissions on first use and never removed here.
//
// # Files
//
// WriteFile publishes a file atomically and durably (temporary file in the same directory,
// write, fsync, rename, fsync of the directory); a reader sees the old file or the new one,
// never a mix. SyncDir makes changes to a directory's entries durable, MkdirAll makes new
// directories durable.
//
// # Caveats
//
//   - Not for NFS or other network file systems: flock(2) there is emulated (if at all) with
//     different semantics, and locks of different hosts may not exclude each other.
//   - flock(2) belongs to an open file description, not to a process or a goroutine: a
//     descriptor inherited by a child process (not the case for files Go opens, which are
//     close-on-exec) keeps the lock after this process releases it. Locks are advisory: a
//     process that does not lock is not stopped.
//   - A wait that gives up leaves its goroutine blocked in flock(2), which nothing can
//     interrupt. It releases the file lock the moment it gets it (or hands it to the next
//     goroutine of the process that wants the same lock in the same mode); nothing waits
//     for it. There is at most one such goroutine per lock file and mode.
//   - Locks are not reentrant: a goroutine that takes a lock it holds waits for itself until
//     its context ends. Upgrading a shared lock to exclusive is not offered.
//   - Locks are keyed by path: two different paths that name one file (links) exclude each
//     other through flock(2) only, so a goroutine holding one of them and taking the other
//     blocks until its context ends.
//   - Linux and other Unix systems only.
package lockfs
