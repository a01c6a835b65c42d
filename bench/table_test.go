package bench

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Knobs of TestTable, read from the environment so that `go test ./...` in bench/ skips it.
const (
	tableEnv   = "TXTDB_BENCH_TABLE"   // set (to anything) to run TestTable
	cellEnv    = "TXTDB_BENCH_CELL"    // length of one cell, a time.ParseDuration string (default 3s)
	rowsEnv    = "TXTDB_BENCH_ROWS"    // comma-separated workloads (default transfer,insert,read; "tables": every table workload)
	modesEnv   = "TXTDB_BENCH_MODES"   // comma-separated modes (default durable,relaxed)
	procsEnv   = "TXTDB_BENCH_PROCS"   // comma-separated process counts for every workload
	clientsEnv = "TXTDB_BENCH_CLIENTS" // comma-separated clients per process (transfer, inserts)
	fillEnv    = "TXTDB_BENCH_FILL"    // records in the table before a table cell (default 10000)
)

// Modes, as the table and TXTDB_BENCH_MODES name them, and the sync level each means.
var modes = map[string]string{"durable": syncFull, "relaxed": syncRelaxed}

// modeName is the inverse of modes.
func modeName(level string) string {
	for m, l := range modes {
		if l == level {
			return m
		}
	}
	return level
}

// cellSpec is one row's cell: what runs, at which sync level, in how many processes with how
// many clients each. A read cell runs one reader process with one client and procs-1 writer
// processes with one client each, doing transfers (workloadRead) or inserting records with
// random keys (the table reads).
type cellSpec struct {
	workload       string
	level          string // syncFull or syncRelaxed
	procs, clients int
}

func (s cellSpec) String() string {
	return fmt.Sprintf("workload=%s/sync=%s/procs=%d/clients=%d", s.workload, s.level, s.procs, s.clients)
}

// tableSpecs returns the table's rows in order: each workload's default process and client counts
// (TXTDB_BENCH_PROCS and TXTDB_BENCH_CLIENTS replace them), for each mode.
func tableSpecs(tb testing.TB) []cellSpec {
	tb.Helper()
	defaults := map[string]struct{ procs, clients []int }{
		workloadTransfer: {[]int{1, 2, 4, 8}, []int{1, 4}},
		workloadInsert:   {[]int{1, 4}, []int{1}},
		workloadRead:     {[]int{2, 4}, []int{1}},
	}
	for _, w := range tableWorkloadList {
		defaults[w] = struct{ procs, clients []int }{[]int{1, 4}, []int{1}}
	}
	var workloads []string
	for _, w := range envWords(tb, rowsEnv, []string{workloadTransfer, workloadInsert, workloadRead}) {
		if w == tableWorkloads {
			workloads = append(workloads, tableWorkloadList...)
			continue
		}
		workloads = append(workloads, w)
	}
	var specs []cellSpec
	for _, w := range workloads {
		d, ok := defaults[w]
		require.True(tb, ok, "%s: unknown workload %q", rowsEnv, w)
		procs := envInts(tb, procsEnv, d.procs)
		clients := envInts(tb, clientsEnv, d.clients)
		if isReadCell(w) {
			clients = []int{1}
		}
		for mi, m := range envWords(tb, modesEnv, []string{"durable", "relaxed"}) {
			level, ok := modes[m]
			require.True(tb, ok, "%s: unknown mode %q", modesEnv, m)
			for _, c := range clients {
				for _, p := range procs {
					if isTableRead(w) && p == 1 && mi > 0 {
						continue // a reader alone commits nothing: the sync level changes nothing
					}
					specs = append(specs, cellSpec{workload: w, level: level, procs: p, clients: c})
				}
			}
		}
	}
	return specs
}

// isReadCell reports whether w's cells measure one reader process beside procs-1 writers.
func isReadCell(w string) bool { return w == workloadRead || isTableRead(w) }

// cellResult is what one engine did in one cell.
type cellResult struct {
	ran     bool            // false when the cell failed before it measured anything
	lats    []time.Duration // the row's operations (a read cell: the reader's reads), sorted
	elapsed time.Duration   // the longest time from "go" to the last of those operations

	perProc       []int         // commits of each committing process (a read cell: the writers)
	attempts      int           // their transaction attempts (txtdb: Update's tries; SQLite: SQLITE_BUSY retries + 1)
	commitElapsed time.Duration // the longest committing process's time from "go" to its last commit

	engineSyncs int64         // fsyncs the engine counted in the window, every process (-1: it counts none)
	sysSyncs    int64         // sync system calls perf counted in the window, every process (-1: not counted)
	cpu         time.Duration // CPU time perf counted in the window, every process (valid when sysSyncs is)
	sysReason   string        // why sysSyncs is -1

	table         bool   // a table workload's cell (no accounts)
	accounts, sum int64  // after the cell (not a table cell)
	problem       string // what is wrong with the jobs or the records after the cell ("" if nothing)
}

