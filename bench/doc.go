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
// # The table
//
// TestTable (`make bench-table`; skipped unless TXTDB_BENCH_TABLE is set) runs fixed-length cells
// instead of b.N transfers: for each sync level, clients per process (1 and 4) and process count
// (1, 2, 4, 8), txtdb and then SQLite run in a fresh store for TXTDB_BENCH_CELL (default 3s),
// every client starting transfers until the cell's time is up. A txtdb process's clients are
// goroutines sharing one DB; a SQLite process's clients each have their own connection. It prints
// one markdown table: commits/s of each engine (commits over the slowest process's time from "go"
// to its last commit) and their ratio, p50/p99/p99.9/max latency over every commit of every
// process, the fewest and most commits of any process, and the correctness check (accounts and
// total balance unchanged) for both. TXTDB_BENCH_PROCS and TXTDB_BENCH_CLIENTS
// (comma-separated) pick other cells.
//
// The workload runs through this package's adapter rather than cmd/txtdb-worker: the same
// transfer has to run on SQLite, which the root module must not depend on; the worker runs one
// client per process; and it writes an invoke and a completion history line per operation for
// the checkers, which would be measured too.
//
// # Caveats
//
// Figures from one machine and one run are not portable: compare ratios measured side by side.
package bench
