package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The workload: benchAccounts accounts holding initialBalance each; transfers move 1 between two.
const (
	benchAccounts  = 1000
	initialBalance = 1000
)

// Sync levels, the same two names for both engines so that benchstat can line them up.
const (
	syncFull    = "full"    // txtdb default (fsync at commit); SQLite synchronous=FULL
	syncRelaxed = "relaxed" // txtdb NoSync; SQLite synchronous=NORMAL
)

// engine is a store under test. The parent calls setup, total and jobs; workers call open.
type engine interface {
	// setup creates a store in dir holding benchAccounts accounts of initialBalance each and an
	// empty job namespace (txtdb) or table (SQLite).
	setup(tb testing.TB, dir string)
	// open opens this process's handle on the store in dir for workload w (workloadTransfer,
	// workloadInsert or workloadRead on a store setup made; a table workload on one setupTable
	// made).
	open(ctx context.Context, dir, w string) (store, error)
	// total returns how many accounts the store in dir holds and their summed balance.
	total(tb testing.TB, dir string) (accounts, sum int64)
	// jobs returns how many times each job is in the store in dir.
	jobs(tb testing.TB, dir string) map[jobKey]int
	// setupTable creates a store in dir holding the records table with fill pre-filled
	// records (fillKey(0) to fillKey(fill-1)) and nothing else.
	setupTable(tb testing.TB, dir string, fill int)
	// records returns how many times each key is in the records table of the store in dir,
	// what is wrong with the records that are there, and what the engine's own checks find
	// wrong with the table and its index ("" if nothing).
	records(tb testing.TB, dir string) (seen map[int64]int, bad []string, problem string)
	// sharesHandle reports whether the clients of one process share one store (txtdb: a DB is
	// safe for concurrent use, and in-process commit groups need the clients to share it) or
	// each opens its own (SQLite: one connection per client).
	sharesHandle() bool
}

// store is one process's handle on a store under test.
type store interface {
	// transfer moves 1 from account a to account b (1-based, a != b) in one transaction and
	// returns how many attempts it took (1 when it committed at the first try).
	transfer(ctx context.Context, a, b int) (attempts int, err error)
	// insert adds job j in one transaction and returns how many attempts it took.
	insert(ctx context.Context, j job) (attempts int, err error)
	// read returns the balance of account a in a read-only transaction (txtdb: View and
	// ReadPage; SQLite: an autocommit SELECT by primary key).
	read(ctx context.Context, a int) (int64, error)
	// insertRecord inserts r into the records table in one transaction and returns how many
	// attempts it took.
	insertRecord(ctx context.Context, r record) (attempts int, err error)
	// getRecord, getRecordByEmail and rangeRecords read the records table in one read-only
	// transaction each: by primary key, by the unique index, and the keys [lo, hi) in order.
	getRecord(ctx context.Context, id int64) (record, error)
	getRecordByEmail(ctx context.Context, email string) (record, error)
	rangeRecords(ctx context.Context, lo, hi int64) ([]record, error)
	// syncs returns the log fsyncs the engine itself counted so far in this process (txtdb:
	// Stats.Fsyncs), or -1 if it counts none (SQLite). Not for a hot loop.
	syncs() int64
	Close() error
}

// job is one small job of the insert workload: client Client of process Proc inserts its jobs
// with Seq 0, 1, 2, ... in order, each once it knows the one before committed.
type job struct {
	Proc   int    `json:"proc"`
	Client int    `json:"client"`
	Seq    int    `json:"seq"`
	Body   string `json:"body"`
}

// jobKey names a job: who inserted it, and its place in that client's sequence.
type jobKey struct{ proc, client, seq int }

// newJob returns job seq of client c in process p, with a short body.
func newJob(p, c, seq int) job {
	return job{Proc: p, Client: c, Seq: seq, Body: fmt.Sprintf("send mail %d-%d-%d", p, c, seq)}
}

// newEngine returns the engine called name at the given sync level.
func newEngine(name, sync string) (engine, error) {
	if sync != syncFull && sync != syncRelaxed {
		return nil, fmt.Errorf("unknown sync level %q", sync)
	}
	switch name {
	case "txtdb":
		return txtdbEngine{noSync: sync == syncRelaxed}, nil
	case "sqlite":
		call, err := sqliteSyncCall()
		if err != nil {
			return nil, err
		}
		return sqliteEngine{
			synchronous: map[string]string{syncFull: "FULL", syncRelaxed: "NORMAL"}[sync],
			fdatasync:   call == "fdatasync",
		}, nil
	}
	return nil, fmt.Errorf("unknown engine %q", name)
}

// Workloads of the table's cells.
const (
	workloadTransfer = "transfer" // transfers between two random accounts
	workloadInsert   = "insert"   // small jobs inserted into one namespace / table
	workloadRead     = "read"     // point reads of one random account (the others transfer)
)

