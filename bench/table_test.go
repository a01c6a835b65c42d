package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Knobs of TestTable, read from the environment so that `go test ./...` in bench/ skips it.
const (
	tableEnv   = "TXTDB_BENCH_TABLE"   // set (to anything) to run TestTable
	cellEnv    = "TXTDB_BENCH_CELL"    // length of one cell, a time.ParseDuration string (default 3s)
	procsEnv   = "TXTDB_BENCH_PROCS"   // comma-separated process counts (default 1,2,4,8)
	clientsEnv = "TXTDB_BENCH_CLIENTS" // comma-separated clients per process (default 1,4)
)

// cellResult is what one engine did in one cell.
type cellResult struct {
	ran           bool            // false when the cell failed before it measured anything
	perProc       []int           // commits of each process
	attempts      int             // transaction attempts (txtdb: Update's tries; SQLite: SQLITE_BUSY retries + 1)
	elapsed       time.Duration   // the longest process's time from "go" to its last commit
	lats          []time.Duration // every commit's latency in every process, sorted
	accounts, sum int64           // after the cell
}

func (r cellResult) commits() int { return sumInts(r.perProc) }

func (r cellResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.commits()) / r.elapsed.Seconds()
}

// ok reports whether the correctness check passed: every account is there and the total balance
// is what it was before the cell.
func (r cellResult) ok() bool {
	return r.ran && r.accounts == benchAccounts && r.sum == benchAccounts*initialBalance
}

// tableRow is one row of the table: both engines on the same cell.
type tableRow struct {
	level          string // syncFull or syncRelaxed
	procs, clients int
	txtdb, sqlite  cellResult
}

// TestTable runs the transfer workload for a fixed time per cell on txtdb and on SQLite, back to
// back, at every sync level, clients per process and process count, and prints one markdown
// table with the txtdb/SQLite ratio on every row. Everything in the table is measured in this
// run. It fails if a correctness check fails, never on a figure.
//
// Run it with `make bench-table`, or
//
//	cd bench && TXTDB_BENCH_TABLE=1 go test -run '^TestTable$' -count=1 -timeout 30m
//
// with TXTDB_BENCH_CELL, TXTDB_BENCH_PROCS and TXTDB_BENCH_CLIENTS to change the cells.
func TestTable(t *testing.T) {
	if os.Getenv(tableEnv) == "" {
		t.Skipf("set %s=1 (make bench-table) to run the txtdb/SQLite table", tableEnv)
	}
	cell := envDuration(t, cellEnv, 3*time.Second)
	procsList := envInts(t, procsEnv, []int{1, 2, 4, 8})
	clientsList := envInts(t, clientsEnv, []int{1, 4})

	loadBefore, began := loadAvg(), time.Now()
	var rows []tableRow
	for _, level := range []string{syncFull, syncRelaxed} {
		for _, clients := range clientsList {
			for _, procs := range procsList {
				row := tableRow{level: level, procs: procs, clients: clients}
				for _, eng := range []string{"txtdb", "sqlite"} {
					var r cellResult
					name := fmt.Sprintf("engine=%s/sync=%s/procs=%d/clients=%d", eng, level, procs, clients)
					t.Run(name, func(t *testing.T) { r = runCell(t, eng, level, procs, clients, cell) })
					if eng == "txtdb" {
						row.txtdb = r
					} else {
						row.sqlite = r
					}
					fmt.Fprintf(os.Stderr, "%s: %.0f commits/s, check %s\n", name, r.rate(), checkCell(r))
				}
				rows = append(rows, row)
			}
		}
	}
	fmt.Print(renderTable(rows, cell, loadBefore, loadAvg(), time.Since(began)))
}

