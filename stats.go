package txtdb

import "github.com/txtdb/txtdb/txn"

// Stats is a snapshot of a handle's counters (commit groups, conflicts, checkpoints, open
// transactions and the age of the oldest) and of the store's state on disk (committed and
// checkpoint TSNs, horizon, log and page file sizes, live processes).
type Stats = txn.Stats

// Stats returns this handle's counters and the store's state. It does I/O (it reads the small
// metadata files and lists the log, the registry and the namespace folders), so it is not for a
// hot loop. Safe for concurrent use, also on a read-only handle.
func (db *DB) Stats() Stats { return db.eng.Stats() }