// workerConfig is what the parent hands a worker, as JSON in benchConfigEnv.
type workerConfig struct {
	Engine string
	Sync   string
	Dir    string
	N      int // transfers this worker runs (role transfer)

	// Role cell only.
	Workload string        // workloadTransfer, workloadInsert, workloadRead or a table workload
	Proc     int           // this worker's index among the cell's processes
	Procs    int           // the cell's processes
	Fill     int           // table workloads: the records pre-filled
	Clients  int           // concurrent clients in this worker
	Cell     time.Duration // how long the clients start new operations
	Out      string        // file the worker writes its latencies to (little-endian int64 ns)
}

// BenchmarkTransfer runs the transfer workload on txtdb and SQLite with P worker processes that
// share one store; b.N transfers are split among them. The cases are ordered so that the two
// engines run back to back under the same conditions.
func BenchmarkTransfer(b *testing.B) {
	for _, procs := range []int{1, 4} {
		for _, sync := range []string{syncFull, syncRelaxed} {
			for _, eng := range []string{"txtdb", "sqlite"} {
				name := fmt.Sprintf("engine=%s/sync=%s/procs=%d", eng, sync, procs)
				b.Run(name, func(b *testing.B) { benchTransfer(b, eng, sync, procs) })
			}
		}
	}
}

// result is one worker's "done" line.
type result struct {
	commits, attempts int
	p50, p99, slowest float64 // µs
}

func benchTransfer(b *testing.B, engName, sync string, procs int) {
	eng, err := newEngine(engName, sync)
	require.NoError(b, err)
	dir := b.TempDir()
	eng.setup(b, dir)

	workers := make([]*worker, procs)
	for i := range workers {
		n := b.N / procs
		if i < b.N%procs {
			n++
		}
		workers[i] = startWorker(b, "transfer", workerConfig{Engine: engName, Sync: sync, Dir: dir, N: n})
	}
	for _, w := range workers {
		w.expect(b, "ready")
	}
	b.ResetTimer()
	for _, w := range workers {
		w.send(b, "go")
	}
	var results []result
	for _, w := range workers {
		lines, err := w.wait(b)
		require.NoError(b, err, "worker: %v", lines)
		var r result
		for _, l := range lines {
			if _, err := fmt.Sscanf(l, "done %d %d %g %g %g", &r.commits, &r.attempts, &r.p50, &r.p99, &r.slowest); err == nil {
				results = append(results, r)
			}
		}
	}
	b.StopTimer()
	require.Len(b, results, procs, "every worker reports")

	var commits, attempts int
	var p50s, p99s, maxs []float64
	for _, r := range results {
		commits += r.commits
		attempts += r.attempts
		if r.commits > 0 {
			p50s = append(p50s, r.p50)
			p99s = append(p99s, r.p99)
			maxs = append(maxs, r.slowest)
		}
	}
	require.Equal(b, b.N, commits, "every transfer commits once")
	accounts, sum := eng.total(b, dir)
	require.EqualValues(b, benchAccounts, accounts, "accounts after the run")
	require.EqualValues(b, benchAccounts*initialBalance, sum, "total balance after the run")

	b.ReportMetric(float64(commits)/b.Elapsed().Seconds(), "commits/s")
	b.ReportMetric(slices.Max(p50s), "p50-µs")
	b.ReportMetric(slices.Max(p99s), "p99-µs")
	b.ReportMetric(slices.Max(maxs), "max-µs")
	switch engName {
	case "txtdb":
		b.ReportMetric(float64(attempts)/float64(commits), "attempts/commit")
	case "sqlite":
		b.ReportMetric(float64(attempts-commits), "busy-retries")
	}
}

// transferRole is the worker side of BenchmarkTransfer: it opens the store, prints "ready", waits
// for "go", runs cfg.N transfers and prints "done <commits> <attempts> <p50µs> <p99µs> <maxµs>".
func transferRole(cfg workerConfig, in *bufio.Reader, out io.Writer) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), longStop)
	defer cancel()
	eng, err := newEngine(cfg.Engine, cfg.Sync)
	if err != nil {
		return err
	}
	st, err := eng.open(ctx, cfg.Dir, workloadTransfer)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer func() {
		if cerr := st.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	lats := make([]time.Duration, 0, cfg.N)

	if _, err := fmt.Fprintln(out, "ready"); err != nil {
		return err
	}
	cmd, err := in.ReadString('\n')
	if err != nil {
		return fmt.Errorf("read command: %w", err)
	}
	if strings.TrimSpace(cmd) != "go" {
		return fmt.Errorf("unexpected command %q", cmd)
	}
	attempts := 0
	for range cfg.N {
		a, b := pickAccounts(rng)
		start := time.Now()
		n, err := st.transfer(ctx, a, b)
		if err != nil {
			return fmt.Errorf("transfer %d -> %d: %w", a, b, err)
		}
		lats = append(lats, time.Since(start))
		attempts += n
	}
	slices.Sort(lats)
	_, err = fmt.Fprintln(out, "done", len(lats), attempts,
		micros(percentile(lats, 0.50)), micros(percentile(lats, 0.99)), micros(percentile(lats, 1)))
	return err
}

// percentile returns the p-quantile of sorted (0 when it is empty).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