// runCell runs one engine for one cell in a fresh store and returns what it measured.
func runCell(t *testing.T, engName, level string, procs, clients int, cell time.Duration) cellResult {
	eng, err := newEngine(engName, level)
	require.NoError(t, err)
	dir := t.TempDir()
	eng.setup(t, dir)
	outs := t.TempDir()

	workers := make([]*worker, procs)
	for i := range workers {
		workers[i] = startWorker(t, "cell", workerConfig{
			Engine: engName, Sync: level, Dir: dir,
			Clients: clients, Cell: cell, Out: filepath.Join(outs, fmt.Sprintf("lat.%d", i)),
		})
	}
	for _, w := range workers {
		w.expect(t, "ready")
	}
	for _, w := range workers {
		w.send(t, "go")
	}
	r := cellResult{ran: true}
	for i, w := range workers {
		lines, err := w.wait(t)
		require.NoError(t, err, "worker %d: %v", i, lines)
		var commits, attempts int
		var elapsed int64
		found := false
		for _, l := range lines {
			if _, err := fmt.Sscanf(l, "done %d %d %d", &commits, &attempts, &elapsed); err == nil {
				found = true
			}
		}
		require.True(t, found, "worker %d printed no done line: %v", i, lines)
		lats, err := readLatencies(filepath.Join(outs, fmt.Sprintf("lat.%d", i)))
		require.NoError(t, err)
		require.Len(t, lats, commits, "worker %d: one latency per commit", i)
		r.perProc = append(r.perProc, commits)
		r.attempts += attempts
		r.elapsed = max(r.elapsed, time.Duration(elapsed))
		r.lats = append(r.lats, lats...)
	}
	slices.Sort(r.lats)
	r.accounts, r.sum = eng.total(t, dir)
	if !r.ok() {
		t.Errorf("after the cell: %d accounts holding %d, want %d holding %d",
			r.accounts, r.sum, benchAccounts, benchAccounts*initialBalance)
	}
	return r
}

