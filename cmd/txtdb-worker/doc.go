// Command txtdb-worker opens a txtdb data directory and runs one workload on it until it is told
// to stop, speaking the JSON-lines protocol of package procharness/history on stdout. It is the
// process the harness (package procharness) spawns, kills and restarts; several workers share one
// directory.
//
//	txtdb-worker -dir DIR -workload bank|counter|register|append|queue|events|hold [-name N] [-seed S] [-ops N] ...
//
// Protocol: a ready line once setup is done (namespaces and initial pages created, idempotently
// and safely when several workers start at once), then an invoke line and a completion line (ok,
// fail, unknown) per operation with the values read and written, the commit TSN and the snapshot
// TSN, then, when stdin reaches end of file, SIGTERM arrives or -ops operations are done, final
// reads and a summary line; the exit status is then 0. The ready line names the worker's
// registry id (txtdb.DB.ID) and, with -lineage, the store's lineage (the one the worker's TSNs
// belong to). Every commit is an operation, setup commits too ("setup"), and the
// invoke and completion lines of a writing operation name the namespaces it writes (Line.NS), so
// that the change feed can be checked against the history. Diagnostics go to stderr. A worker built
// with -tags txtdb_crashpoints dies at the crash point TXTDB_CRASHPOINT names (see package txn).
//
// Workloads (namespace, and what the checkers in procharness/check require):
//   - bank (namespace bank): -accounts accounts of -balance each, one page per account;
//     transfers and snapshot reads of every balance. The total never changes and no balance is
//     negative.
//   - counter (namespace counter): -keys counters; increments, reads of every counter. A
//     counter's value is its acknowledged increments plus at most the unknown ones. -checkpoint
//     checkpoints after every operation and -rename renames namespace churn.a <-> churn.b every
//     other operation, so that checkpoint, move, cleanup and trim crash points are reached.
//   - register (namespaces register.g0, register.g1, ...): -keys registers per generation; read,
//     write, compare-and-set. Linearizable. A worker that finds a register with -max-writes
//     writes moves on to the next generation, so that each register's history stays short
//     enough for the linearizability search in long runs.
//   - append (namespaces append.g0, append.g1, ...): -keys lists per generation; transactions
//     of 1-4 micro-ops appending unique values and reading lists (Elle's list-append model).
//     Serializable, checked by the TSN-order list check and by Elle. A worker that reads a list
//     of -max-list values moves on to the next generation, so lists stay short in long runs.
//   - queue (namespace queue): -role producer, consumer or both. Producers insert jobs (at most
//     -bound waiting per producer); consumers, woken by the change feed, claim a job (writing
//     their registry id into it) and complete it (deleting it). A consumer may reclaim a job
//     another id claimed more than -lease ago (a claimer that died); a stopped consumer drains
//     the queue. Every acknowledged job is completed exactly once or still waiting.
//   - events: subscribes to -ns (comma-separated; empty: every namespace), resuming after -from,
//     and writes an event line per event; when stopped it commits a mark its filter matches and
//     records through it. Its record must equal the matching acknowledged commits.
//   - hold: opens a read transaction and keeps it until stopped.
//
// # Caveats
//
// A worker trusts its flags: two workers that disagree about -accounts or -keys on one directory
// fail their setup.
package main
