// Package powerfs is a FUSE file system for power-loss and I/O-fault tests: it models the
// disk under a store the way ext4 (data=ordered) on a real disk behaves, keeps what a power cut
// may take in memory, and at a cut leaves in its backing directory exactly what survived.
//
// It lives in a module of its own so that its FUSE dependency (github.com/hanwen/go-fuse/v2)
// never becomes one of txtdb's.
//
// # The model
//
// The backing directory is the disk. Mount reads it (everything in it is durable); the live
// view (what reads, lookups and listings see) is then held in memory, next to the durable view
// and the pending changes between them. Cut and Unmount write the durable view back.
//
//   - Page cache, per inode: a write is visible to every reader at once and durable only after
//     an fsync or fdatasync of that inode (the two are the same here: file size is data).
//     close(2) persists nothing. This is what the kernel's page cache gives on any local file
//     system: writeback is asynchronous, and only fsync waits for it. The kernel's own cache of
//     the layer's files is kept (FOPEN_KEEP_CACHE, no automatic invalidation), so that a
//     mapping shows every write once it returned, as on a local file system; FUSE's default
//     drops it at opens and changed mtimes, and a read racing a write then caches stale bytes
//     (TestMappingSeesWrites). Unlike ext4, a write the layer refuses leaves its bytes in the
//     kernel's pages, where a mapping shows them until a read(2) of the page (see Mount).
//   - Metadata: a create, mkdir, link, unlink, rmdir or rename is durable only after an fsync of
//     the directory it changes (for a rename across directories, either one: a rename is one
//     journal transaction, kept whole or not at all). An fsync of a file does not make its own
//     new directory entry durable: that is the strict model and the default. ext4 does in
//     practice (the creating fsync commits the running journal transaction, which holds the
//     entry), but POSIX does not promise it and other file systems (and ext4 with fast commits
//     in corner cases) do not; Config.SyncNewFileEntry turns the ext4 behaviour on.
//   - A directory fsync makes durable every pending operation on its entries, and with each,
//     the earlier pending operations on the same entries (a rename of a new file needs the
//     create). It makes no file data durable.
//   - syncfs(2) makes everything durable. The kernel does not forward syncfs to a FUSE file
//     system (it sends FUSE_SYNCFS only to virtiofs), so a process whose syncfs calls must
//     count runs InterceptSyncfs, which turns each into an fsync of SyncfsName at the mount's
//     root. Without it, a syncfs on the mount makes nothing durable, as on any FUSE file
//     system that keeps data of its own.
//   - After a failed fsync the inode's pending writes are dropped: reads still see them, no cut
//     keeps them, and a retried fsync that succeeds says nothing about them. This is what Linux
//     does (the pages of a failed writeback are marked clean; the error is reported once).
//
// # Power cuts
//
// The caller first SIGKILLs (and reaps) every process that uses the mount. FS.Cut then keeps,
// of the pending state, what its Cut says: for file contents nothing, everything, a random
// subset of the changed 512-byte sectors, or the writes up to a random point in write order
// (the last one possibly torn at a sector); for directory operations nothing, everything, a
// random subset closed under the dependencies above, or a prefix in order (a journal). It then
// unmounts; the backing directory holds what survived, and the next round mounts it again. A
// file whose contents survived but that no durable entry names is gone.
//
// Reboot (in reboot.go) runs a command in a mount namespace of its own where
// /proc/sys/kernel/random/boot_id reads a fresh id, so that processes after a cut see a new
// boot, as on real hardware.
//
// # Faults
//
// A Fault fails the N-th write, fsync, rename, create, mkdir, link, unlink, rmdir or truncate
// with EIO or ENOSPC; Config.Budget makes the disk full at a byte count. A Lie makes chosen
// fsyncs succeed without making anything durable: a planted missing fsync, to show a test
// catches one.
//
// # The tests
//
// The package's tests check the layer on its own (every cut mode and fault, with real
// syscalls on a real mount), then run a store on it in real processes (the test binary
// re-executed): each round a process of a new boot opens the store, reads it and runs Check;
// workers commit transfers between accounts, each bumping the worker's sequence page and
// printing the commit once Commit returned; then every process is SIGKILLed, the layer cuts
// power, and the next round boots. A violation is an acknowledged commit missing, a torn
// transaction (the accounts' total), a Check finding (leftovers of dead processes aside), a TSN
// acknowledged twice under one lineage, or a lineage that went back below a TSN acknowledged
// under it. Variants: a new boot id each round, no boot id at all, NoSync, checkpoints every
// millisecond with small segments and no log retention, and planted missing fsyncs of the log
// and of the log directory (which must be caught).
//
// The fleet tests (fleet_test.go) do the same with txtdb-worker processes run by procharness
// (procharness.Options.Wrap puts each worker in the round's boot through Boot.Wrap): bank,
// counter and append workers, several of each; the workloads' checkers (bank, counter, the
// list check and Elle) over the histories of every round together; Check; no TSN acknowledged
// twice under one lineage; a subscriber resuming the last round's lineage gets ErrLineage
// exactly when the store started a new one; and no page version file names a TSN that the
// catalog does not cover and the log no longer has (pageFileProblems). Variants: NoSync (every
// rewind must start a new lineage), checkpoints every millisecond with small segments, no log
// retention and namespace renames, and a planted missing log fsync (which must be caught). The
// workers are not the test binary, so nothing intercepts their syncfs calls: the engine must
// not rely on syncfs here.
//
// TestFaultSweep fails each operation of a short workload in turn (transfers, a checkpoint, a
// namespace created, renamed and deleted with a checkpoint after each, so that file moves take
// the link, unlink and rmdir paths; its checkpoints keep no superseded file to reuse, so they
// truncate nothing and truncate faults never fire). TestPowerCutWhileRecycling cuts power while
// the housekeeper's checkpoints reuse superseded files (rename, overwrite, truncate to length)
// and fails if no reuse reached the layer. TestCheckpointWithoutSyncfs, TestSameBootIDCut, TestCheckUnpublishedPageFile,
// TestFailedCheckpointFsync and TestFailedAtticRmdir reproduce engine defects this layer found
// (all fixed).
//
// # Caveats
//
// Linux only, root only (the mount is made with mount(2) directly, no fusermount), and
// /dev/fuse must exist; Available says why not. File locks are the kernel's own (flock and
// POSIX locks are not forwarded), which is what a local file system gives. No symbolic links,
// no extended attributes, no special files. Everything is held in memory: for test-sized data.
package powerfs
