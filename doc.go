// Package txtdb is an embedded, transactional object store whose data are human-readable text
// files (JSON by default, YAML or XML on request) in one data directory, shared at the same time
// by many independent OS processes on one host.
//
// Open a directory with Open; run transactions with DB.Update (retried on ErrConflict) and DB.View,
// or DB.Begin for manual control. Objects live in pages inside namespaces ("app.users" is the
// folder app/users); Tx.Insert returns the page an object landed in, Tx.ReadPage and Tx.Match read
// pages, Tx.UpdatePage and Tx.DeletePage change pages the transaction has read. For layers that
// keep sorted rows in pages of their own (tables), Tx.NewPage makes such a page, Tx.AppendPage
// adds rows to one under a key without reading it, and Tx.ReadPageKey reads one depending only
// on a key: writers of different keys into one page do not conflict, writers of one key do.
//
// # Guarantees
//
// Transactions are serializable by default (Snapshot isolation on request), atomic in every
// process, and durable once Commit returns nil: a transaction that begins after another's Commit
// returned sees it, in any process. Every process is an equal peer; a process killed at any
// instruction leaves a directory the others keep using with no manual step. Errors are sentinel
// values usable with errors.Is; bad input never loses committed data.
//
// # Caveats
//
// Linux or another Unix with flock(2), on a local file system whose page cache every process
// shares (not NFS, nor FUSE with its default cache invalidation). See docs/PROTOCOL.md and
// docs/FORMAT.md in the repository for the commit protocol and the on-disk format.
package txtdb
