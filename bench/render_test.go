package bench

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// runConditions is what the table says about how it was made.
type runConditions struct {
	cell                  time.Duration
	fill                  int // records pre-filled for the table workloads
	counting              syncCounting
	machine               string // describeMachine
	loadBefore, loadAfter string
	took                  time.Duration
}

// renderTable formats rows as markdown tables, one for the accounts' workloads and one for the
// table workloads (those present), and the conditions of the run under them.
func renderTable(rows []tableRow, c runConditions) string {
	var accts, recs []tableRow
	for _, r := range rows {
		if isTableWorkload(r.spec.workload) {
			recs = append(recs, r)
		} else {
			accts = append(accts, r)
		}
	}
	var sb strings.Builder
	if len(accts) > 0 {
		sb.WriteString(renderAccounts(accts, c))
	}
	if len(recs) > 0 {
		sb.WriteString(renderRecords(recs, c))
	}
	if c.machine != "" {
		fmt.Fprintf(&sb, "\n%s; load average %s before, %s after; run took %v.\n", c.machine, c.loadBefore, c.loadAfter, c.took.Round(time.Second))
	}
	return sb.String()
}

// renderAccounts formats the rows of the accounts' and jobs' workloads as one markdown table
// with its notes.
func renderAccounts(rows []tableRow, c runConditions) string {
	var sb strings.Builder
	sb.WriteString("\n| workload | mode | P | clients/proc | txtdb /s | SQLite /s | ratio " +
		"| txtdb p50 / p99 / p99.9 / max (ms) | SQLite p50 / p99 / p99.9 / max (ms) | samples txtdb / SQLite " +
		"| txtdb commits/proc fewest–most | SQLite commits/proc fewest–most " +
		"| txtdb fsyncs/commit engine / syscalls | SQLite fsyncs/commit syscalls | CPU µs/commit txtdb / SQLite | check txtdb / SQLite |\n")
	sb.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		ratio := "n/a"
		if r.txtdb.ran && r.sqlite.ran && r.sqlite.rate() > 0 {
			ratio = fmt.Sprintf("%.2f", r.txtdb.rate()/r.sqlite.rate())
		}
		fmt.Fprintf(&sb, "| %s | %s | %d | %d | %s | %s | %s | %s | %s | %s / %s | %s | %s | %s / %s | %s | %s / %s | %s / %s |\n",
			r.spec.workload, modeName(r.spec.level), r.spec.procs, r.spec.clients,
			rateCell(r.txtdb), rateCell(r.sqlite), ratio,
			latencyCell(r.txtdb), latencyCell(r.sqlite),
			samplesCell(r.txtdb), samplesCell(r.sqlite),
			fairnessCell(r.spec, r.txtdb), fairnessCell(r.spec, r.sqlite),
			perCommit(r.txtdb.engineSyncs, r.txtdb), perCommit(r.txtdb.sysSyncs, r.txtdb), perCommit(r.sqlite.sysSyncs, r.sqlite),
			cpuCell(r.spec, r.txtdb), cpuCell(r.spec, r.sqlite),
			checkCell(r.txtdb), checkCell(r.sqlite))
	}
	fmt.Fprintf(&sb, "\n%v per cell, every client starting operations until then; each cell on a fresh store, txtdb and then SQLite.\n", c.cell)
	fmt.Fprintf(&sb, "- transfer: %d accounts, each transaction reads two random ones and writes a-1 and b+1 (txtdb: one account per page, Update with ReadPage and UpdatePage; SQLite: BEGIN IMMEDIATE, 2 SELECT, 2 UPDATE, COMMIT).\n", benchAccounts)
	sb.WriteString("- insert: each transaction inserts one small job (about 70 bytes of JSON) into one namespace (txtdb: Update with Tx.Insert, jobs packed many to a page) / one table (SQLite: one autocommit INSERT).\n")
	sb.WriteString("- read: one process reads one random account per transaction (txtdb: View with one ReadPage; SQLite: autocommit SELECT by primary key) while P-1 processes run transfers; /s, latencies and samples are the reads; commits/proc and fsyncs/commit are the writers', whose commits/s follow the fewest–most.\n")
	call, err := sqliteSyncCall()
	if err != nil {
		call = err.Error()
	}
	fmt.Fprintf(&sb, "- durable: txtdb fdatasync of the log at commit vs SQLite WAL synchronous=FULL; relaxed: txtdb NoSync vs SQLite WAL synchronous=NORMAL; SQLite syncs with %s (%s). txtdb: the clients of a process share one DB; SQLite: one connection per client, busy_timeout=5000.\n", call, sqliteSyncEnv)
	sb.WriteString("- /s: operations over the longest process's time from \"go\" to its last one. Latency: one transaction, lock waits and retries included, over every one of every process. Samples: latencies measured.\n")
	sb.WriteString("- fsyncs/commit: engine = the log fsyncs txtdb's own counter (Stats.Fsyncs) saw in the window; syscalls = fsync, fdatasync and syncfs calls of the cell's processes in the window, counted by perf's syscall tracepoints (in the kernel, no process stopped), checkpoints included")
	if c.counting.perf == "" {
		fmt.Fprintf(&sb, "; not counted in this run: %s", c.counting.reason)
	}
	sb.WriteString(". Both per acknowledged commit.\n")
	sb.WriteString("- CPU µs/commit: CPU time of every thread of the cell's processes in the window (perf's task-clock), per acknowledged commit; not given for read rows, where the reader's and the writers' CPU mix.\n")
	sb.WriteString("- check: accounts and total balance unchanged after the cell; after inserts also every acknowledged job present exactly once, and no other.\n")
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