func (r cellResult) commits() int { return sumInts(r.perProc) }

// rate is the row's operations per second.
func (r cellResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(len(r.lats)) / r.elapsed.Seconds()
}

// commitRate is the committing processes' commits per second.
func (r cellResult) commitRate() float64 {
	if r.commitElapsed <= 0 {
		return 0
	}
	return float64(r.commits()) / r.commitElapsed.Seconds()
}

// ok reports whether the correctness check passed: every account is there, the total balance
// is what it was before the cell, and after an insert cell every acknowledged job is there
// exactly once and no other; after a table cell, the pre-filled and the acknowledged records are
// there exactly once and right, no other, and the engine's checks of the table and its index
// find nothing wrong.
func (r cellResult) ok() bool {
	if !r.ran || r.problem != "" {
		return false
	}
	return r.table || (r.accounts == benchAccounts && r.sum == benchAccounts*initialBalance)
}

// tableRow is one row of the table: both engines on the same cell.
type tableRow struct {
	spec          cellSpec
	txtdb, sqlite cellResult
}

// TestTable runs every row's cell for a fixed time on txtdb and on SQLite, back to back, and
// prints one markdown table with the txtdb/SQLite ratio on every row (two tables when both the
// accounts' and the records' workloads run). Everything in the table is measured in this run.
// It fails if a correctness check fails, never on a figure.
//
// Run it with `make bench` (`make bench-tables` for the table workloads), or
//
//	cd bench && TXTDB_BENCH_TABLE=1 go test -run '^TestTable$' -count=1 -timeout 30m
//
// with TXTDB_BENCH_CELL, TXTDB_BENCH_ROWS, TXTDB_BENCH_MODES, TXTDB_BENCH_PROCS,
// TXTDB_BENCH_CLIENTS and TXTDB_BENCH_FILL to change the cells.
func TestTable(t *testing.T) {
	if os.Getenv(tableEnv) == "" {
		t.Skipf("set %s=1 (make bench) to run the txtdb/SQLite table", tableEnv)
	}
	rc := runConfig{
		cell:     envDuration(t, cellEnv, 3*time.Second),
		counting: probeSyncCounting(),
		fill:     envInt(t, fillEnv, defaultFill),
	}
	specs := tableSpecs(t)
	cond := runConditions{cell: rc.cell, fill: rc.fill, counting: rc.counting, machine: describeMachine(t.TempDir())}
	cond.loadBefore = loadAvg()
	began := time.Now()
	rows := runRows(t, specs, rc)
	cond.loadAfter, cond.took = loadAvg(), time.Since(began)
	fmt.Print(renderTable(rows, cond))
}

// TestCells runs one short cell of each workload on both engines and checks what they did: it
// keeps the table's machinery working (it never looks at a figure).
func TestCells(t *testing.T) {
	specs := []cellSpec{
		{workload: workloadTransfer, level: syncRelaxed, procs: 2, clients: 2},
		{workload: workloadInsert, level: syncFull, procs: 2, clients: 2},
		{workload: workloadRead, level: syncRelaxed, procs: 2, clients: 1},
		{workload: workloadTableInsertRandom, level: syncRelaxed, procs: 2, clients: 2},
		{workload: workloadTableInsertIncreasing, level: syncFull, procs: 2, clients: 2},
		{workload: workloadTableGetKey, level: syncRelaxed, procs: 2, clients: 1},
		{workload: workloadTableGetUnique, level: syncRelaxed, procs: 2, clients: 1},
		{workload: workloadTableRange, level: syncRelaxed, procs: 2, clients: 1},
	}
	counting := probeSyncCounting()
	rc := runConfig{cell: 300 * time.Millisecond, counting: counting, fill: 1500}
	rows := runRows(t, specs, rc)
	for _, r := range rows {
		for _, res := range []cellResult{r.txtdb, r.sqlite} {
			require.True(t, res.ok(), "%v: %s", r.spec, checkCell(res))
			require.NotEmpty(t, res.lats, "%v", r.spec)
			require.NotZero(t, res.commits(), "%v", r.spec)
		}
		if counting.perf != "" && r.spec.level == syncFull {
			require.Positive(t, r.txtdb.sysSyncs, "%v: perf counted no txtdb syncs", r.spec)
			require.Positive(t, r.sqlite.sysSyncs, "%v: perf counted no SQLite syncs", r.spec)
		}
	}
	t.Log(renderTable(rows, runConditions{cell: rc.cell, fill: rc.fill, counting: counting}))
}

