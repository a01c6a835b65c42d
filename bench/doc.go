// Package bench compares txtdb with SQLite (modernc.org/sqlite, WAL mode) on the same
// multi-process read-modify-write workload, in one run, so that the ratios mean something.
//
// It is a module of its own so that the SQLite driver never becomes a dependency of txtdb.
// Everything lives in _test.go files; run it with `make bench-peer` from the repository root, or
//
//	cd bench && go test -run '^$' -bench . -benchtime 3000x -count 3
//
// # Workload
//
// benchAccounts accounts start with initialBalance each. A transfer picks two distinct random
// accounts, reads both, writes a-1 and b+1 and commits. P real OS processes (the test binary
// re-executed in a worker role) share one store and split b.N transfers between them. After the
// run the parent checks that every transfer committed once and that the total balance is
// unchanged.
//
// # Engines and sync levels
//
// Sub-benchmarks are named engine=E/sync=S/procs=P, so `benchstat -col /engine` lines the two
// engines up case by case:
//
//   - engine=txtdb: txtdb.Open with OneObjectPerPage (one account per page); DB.Update with
//     ReadPage, Decode and UpdatePage. sync=full is the default (log fsync at commit);
//     sync=relaxed is Options.NoSync.
//   - engine=sqlite: table acct(id INTEGER PRIMARY KEY, balance INTEGER), WAL mode,
//     busy_timeout=5000, one connection per process; each transfer is BEGIN IMMEDIATE; SELECT;
//     SELECT; UPDATE; UPDATE; COMMIT. sync=full is synchronous=FULL; sync=relaxed is
//     synchronous=NORMAL (no fsync per commit in WAL mode: a power cut may lose the last
//     commits, as with txtdb's NoSync).
//
// # Metrics
//
// commits/s over the whole run (slowest process included); p50-µs, p99-µs and max-µs of one
// transfer, lock waits and retries included, from the worst process (max-µs shows starvation
// that a p99 over all of a process's transfers hides); attempts/commit for txtdb (Update's conflict
// retries); busy-retries for SQLite (SQLITE_BUSY after busy_timeout, then retried).
//
// # Caveats
//
// Figures from one machine and one run are not portable: compare ratios measured side by side.
package bench