func samplesCell(r cellResult) string {
	if !r.ran {
		return "n/a"
	}
	return thousands(int64(len(r.lats)))
}

// fairnessCell is the fewest and most commits of a committing process and their ratio; for a
// read cell, then the writers' commits/s.
func fairnessCell(spec cellSpec, r cellResult) string {
	if len(r.perProc) == 0 {
		return "n/a"
	}
	lo, hi := slices.Min(r.perProc), slices.Max(r.perProc)
	share := 0.0
	if hi > 0 {
		share = float64(lo) / float64(hi)
	}
	s := fmt.Sprintf("%s–%s (%.2f)", thousands(int64(lo)), thousands(int64(hi)), share)
	if isReadCell(spec.workload) {
		s += fmt.Sprintf("; %s/s", thousands(int64(r.commitRate()+0.5)))
	}
	return s
}

// perCommit is n per acknowledged commit of r, "n/a" when n is unknown (negative).
func perCommit(n int64, r cellResult) string {
	if n < 0 || !r.ran || r.commits() == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", float64(n)/float64(r.commits()))
}

// cpuCell is r's CPU time per acknowledged commit in microseconds.
func cpuCell(spec cellSpec, r cellResult) string {
	if spec.workload == workloadRead {
		return "—"
	}
	if r.sysSyncs < 0 || !r.ran || r.commits() == 0 {
		return "n/a"
	}
	return strconv.FormatFloat(micros(r.cpu)/float64(r.commits()), 'f', 0, 64)
}

func checkCell(r cellResult) string {
	switch {
	case !r.ran:
		return "not run"
	case r.ok():
		return "ok"
	}
	var why []string
	if !r.table && (r.accounts != benchAccounts || r.sum != benchAccounts*initialBalance) {
		why = append(why, fmt.Sprintf("%d accounts holding %d, want %d holding %d",
			r.accounts, r.sum, benchAccounts, benchAccounts*initialBalance))
	}
	if r.problem != "" {
		why = append(why, r.problem)
	}
	return "FAIL (" + strings.Join(why, "; ") + ")"
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
	if n < 0 {
		return "-" + thousands(-n)
	}
	s := strconv.FormatInt(n, 10)
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

// describeMachine says what the run ran on: OS, CPUs, kernel, and the file system the stores
// were on (that of dir).
func describeMachine(dir string) string {
	s := fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		s += ", kernel " + strings.TrimSpace(string(b))
	}
	if fs := fileSystem(dir); fs != "" {
		s += ", stores on " + fs
	}
	return s
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

func envInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(tb, err, "%s", name)
	require.Positive(tb, n, "%s", name)
	return n
}

func envInts(tb testing.TB, name string, def []int) []int {
	tb.Helper()
	var out []int
	for _, f := range envWords(tb, name, nil) {
		n, err := strconv.Atoi(f)
		require.NoError(tb, err, "%s", name)
		require.Positive(tb, n, "%s", name)
		out = append(out, n)
	}
	if out == nil {
		return def
	}
	return out
}

// envWords returns the comma-separated words of environment variable name, def if it is unset.
func envWords(tb testing.TB, name string, def []string) []string {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []string
	for f := range strings.SplitSeq(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	require.NotEmpty(tb, out, "%s", name)
	return out
}