// runConfig is what every cell of a run shares.
type runConfig struct {
	cell     time.Duration // how long a cell runs
	counting syncCounting
	fill     int // records pre-filled for the table workloads
}

// runRows runs each spec on txtdb, then on SQLite, as subtests.
func runRows(t *testing.T, specs []cellSpec, rc runConfig) []tableRow {
	// engine and "accounts" or "records" -> a closed store fresh from setup or setupTable,
	// copied for each cell
	templates := map[string]string{}
	var rows []tableRow
	for _, spec := range specs {
		row := tableRow{spec: spec}
		for _, eng := range []string{"txtdb", "sqlite"} {
			kind := "accounts"
			if isTableWorkload(spec.workload) {
				kind = "records"
			}
			tmpl := eng + "/" + kind
			if templates[tmpl] == "" {
				e, err := newEngine(eng, syncFull)
				require.NoError(t, err)
				templates[tmpl] = t.TempDir()
				began := time.Now()
				if kind == "records" {
					e.setupTable(t, templates[tmpl], rc.fill)
				} else {
					e.setup(t, templates[tmpl])
				}
				fmt.Fprintf(os.Stderr, "%s: %s set up in %v\n", eng, kind, time.Since(began).Round(time.Millisecond))
			}
			var r cellResult
			name := fmt.Sprintf("engine=%s/%v", eng, spec)
			t.Run(name, func(t *testing.T) { r = runCell(t, eng, spec, rc, templates[tmpl]) })
			if eng == "txtdb" {
				row.txtdb = r
			} else {
				row.sqlite = r
			}
			fmt.Fprintf(os.Stderr, "%s: %.0f/s, check %s\n", name, r.rate(), checkCell(r))
		}
		rows = append(rows, row)
	}
	return rows
}

// workerDone is a worker's "done" and "acks" lines.
type workerDone struct {
	ops, attempts int
	elapsed       time.Duration
	syncs         int64
	acks          []int // operations of each client
}

// runCell runs one engine for one cell in a fresh store, a copy of template (a closed store as
// setup left it), and returns what it measured.
func runCell(t *testing.T, engName string, spec cellSpec, rc runConfig, template string) cellResult {
	eng, err := newEngine(engName, spec.level)
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "store")
	require.NoError(t, copyTree(template, dir))
	outs := t.TempDir()

	workers := make([]*worker, spec.procs)
	pids := make([]int, spec.procs)
	for i := range workers {
		wl, clients := spec.workload, spec.clients
		if isReadCell(spec.workload) {
			clients = 1
			if i > 0 {
				wl = workloadTransfer
				if isTableRead(spec.workload) {
					wl = workloadTableInsertRandom
				}
			}
		}
		workers[i] = startWorker(t, "cell", workerConfig{
			Engine: engName, Sync: spec.level, Dir: dir,
			Workload: wl, Proc: i, Procs: spec.procs, Clients: clients, Cell: rc.cell, Fill: rc.fill,
			Out: filepath.Join(outs, fmt.Sprintf("lat.%d", i)),
		})
		pids[i] = workers[i].cmd.Process.Pid
	}
	for _, w := range workers {
		w.expect(t, "ready")
	}
	r := cellResult{sysSyncs: -1, sysReason: rc.counting.reason, table: isTableWorkload(spec.workload)}
	var sc *syncCount
	if rc.counting.perf != "" {
		sc, err = startSyncCount(rc.counting.perf, pids, outs)
		require.NoError(t, err)
		t.Cleanup(sc.kill)
		require.NoError(t, sc.command("enable"))
	}
	for _, w := range workers {
		w.send(t, "go")
	}
	dones := make([]workerDone, len(workers))
	for i, w := range workers {
		d := &dones[i]
		var elapsed int64
		l := w.expect(t, "done")
		_, err := fmt.Sscanf(l, "%d %d %d %d", &d.ops, &d.attempts, &elapsed, &d.syncs)
		require.NoError(t, err, "worker %d: done line %q", i, l)
		d.elapsed = time.Duration(elapsed)
		for f := range strings.FieldsSeq(w.expect(t, "acks")) {
			n, err := strconv.Atoi(f)
			require.NoError(t, err, "worker %d: acks", i)
			d.acks = append(d.acks, n)
		}
	}
	if sc != nil {
		if pc, err := sc.stop(); err != nil {
			t.Logf("counting sync system calls: %v", err)
			r.sysReason = err.Error()
		} else {
			r.sysSyncs, r.cpu = pc.syncs, pc.cpu
		}
	}
	for _, w := range workers {
		w.send(t, "exit")
	}
	for i, w := range workers {
		lines, err := w.wait(t)
		require.NoError(t, err, "worker %d: %v", i, lines)
	}

	acks := make([][]int, len(dones))
	for i, d := range dones {
		lats, err := readLatencies(filepath.Join(outs, fmt.Sprintf("lat.%d", i)))
		require.NoError(t, err)
		require.Len(t, lats, d.ops, "worker %d: one latency per operation", i)
		require.Equal(t, d.ops, sumInts(d.acks), "worker %d: operations of its clients", i)
		acks[i] = d.acks
		if isReadCell(spec.workload) && i == 0 {
			acks[i] = make([]int, len(d.acks)) // reads, not inserts
		}
		switch {
		case d.syncs < 0 || r.engineSyncs < 0:
			r.engineSyncs = -1
		default:
			r.engineSyncs += d.syncs
		}
		if isReadCell(spec.workload) && i == 0 {
			r.lats, r.elapsed = lats, d.elapsed
			continue
		}
		r.perProc = append(r.perProc, d.ops)
		r.attempts += d.attempts
		r.commitElapsed = max(r.commitElapsed, d.elapsed)
		if !isReadCell(spec.workload) {
			r.lats = append(r.lats, lats...)
			r.elapsed = max(r.elapsed, d.elapsed)
		}
	}
	slices.Sort(r.lats)
	r.ran = true
	switch {
	case r.table:
		seen, bad, problem := eng.records(t, dir)
		r.problem = checkRecords(seen, bad, rc.fill, insertedKeys(spec.workload, acks))
		if problem != "" {
			r.problem = strings.Join(slices.DeleteFunc([]string{problem, r.problem}, func(s string) bool { return s == "" }), "; ")
		}
	default:
		r.accounts, r.sum = eng.total(t, dir)
		if spec.workload == workloadInsert {
			r.problem = checkJobs(eng.jobs(t, dir), acks)
		}
	}
	if !r.ok() {
		t.Errorf("after the cell: %s", checkCell(r))
	}
	return r
}

