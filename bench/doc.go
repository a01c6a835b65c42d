// Package bench compares txtdb with SQLite (modernc.org/sqlite, WAL mode) on the same
// multi-process workloads, in one run, so that the ratios mean something.
//
// It is a module of its own so that the SQLite driver never becomes a dependency of txtdb.
// Everything lives in _test.go files. `make bench` from the repository root prints the table
// (TestTable); `make bench-peer` runs the b.N benchmarks:
//
//	cd bench && go test -run '^$' -bench . -benchtime 3000x -count 3
//
// # Workloads
//
// benchAccounts accounts start with initialBalance each. A transfer picks two distinct random
// accounts, reads both, writes a-1 and b+1 and commits. An insert adds one small job (who
// inserted it, its sequence number, a short body) to one namespace (txtdb, many jobs to a page) or
// one table (SQLite, an autocommit INSERT): the job-queue case. A read reads one random account in
// a read-only transaction (txtdb: View and one ReadPage; SQLite: an autocommit SELECT by primary
// key). P real OS processes (the test binary re-executed in a worker role) share one store.
//
// # Engines and sync levels
//
// Sub-benchmarks are named engine=E/sync=S/procs=P, so `benchstat -col /engine` lines the two
// engines up case by case:
//
//   - engine=txtdb: txtdb.Open with OneObjectPerPage (one account per page; the insert workload
//     opens without it, so jobs share pages); DB.Update with ReadPage, Decode and UpdatePage.
//     sync=full is the default (log fsync at commit); sync=relaxed is Options.NoSync.
//   - engine=sqlite: table acct(id INTEGER PRIMARY KEY, balance INTEGER), WAL mode,
//     busy_timeout=5000, one connection per client; each transfer is BEGIN IMMEDIATE; SELECT;
//     SELECT; UPDATE; UPDATE; COMMIT. sync=full is synchronous=FULL; sync=relaxed is
//     synchronous=NORMAL (no fsync per commit in WAL mode: a power cut may lose the last
//     commits, as with txtdb's NoSync). SQLite syncs with fdatasync(2), as txtdb's log does and as
//     SQLite builds configured for Linux do (modernc's own default is fsync(2);
//     TXTDB_BENCH_SQLITE_SYNC=fsync restores it).
//
// # Metrics of the b.N benchmarks
//
// commits/s over the whole run (slowest process included); p50-µs, p99-µs and max-µs of one
// transfer, lock waits and retries included, from the worst process (max-µs shows starvation
// that a p99 over all of a process's transfers hides); attempts/commit for txtdb (Update's conflict
// retries); busy-retries for SQLite (SQLITE_BUSY after busy_timeout, then retried).
//
// # The table
//
// TestTable (`make bench`; skipped unless TXTDB_BENCH_TABLE is set) runs fixed-length cells
// instead of b.N operations. Its rows, in order: transfer at P = 1, 2, 4, 8 processes with 1 and
// 4 clients each; insert at P = 1, 4 with 1 client; read with one reader process and P-1 = 1, 3
// writer processes doing transfers; each durable and relaxed. For each row txtdb and then SQLite
// run in a fresh store (a copy of one set up once per engine) for TXTDB_BENCH_CELL (default 3s),
// every client starting operations until the cell's time is up. A txtdb process's clients are
// goroutines sharing one DB; a SQLite process's clients each have their own connection.
//
// Each row gives, for both engines: operations/s (over the slowest process's time from "go" to
// its last operation) and their ratio, p50/p99/p99.9/max latency over every operation of every
// process, the number of samples, the fewest and most commits of any process, fsyncs and CPU
// time per commit, and the correctness check. Fsyncs per commit are counted two ways: txtdb's own counter
// (Stats.Fsyncs, the log fsyncs of its commit groups), and, for both engines, the fsync,
// fdatasync and syncfs system calls of the cell's processes between "go" and the last "done",
// counted by `perf stat` on the syscall tracepoints (in the kernel: no process is stopped, unlike
// under strace; perf's control pipe brackets the window). Where perf is missing or may not count
// tracepoints, those columns say n/a and the table says why; TXTDB_BENCH_PERF=0 turns it off.
// The same perf run counts the CPU time of the processes' threads (task-clock), given per commit.
// The check: accounts and total balance unchanged, and after inserts every acknowledged job in
// the store exactly once and no other.
//
// TXTDB_BENCH_ROWS (transfer,insert,read), TXTDB_BENCH_MODES (durable,relaxed),
// TXTDB_BENCH_PROCS and TXTDB_BENCH_CLIENTS (comma-separated; they replace every workload's
// defaults, and a read row always has 1 client per process) pick other cells.
//
// # The table workloads
//
// `make bench-tables` (TXTDB_BENCH_ROWS=tables) runs the same machinery on a table: records with
// an int64 primary key, an e-mail address under a unique index and a short note (txtdb: package
// table, table.New and table.Unique; SQLite: id INTEGER PRIMARY KEY and CREATE UNIQUE INDEX on
// email). Every cell starts from a copy of a table pre-filled with TXTDB_BENCH_FILL (10,000)
// records. Its rows, each durable and relaxed, P = 1 and 4, one client per process:
// table-insert-random and table-insert-increasing insert one record per transaction (txtdb:
// table.Insert in DB.Update; SQLite: BEGIN IMMEDIATE, INSERT, COMMIT), with keys spread over the
// key space or sequence numbers interleaved between the processes (all at the right end);
// table-get-key, table-get-unique and table-range run one reader process (a read-only
// transaction per get, or per range scan of 1,000 records in key order) beside P-1 processes
// inserting random keys; a reader alone is one row, not one per mode. Every key is a function of
// who wrote it (the pre-filled record's number, or the process, client and sequence number), so
// the check after a cell knows which records must be there: every pre-filled and acknowledged
// record exactly once and right, no other, and the engine's own check of the table and its index
// (table.Check; PRAGMA integrity_check and the count through the index). Every read checks the
// rows it got. The retry rate is txtdb's Update calls per acknowledged insert, minus one.
//
// The workload runs through this package's adapter rather than cmd/txtdb-worker: the same
// transactions have to run on SQLite, which the root module must not depend on; the worker runs
// one client per process; and it writes an invoke and a completion history line per operation
// for the checkers, which would be measured too.
//
// TXTDB_BENCH_OFFER=0 opens txtdb's handles with Options.NoOffer (no commit is offered to the
// commit lock holder: each takes the lock and fsyncs itself).
//
// The stores are in the Go test's temporary directory (TMPDIR): where creating a file is slow (an
// ext4 block group full of recently deleted inodes, such as a busy /tmp), txtdb's checkpoints pay
// for it, and SQLite, which creates no files in a cell, does not.
//
// TXTDB_BENCH_CPUPROFILE=dir makes every cell worker write a CPU profile of its measured window
// to dir (engine-workload-sync-Pprocs-proc.prof), for `go tool pprof` with the test binary.
//
// # Cost against table size
//
// TestScale (`make bench-scale`; skipped unless TXTDB_BENCH_SCALE names the sizes, such as
// 1000,1000000) fills the records table to each size, in random key order, 1,000 records per
// transaction (txtdb: NoSync, a larger page cache and no checkpointed log kept for the fill;
// SQLite: synchronous=NORMAL),
// and measures it in a fresh process: Open, point gets by key and by the unique index, ranges of
// about 1,000 records, and inserts of random and of increasing keys, one per transaction (NoSync,
// synchronous=NORMAL), TXTDB_BENCH_SCALE_OPS (2,000) of each. It reports time per operation, for
// txtdb the pages each one read and loaded (Stats.CacheHits and CacheMisses around each phase),
// the process's RSS, and the sizes side by side with the ratio of the largest to the smallest.
// The whole table is checked afterwards (table.Check; integrity_check) and every record read.
// TXTDB_BENCH_SCALE_DIR=dir keeps the filled stores in dir: the next run measures a copy of them,
// and a fill cut short is finished from the records the store holds.
//
// # Caveats
//
// Figures from one machine and one run are not portable: compare ratios measured side by side.
// The machine's other load moves them too; the table prints the load average before and after.
package bench
