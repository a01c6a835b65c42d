// Package txn is txtdb's engine: multi-process MVCC transactions over a write-ahead commit log.
//
// Many OS processes open one data directory at the same time; every one is an equal peer. They
// agree on commit order through one exclusive file lock (the commit lock, .txtdb/lock) and a
// small lock-protected metadata file (.txtdb/state), and they share data through the commit log
// (.txtdb/log/*.log): one checksummed JSON line per committed transaction. docs/PROTOCOL.md
// describes the protocol and docs/FORMAT.md the files.
//
// # Guarantees
//
//   - Begin takes no lock and allocates nothing (except once per handle: the first Begin or Open
//     that finds a state from another boot recovers under the commit lock), and writes only this
//     handle's snapshot floor after an idle spell: its snapshot is the TSN state names. Reads are
//     served from an in-memory index that has applied every record up to that TSN, each whole and
//     only after it was durable, with page contents from a bounded cache, the page files or the
//     log; a read takes no lock and costs no fsync.
//
//   - TSNs are allocated at commit, under the commit lock, so commit order is TSN order in every
//     process and a TSN is never used by two transactions.
//
//   - Serializable (default): a commit fails with ErrConflict if any page it read or wrote, any
//     namespace it used, or the page set of any namespace it scanned changed after its snapshot.
//     Snapshot isolation checks writes (and the namespaces written into) only.
//
//   - Durability: with sync on, Commit returns nil only after an fsync covered the transaction's
//     record and state names its TSN, so a transaction that begins afterwards, in any process,
//     sees it.
//
//   - Group commit: concurrent commits of one process share one lock acquisition, one append and
//     one fsync; each member is validated against the members accepted before it. Across
//     processes, a durable group that finds the commit lock taken offers its members on the commit
//     board (board.go, delegate.go); the lock holder validates them after its own, writes them under
//     its fsync, records each outcome in the offerer's slot before its log write, and wakes it. An
//     outcome's TSNs count exactly when state reaches them (holders clear stale ones first), so an
//     offerer learns its outcome without the lock, or under it after recovery.
//
//   - Recovery needs no step by anyone: every commit lock holder first erases a torn tail past
//     state, and fsyncs and adopts whole records past it. Nothing at or below state's position is
//     ever erased: a bad record there is ErrCorrupt.
//
//   - Inserts take page IDs from blocks reserved in the log for one process, so concurrent
//     inserts into one namespace never conflict.
//
//   - A commit that returns an error did not happen and used no TSN, except ErrCommitUnknown (the
//     log could not be repaired after a failed write or fsync; the handle then refuses work).
//
//   - Checkpoints (checkpoint.go, under their own lock, never under the commit lock) write each
//     page's newest version to a page file (into the file of a version it superseded below the
//     cleanup horizon where there is one: creating files costs more); a handle opens from the
//     checkpoint plus the log after it. Every writable handle holds a liveness lock with its
//     snapshot floor (registry.go); cleanup deletes only what no live snapshot can read, and
//     trims the log behind the checkpoint and the retention (cleanup.go).
//
// # Caveats
//
//   - Memory: a small entry per readable page version plus a byte-bounded cache of page contents
//     (Config.CacheSize), which versions leave when no snapshot can reach them; evicted contents
//     are loaded again from the page file or the log, where a version's own op is read alone
//     (its place in the record and a checksum of it are kept with the version), so a reload
//     costs the page, not the commit that wrote it.
//   - Not for network file systems: flock(2) and fsync semantics are those of a local disk.
//   - A Tx is used by one goroutine at a time.
//   - Crash points and fault hooks (hooks.go) exist for tests. A production build ignores
//     TXTDB_CRASHPOINT: only a binary built with the txtdb_crashpoints tag reads it (and this
//     package's test binary, for the children it re-executes). A process that reaches an armed
//     crash point writes "crash <point>" to stderr and kills itself with SIGKILL.
package txn