// copyTree copies the directory from, with its files and folders, to a new directory to.
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(dst, info.Mode().Perm())
		case d.Type().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(dst, b, info.Mode().Perm())
		}
		return fmt.Errorf("copy %s: not a file or folder", path)
	})
}

// checkJobs compares the jobs in a store with the acknowledged ones (acks[p][c]: client c of
// process p had jobs 0 to acks[p][c]-1 acknowledged) and says what is wrong, "" if nothing.
func checkJobs(seen map[jobKey]int, acks [][]int) string {
	missing, dup, extra := 0, 0, 0
	for p, cs := range acks {
		for c, n := range cs {
			for s := range n {
				switch k := seen[jobKey{p, c, s}]; {
				case k == 0:
					missing++
				case k > 1:
					dup += k - 1
				}
			}
		}
	}
	for k, n := range seen {
		if k.proc < 0 || k.proc >= len(acks) || k.client < 0 || k.client >= len(acks[k.proc]) ||
			k.seq < 0 || k.seq >= acks[k.proc][k.client] {
			extra += n
		}
	}
	if missing == 0 && dup == 0 && extra == 0 {
		return ""
	}
	return fmt.Sprintf("%d acknowledged jobs missing, %d extra copies, %d jobs never acknowledged", missing, dup, extra)
}

func TestCheckJobs(t *testing.T) {
	acks := [][]int{{2}, {1, 0}} // process 0: jobs 0 and 1 of client 0; process 1: job 0 of client 0
	all := map[jobKey]int{{0, 0, 0}: 1, {0, 0, 1}: 1, {1, 0, 0}: 1}
	require.Empty(t, checkJobs(all, acks))
	for _, c := range []struct {
		name string
		edit func(map[jobKey]int)
		want string
	}{
		{"missing", func(m map[jobKey]int) { delete(m, jobKey{0, 0, 1}) }, "1 acknowledged jobs missing, 0 extra copies, 0 jobs never acknowledged"},
		{"twice", func(m map[jobKey]int) { m[jobKey{1, 0, 0}] = 2 }, "0 acknowledged jobs missing, 1 extra copies, 0 jobs never acknowledged"},
		{"unacknowledged", func(m map[jobKey]int) { m[jobKey{1, 1, 0}] = 1 }, "0 acknowledged jobs missing, 0 extra copies, 1 jobs never acknowledged"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := maps.Clone(all)
			c.edit(m)
			require.Equal(t, c.want, checkJobs(m, acks))
		})
	}
}