// cellRole is the worker side of TestTable: it opens the store (once, or once per client when
// the engine's clients cannot share a handle), prints "ready", waits for "go", runs cfg.Clients
// clients that each start transfers until cfg.Cell has passed, writes every commit's latency to
// cfg.Out and prints "done <commits> <attempts> <elapsed-ns>", elapsed running from "go" to the
// last commit's return.
func cellRole(cfg workerConfig, in *bufio.Reader, out io.Writer) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), longStop)
	defer cancel()
	eng, err := newEngine(cfg.Engine, cfg.Sync)
	if err != nil {
		return err
	}
	if cfg.Clients < 1 {
		return fmt.Errorf("%d clients", cfg.Clients)
	}
	handles := cfg.Clients
	if eng.sharesHandle() {
		handles = 1
	}
	stores := make([]store, 0, handles)
	defer func() {
		for _, st := range stores {
			if cerr := st.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("close: %w", cerr)
			}
		}
	}()
	for range handles {
		st, err := eng.open(ctx, cfg.Dir)
		if err != nil {
			return fmt.Errorf("open: %w", err)
		}
		stores = append(stores, st)
	}

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

	start := time.Now()
	deadline := start.Add(cfg.Cell)
	lats := make([][]time.Duration, cfg.Clients)
	attempts := make([]int, cfg.Clients)
	ends := make([]time.Time, cfg.Clients)
	errs := make([]error, cfg.Clients)
	var wg sync.WaitGroup
	for c := range cfg.Clients {
		st := stores[c%len(stores)]
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
			for ctx.Err() == nil && time.Now().Before(deadline) {
				a, b := pickAccounts(rng)
				t0 := time.Now()
				n, err := st.transfer(ctx, a, b)
				if err != nil {
					errs[c] = fmt.Errorf("client %d: transfer %d -> %d: %w", c, a, b, err)
					cancel()
					return
				}
				ends[c] = time.Now()
				lats[c] = append(lats[c], ends[c].Sub(t0))
				attempts[c] += n
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	all := slices.Concat(lats...)
	if err := writeLatencies(cfg.Out, all); err != nil {
		return err
	}
	var elapsed time.Duration
	for _, e := range ends {
		if !e.IsZero() {
			elapsed = max(elapsed, e.Sub(start))
		}
	}
	_, err = fmt.Fprintln(out, "done", len(all), sumInts(attempts), int64(elapsed))
	return err
}

// pickAccounts returns two distinct random accounts, 1-based.
func pickAccounts(rng *rand.Rand) (a, b int) {
	a = 1 + rng.IntN(benchAccounts)
	b = 1 + rng.IntN(benchAccounts-1)
	if b >= a {
		b++
	}
	return a, b
}

// writeLatencies writes lats to path as little-endian int64 nanoseconds.
func writeLatencies(path string, lats []time.Duration) error {
	buf := make([]byte, 0, 8*len(lats))
	for _, d := range lats {
		buf = binary.LittleEndian.AppendUint64(buf, uint64(d))
	}
	return os.WriteFile(path, buf, 0o644)
}

// readLatencies reads a file writeLatencies wrote.
func readLatencies(path string) ([]time.Duration, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(buf)%8 != 0 {
		return nil, fmt.Errorf("%s: %d bytes, not a multiple of 8", path, len(buf))
	}
	lats := make([]time.Duration, len(buf)/8)
	for i := range lats {
		lats[i] = time.Duration(binary.LittleEndian.Uint64(buf[8*i:]))
	}
	return lats, nil
}

// renderTable formats rows as one markdown table and the conditions of the run under it.
func renderTable(rows []tableRow, cell time.Duration, loadBefore, loadAfter string, took time.Duration) string {
	var sb strings.Builder
	sb.WriteString("\n| mode | P | clients/proc | txtdb commits/s | SQLite commits/s | ratio | txtdb p50 / p99 / p99.9 / max (ms) | SQLite p50 / p99 / p99.9 / max (ms) | txtdb commits/proc fewest–most | SQLite commits/proc fewest–most | check txtdb / SQLite |\n")
	sb.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		mode := map[string]string{syncFull: "durable", syncRelaxed: "relaxed"}[r.level]
		ratio := "n/a"
		if r.txtdb.ran && r.sqlite.ran && r.sqlite.rate() > 0 {
			ratio = fmt.Sprintf("%.2f", r.txtdb.rate()/r.sqlite.rate())
		}
		fmt.Fprintf(&sb, "| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s / %s |\n",
			mode, r.procs, r.clients,
			rateCell(r.txtdb), rateCell(r.sqlite), ratio,
			latencyCell(r.txtdb), latencyCell(r.sqlite),
			fairnessCell(r.txtdb), fairnessCell(r.sqlite),
			checkCell(r.txtdb), checkCell(r.sqlite))
	}
	fmt.Fprintf(&sb, "\n%d accounts, transfers of 1 between two random ones; %v per cell, every client starting transfers until then. "+
		"durable: txtdb fsync at commit vs SQLite WAL synchronous=FULL; relaxed: txtdb NoSync vs SQLite WAL synchronous=NORMAL. "+
		"txtdb: the clients of a process share one DB; SQLite: one connection per client, BEGIN IMMEDIATE, busy_timeout=5000. "+
		"Latency: one transfer, lock waits and retries included, over every commit of every process. "+
		"check: accounts and total balance unchanged after the cell.\n", benchAccounts, cell)
	fmt.Fprintf(&sb, "%s/%s, %d CPUs, load average %s before, %s after; run took %v.\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), loadBefore, loadAfter, took.Round(time.Second))
	return sb.String()
}

func rateCell(r cellResult) string {
	if !r.ran {
		return "failed"
	}
	return thousands(int64(r.rate() + 0.5))
}

func latencyCell(r cellResult) string {
	if len(r.lats) == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%s / %s / %s / %s", ms(percentile(r.lats, 0.50)), ms(percentile(r.lats, 0.99)),
		ms(percentile(r.lats, 0.999)), ms(r.lats[len(r.lats)-1]))
}

func fairnessCell(r cellResult) string {
	if len(r.perProc) == 0 {
		return "n/a"
	}
	lo, hi := slices.Min(r.perProc), slices.Max(r.perProc)
	share := 0.0
	if hi > 0 {
		share = float64(lo) / float64(hi)
	}
	return fmt.Sprintf("%s–%s (%.2f)", thousands(int64(lo)), thousands(int64(hi)), share)
}

func checkCell(r cellResult) string {
	switch {
	case !r.ran:
		return "not run"
	case r.ok():
		return "ok"
	}
	return fmt.Sprintf("FAIL (%d accounts, total %d)", r.accounts, r.sum)
}

// ms formats d in milliseconds with about three significant digits.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// thousands formats n with a comma every three digits.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func sumInts(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// loadAvg returns the 1, 5 and 15 minute load averages from /proc/loadavg, or "n/a".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "n/a"
}

func envDuration(tb testing.TB, name string, def time.Duration) time.Duration {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	require.NoError(tb, err, "%s", name)
	require.Positive(tb, d, "%s", name)
	return d
}

func envInts(tb testing.TB, name string, def []int) []int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		require.NoError(tb, err, "%s", name)
		require.Positive(tb, n, "%s", name)
		out = append(out, n)
	}
	return out
}
