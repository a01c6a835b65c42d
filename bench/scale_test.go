package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/table"
)

// Knobs of TestScale, the test of "cost does not grow with the table".
const (
	scaleEnv    = "TXTDB_BENCH_SCALE"     // comma-separated table sizes, e.g. 1000,1000000; set to run TestScale
	scaleOpsEnv = "TXTDB_BENCH_SCALE_OPS" // operations per measured phase (default 2000; ranges: a tenth)
	scaleDirEnv = "TXTDB_BENCH_SCALE_DIR" // a folder to keep the filled stores in (reused, and a fill resumed, by the next run)
)

// scaleInsertProc is the process number of the scale worker's random keys, which no cell uses.
const scaleInsertProc = 4000

// scaleFillOptions are the txtdb options of the process that fills a table: a bulk load's
// settings, a larger page cache and no checkpointed log kept (a version whose segment is gone is
// read from its page file), so that a million records fill sooner. With the defaults a fill
// measured to 150,000 records settled at about 15 s per 10,000 from 120,000 on; before superseded
// versions left the page cache and an evicted version was read from its own op rather than the
// whole record, it slowed without bound (100,000 records took 14.5 minutes). The measuring
// process uses the defaults.
func scaleFillOptions() *txtdb.Options {
	return &txtdb.Options{NoSync: true, CacheSize: 512 << 20, LogRetention: -1, SegmentSize: 8 << 20}
}

// scaleFillGC is the garbage collector's GOGC while a table fills: with the default, marking a
// heap of half a gigabyte of small objects took a third of the fill's CPU.
const scaleFillGC = 400

// scaleFillMemory is the soft memory limit of the filling process (debug.SetMemoryLimit), so that
// scaleFillGC does not let its heap grow to several gigabytes.
const scaleFillMemory = 2 << 30

// scalePhases are the measured phases of a scale worker, in order.
var scalePhases = []string{"get by key, first", "get by key", "get by unique index", "range of about 1,000", "insert, random keys", "insert, increasing keys"}

// scalePhase is what one phase measured: its operations' latencies and, for txtdb, the pages
// they read (reads from the handle's page cache, hits and misses, ReadPage and PeekPage alike)
// and loaded (the misses: a page file or a log record read).
type scalePhase struct {
	name         string
	ops          int
	total        time.Duration
	p50, p99     time.Duration
	reads, loads int64 // -1: not counted (SQLite)
	rows         int64 // ranges: rows returned
}

// scaleResult is one engine at one table size.
type scaleResult struct {
	engine          string
	size            int
	fill, fillClose time.Duration // the fill's inserts, and closing the handle after them
	resumed         bool          // the fill was interrupted and finished by a later run
	diskBytes       int64
	files           int
	ready           time.Duration // the parent's clock: process start to its store opened
	open            time.Duration // the worker's Open
	rssOpen         int64         // bytes, after Open
	rssEnd, hwm     int64         // bytes, after the phases; peak
	closeTook       time.Duration // the worker's Close (txtdb: its last checkpoint)
	phases          []scalePhase
	check           time.Duration // the engine's check of the whole table afterwards
	problem         string
}

// TestScale fills a table to each size in TXTDB_BENCH_SCALE, on txtdb and on SQLite, and
// measures in a fresh process: Open, point gets by key and by the unique index, ranges of about
// 1,000 rows and inserts, with (txtdb) the pages each operation read and loaded, and the
// process's RSS. It prints one markdown table, the sizes side by side. It fails if a check
// fails, never on a figure. The fill inserts fillBatch records per transaction in random key
// order, with scaleFillOptions (txtdb: NoSync among them) and synchronous=NORMAL (SQLite).
//
//	cd bench && TXTDB_BENCH_SCALE=1000,1000000 go test -run '^TestScale$' -count=1 -timeout 3h -v
func TestScale(t *testing.T) {
	if os.Getenv(scaleEnv) == "" {
		t.Skipf("set %s=1000,1000000 (make bench-scale) to fill tables to those sizes", scaleEnv)
	}
	sizes := envInts(t, scaleEnv, nil)
	ops := envInt(t, scaleOpsEnv, 2000)
	cond := runConditions{machine: describeMachine(t.TempDir()), loadBefore: loadAvg()}
	began := time.Now()
	var results []scaleResult
	for _, n := range sizes {
		for _, eng := range []string{"txtdb", "sqlite"} {
			t.Run(fmt.Sprintf("engine=%s/rows=%d", eng, n), func(t *testing.T) {
				r := runScale(t, eng, n, ops)
				results = append(results, r)
				require.Empty(t, r.problem)
			})
		}
	}
	cond.loadAfter, cond.took = loadAvg(), time.Since(began)
	fmt.Print(renderScale(results, sizes, ops, cond))
}

// runScale fills a table of n records, measures it in a worker process and checks it.
func runScale(t *testing.T, eng string, n, ops int) scaleResult {
	r := scaleResult{engine: eng, size: n}
	dir := t.TempDir()
	if base := os.Getenv(scaleDirEnv); base != "" {
		// Fill (or finish filling) the store kept in base, and measure a copy of it.
		kept := filepath.Join(base, fmt.Sprintf("%s-%d", eng, n))
		r.fill, r.fillClose, r.resumed = fillScale(t, eng, kept, n)
		dir = filepath.Join(dir, "store")
		require.NoError(t, copyTree(kept, dir))
	} else {
		r.fill, r.fillClose, r.resumed = fillScale(t, eng, dir, n)
	}
	var err error
	r.diskBytes, r.files, err = dirUsage(dir)
	require.NoError(t, err)

	start := time.Now()
	w := startWorker(t, "scale", workerConfig{Engine: eng, Sync: syncRelaxed, Dir: dir, Fill: n, N: ops})
	var open, rss int64
	_, err = fmt.Sscanf(w.expect(t, "opened"), "%d %d", &open, &rss)
	require.NoError(t, err)
	r.ready, r.open, r.rssOpen = time.Since(start), time.Duration(open), rss
	for range scalePhases {
		l := w.expect(t, "phase")
		name, rest, ok := strings.Cut(l, ";")
		require.True(t, ok, "phase line %q", l)
		p := scalePhase{name: name}
		var total, p50, p99 int64
		_, err := fmt.Sscanf(strings.TrimSpace(rest), "%d %d %d %d %d %d %d", &p.ops, &total, &p50, &p99, &p.reads, &p.loads, &p.rows)
		require.NoError(t, err, "phase line %q", l)
		p.total, p.p50, p.p99 = time.Duration(total), time.Duration(p50), time.Duration(p99)
		r.phases = append(r.phases, p)
	}
	_, err = fmt.Sscanf(w.expect(t, "mem"), "%d %d", &r.rssEnd, &r.hwm)
	require.NoError(t, err)
	var closeTook int64
	_, err = fmt.Sscanf(w.expect(t, "closed"), "%d", &closeTook)
	require.NoError(t, err)
	r.closeTook = time.Duration(closeTook)
	lines, err := w.wait(t)
	require.NoError(t, err, "worker: %v", lines)

	began := time.Now()
	e, err := newEngine(eng, syncRelaxed)
	require.NoError(t, err)
	want := n + 2*ops // the fill and both insert phases
	seen, bad, problem := e.records(t, dir)
	r.check = time.Since(began)
	switch {
	case problem != "":
		r.problem = problem
	case len(bad) > 0:
		r.problem = fmt.Sprintf("%d wrong records (first: %s)", len(bad), bad[0])
	case len(seen) != want:
		r.problem = fmt.Sprintf("%d records, want %d", len(seen), want)
	}
	fmt.Fprintf(os.Stderr, "%s, %d records: filled in %v, checked in %v: %s\n", eng, n, r.fill.Round(time.Millisecond), r.check.Round(time.Millisecond), cmpOr(r.problem, "ok"))
	return r
}

// fillScale fills the records table in dir to n records, fillBatch to a transaction in the
// order of fillKey, and returns how long the inserts and then closing the handle took. A store
// that a fill interrupted is filled on from the records it holds (resumed; its time is that of
// the earlier runs as far as they recorded it, plus this one's); a store filled before is left as
// it is, and the times of its fill are returned.
func fillScale(t *testing.T, eng, dir string, n int) (fill, closeTook time.Duration, resumed bool) {
	ctx := context.Background()
	marker, progressFile := dir+".filled", dir+".progress"
	if b, err := os.ReadFile(marker); err == nil {
		var f, c int64
		_, err := fmt.Sscanf(string(b), "%d %d %t", &f, &c, &resumed)
		require.NoError(t, err, "%s", marker)
		fmt.Fprintf(os.Stderr, "%s: %d records filled before, in %v\n", eng, n, time.Duration(f).Round(time.Second))
		return time.Duration(f), time.Duration(c), resumed
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	var before time.Duration // the earlier runs' fill time
	if b, err := os.ReadFile(progressFile); err == nil {
		var rows, ns int64
		if _, err := fmt.Sscanf(string(b), "%d %d", &rows, &ns); err == nil {
			before = time.Duration(ns)
		}
	}
	began := time.Now()
	chunk := func(from int, fillTo func(from, to int) error) {
		for i := from; i < n; i += fillBatch * 10 {
			to := min(i+fillBatch*10, n)
			require.NoError(t, fillTo(i, to))
			elapsed := before + time.Since(began)
			require.NoError(t, os.WriteFile(progressFile, fmt.Appendf(nil, "%d %d\n", to, int64(elapsed)), 0o644))
			if to%100_000 == 0 || to == n {
				fmt.Fprintf(os.Stderr, "%s: %d records filled in %v\n", eng, to, elapsed.Round(time.Second))
			}
		}
	}
	var closed time.Time
	switch eng {
	case "txtdb":
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(scaleFillMemory))
		defer debug.SetGCPercent(debug.SetGCPercent(scaleFillGC))
		db, err := txtdb.Open(dir, scaleFillOptions())
		require.NoError(t, err)
		from := 0
		err = db.View(ctx, func(tx *txtdb.Tx) error {
			c, err := records.Count(tx)
			if errors.Is(err, txtdb.ErrNamespaceNotFound) || errors.Is(err, table.ErrNotTable) { // not created yet
				return nil
			}
			from = c
			return err
		})
		require.NoError(t, err)
		resumed = from > 0
		chunk(from, func(i, to int) error { return fillTxtdb(ctx, db, i, to) })
		fill, closed = before+time.Since(began), time.Now()
		require.NoError(t, db.Close())
	case "sqlite":
		db, err := sqliteOpen(dir, "NORMAL")
		require.NoError(t, err)
		from := 0
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+recordsNS).Scan(&from); err != nil {
			from = 0 // no table yet
		}
		resumed = from > 0
		chunk(from, func(i, to int) error { return fillSQLite(ctx, db, i, to) })
		fill, closed = before+time.Since(began), time.Now()
		require.NoError(t, db.Close())
	}
	closeTook = time.Since(closed)
	require.NoError(t, os.WriteFile(marker, fmt.Appendf(nil, "%d %d %t\n", int64(fill), int64(closeTook), resumed), 0o644))
	return fill, closeTook, resumed
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// scaleRole is the worker side of TestScale: it opens the store of cfg.Fill records, prints
//
//	opened <open-ns> <rss-bytes>
//	phase <name>; <ops> <total-ns> <p50-ns> <p99-ns> <page reads> <page loads> <rows>   (one per phase)
//	mem <rss-bytes> <peak-rss-bytes>
//	closed <close-ns>
//
// with cfg.N operations per phase (ranges: a tenth of them), and exits.
func scaleRole(cfg workerConfig, out io.Writer) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), longStop)
	defer cancel()
	eng, err := newEngine(cfg.Engine, cfg.Sync)
	if err != nil {
		return err
	}
	began := time.Now()
	st, err := eng.open(ctx, cfg.Dir, workloadTableGetKey)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	open := time.Since(began)
	closed := false
	defer func() {
		if !closed {
			_ = st.Close()
		}
	}()
	rss, _ := procMemory()
	if _, err := fmt.Fprintln(out, "opened", int64(open), rss); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Fill), 7))
	span := int64(keyMask / uint64(cfg.Fill) * rangeRows) // the key span of about rangeRows pre-filled records
	seq := 0
	for _, name := range scalePhases {
		n := cfg.N
		var op func() (rows int, err error)
		switch name {
		case "get by key, first", "get by key":
			op = func() (int, error) {
				k := fillKey(rng.IntN(cfg.Fill))
				r, err := st.getRecord(ctx, k)
				if err == nil && r.check(k) != "" {
					err = fmt.Errorf("%s", r.check(k))
				}
				return 1, err
			}
		case "get by unique index":
			op = func() (int, error) {
				k := fillKey(rng.IntN(cfg.Fill))
				r, err := st.getRecordByEmail(ctx, emailOf(k))
				if err == nil && r.check(k) != "" {
					err = fmt.Errorf("%s", r.check(k))
				}
				return 1, err
			}
		case "range of about 1,000":
			n = max(cfg.N/10, 1)
			op = func() (int, error) {
				lo := fillKey(rng.IntN(cfg.Fill))
				hi := lo + span // below 2^63: lo < 2^62 and span <= 2^62
				rs, err := st.rangeRecords(ctx, lo, hi)
				if err == nil && !slices.IsSortedFunc(rs, func(a, b record) int { return int(cmpInt64(a.ID, b.ID)) }) {
					err = fmt.Errorf("range [%d, %d) out of order", lo, hi)
				}
				return len(rs), err
			}
		case "insert, random keys", "insert, increasing keys":
			op = func() (int, error) {
				k := randomKey(scaleInsertProc, 0, seq)
				if name == "insert, increasing keys" {
					k = increasingKey(0, 0, seq, 1, 1)
				}
				seq++
				_, err := st.insertRecord(ctx, newRecord(k))
				return 1, err
			}
		}
		if name == "insert, increasing keys" {
			seq = 0
		}
		reads0, loads0 := pageCounts(st)
		lats := make([]time.Duration, 0, n)
		var rows int64
		phaseStart := time.Now()
		for range n {
			t0 := time.Now()
			k, err := op()
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			lats = append(lats, time.Since(t0))
			rows += int64(k)
		}
		total := time.Since(phaseStart)
		reads1, loads1 := pageCounts(st)
		reads, loads := int64(-1), int64(-1)
		if reads0 >= 0 {
			reads, loads = reads1-reads0, loads1-loads0
		}
		slices.Sort(lats)
		if _, err := fmt.Fprintf(out, "phase %s; %d %d %d %d %d %d %d\n", name, n, int64(total),
			int64(percentile(lats, 0.5)), int64(percentile(lats, 0.99)), reads, loads, rows); err != nil {
			return err
		}
	}
	rss, hwm := procMemory()
	if _, err := fmt.Fprintln(out, "mem", rss, hwm); err != nil {
		return err
	}
	began = time.Now()
	closed = true
	if err := st.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	_, err = fmt.Fprintln(out, "closed", int64(time.Since(began)))
	return err
}

func cmpInt64(a, b int64) int64 {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// pageCounts returns the page reads and loads of st's handle so far (txtdb: Stats.CacheHits +
// CacheMisses, and CacheMisses), or -1, -1 when the engine counts none.
func pageCounts(st store) (reads, loads int64) {
	if s, ok := st.(txtdbStore); ok {
		x := s.db.Stats()
		return x.CacheHits + x.CacheMisses, x.CacheMisses
	}
	return -1, -1
}

// procMemory returns this process's resident set size and its peak, in bytes (-1 where
// /proc/self/status does not tell).
func procMemory() (rss, hwm int64) {
	rss, hwm = -1, -1
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return rss, hwm
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			hwm = n << 10
		}
	}
	return rss, hwm
}

// dirUsage returns the bytes and the number of the regular files under dir.
func dirUsage(dir string) (bytes int64, files int, err error) {
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		bytes += info.Size()
		files++
		return nil
	})
	return bytes, files, err
}

// renderScale formats results as one markdown table: a column per engine and size, and the
// ratio of the largest size to the smallest for each engine.
func renderScale(results []scaleResult, sizes []int, ops int, c runConditions) string {
	at := map[string]scaleResult{}
	for _, r := range results {
		at[fmt.Sprintf("%s/%d", r.engine, r.size)] = r
	}
	lo, hi := slices.Min(sizes), slices.Max(sizes)
	var cols []string
	header := "\n|"
	for _, eng := range []string{"txtdb", "sqlite"} {
		name := map[string]string{"txtdb": "txtdb", "sqlite": "SQLite"}[eng]
		for _, n := range sizes {
			cols = append(cols, fmt.Sprintf("%s/%d", eng, n))
			header += fmt.Sprintf(" | %s %s rows", name, thousands(int64(n)))
		}
		if lo != hi {
			cols = append(cols, eng+"/ratio")
			header += fmt.Sprintf(" | %s %s/%s", name, short(hi), short(lo))
		}
	}
	var sb strings.Builder
	sb.WriteString(header + " |\n|" + strings.Repeat("---|", len(cols)+1) + "\n")
	row := func(label string, cell func(r scaleResult) (string, float64)) {
		sb.WriteString("| " + label)
		for _, col := range cols {
			eng, what, _ := strings.Cut(col, "/")
			if what == "ratio" {
				a, okA := at[fmt.Sprintf("%s/%d", eng, lo)]
				b, okB := at[fmt.Sprintf("%s/%d", eng, hi)]
				ratio := "n/a"
				if okA && okB {
					_, x := cell(a)
					_, y := cell(b)
					if x > 0 && y >= 0 {
						ratio = fmt.Sprintf("%.2f", y/x)
					}
				}
				sb.WriteString(" | " + ratio)
				continue
			}
			r, ok := at[col]
			s := "n/a"
			if ok {
				s, _ = cell(r)
			}
			sb.WriteString(" | " + s)
		}
		sb.WriteString(" |\n")
	}
	row("fill (s), rows/s", func(r scaleResult) (string, float64) {
		rate := float64(r.size) / r.fill.Seconds()
		s := fmt.Sprintf("%.1f, %s/s", r.fill.Seconds(), thousands(int64(rate)))
		if r.resumed {
			s += " (resumed)"
		}
		return s, rate
	})
	row("close after the fill (s)", func(r scaleResult) (string, float64) {
		return fmt.Sprintf("%.1f", r.fillClose.Seconds()), r.fillClose.Seconds()
	})
	row("store on disk (MB, files)", func(r scaleResult) (string, float64) {
		mb := float64(r.diskBytes) / 1e6
		return fmt.Sprintf("%.1f, %s", mb, thousands(int64(r.files))), mb
	})
	row("fresh process: Open (ms)", func(r scaleResult) (string, float64) { return ms(r.open), float64(r.open) })
	row("fresh process: start to opened (ms)", func(r scaleResult) (string, float64) { return ms(r.ready), float64(r.ready) })
	row("RSS after Open (MB)", func(r scaleResult) (string, float64) { return mbCell(r.rssOpen) })
	for i, name := range scalePhases {
		phase := func(r scaleResult) (scalePhase, bool) {
			if i < len(r.phases) {
				return r.phases[i], true
			}
			return scalePhase{}, false
		}
		row(name+": µs/op mean, p50 / p99", func(r scaleResult) (string, float64) {
			p, ok := phase(r)
			if !ok || p.ops == 0 {
				return "n/a", -1
			}
			mean := micros(p.total) / float64(p.ops)
			return fmt.Sprintf("%.0f, %.0f / %.0f", mean, micros(p.p50), micros(p.p99)), mean
		})
		row(name+": pages read (loaded) per op", func(r scaleResult) (string, float64) {
			p, ok := phase(r)
			if !ok || p.reads < 0 || p.ops == 0 {
				return "n/a", -1
			}
			reads := float64(p.reads) / float64(p.ops)
			return fmt.Sprintf("%.1f (%.2f)", reads, float64(p.loads)/float64(p.ops)), reads
		})
		if strings.HasPrefix(name, "range") {
			row(name+": rows per range", func(r scaleResult) (string, float64) {
				p, ok := phase(r)
				if !ok || p.ops == 0 {
					return "n/a", -1
				}
				v := float64(p.rows) / float64(p.ops)
				return fmt.Sprintf("%.0f", v), v
			})
		}
	}
	row("RSS after the phases, peak (MB)", func(r scaleResult) (string, float64) {
		s, v := mbCell(r.rssEnd)
		p, _ := mbCell(r.hwm)
		return s + ", " + p, v
	})
	row("Close after the phases (ms)", func(r scaleResult) (string, float64) { return ms(r.closeTook), float64(r.closeTook) })
	row("check of the whole table (s)", func(r scaleResult) (string, float64) {
		return fmt.Sprintf("%.1f", r.check.Seconds()), r.check.Seconds()
	})
	row("check", func(r scaleResult) (string, float64) { return cmpOr(r.problem, "ok"), -1 })

	fmt.Fprintf(&sb, "\nThe records table of `make bench-tables` (int64 key, unique e-mail index), filled to each size in random key order, %s records per transaction "+
		"(txtdb NoSync, a 512 MiB page cache, no checkpointed log kept, GOGC=400 in the filling process; SQLite synchronous=NORMAL; the fill time is the inserts' alone, closing the handle is the next row), then measured in a fresh process, which opens the store and runs each phase in turn: "+
		"%s gets by key of random pre-filled records (the first pass, then another), %s by the unique index, %s ranges from a random pre-filled key over the key span of about 1,000 records, "+
		"%s inserts of random and of increasing keys, one per transaction (txtdb NoSync, SQLite synchronous=NORMAL: the fsync is the same at every size and left out).\n",
		thousands(fillBatch), thousands(int64(ops)), thousands(int64(ops)), thousands(int64(max(ops/10, 1))), thousands(int64(ops)))
	sb.WriteString("- pages read per op: txtdb's page cache reads (Stats.CacheHits + CacheMisses: every ReadPage, ReadPageKey and PeekPage of a node), " +
		"and in parentheses the loads (CacheMisses: a page file or log record read from disk), over the phase; SQLite counts none here.\n")
	sb.WriteString("- RSS: VmRSS and VmHWM of the worker process. Check: txtdb table.Check and a scan of every record; SQLite PRAGMA integrity_check and a scan; " +
		"every record right and the count the fill and the inserts made.\n")
	if c.machine != "" {
		fmt.Fprintf(&sb, "\n%s; load average %s before, %s after; run took %v.\n", c.machine, c.loadBefore, c.loadAfter, c.took.Round(time.Second))
	}
	return sb.String()
}

// short names a table size: 1k, 1M.
func short(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1_000 && n%1_000 == 0:
		return strconv.Itoa(n/1_000) + "k"
	}
	return strconv.Itoa(n)
}

func mbCell(b int64) (string, float64) {
	if b < 0 {
		return "n/a", -1
	}
	v := float64(b) / (1 << 20)
	return fmt.Sprintf("%.0f", v), v
}

// TestScaleSmall runs the scale machinery on two small tables (it never looks at a figure).
func TestScaleSmall(t *testing.T) {
	var results []scaleResult
	for _, n := range []int{1200, 2500} {
		for _, eng := range []string{"txtdb", "sqlite"} {
			r := runScale(t, eng, n, 40)
			require.Empty(t, r.problem, "%s at %d", eng, n)
			require.Len(t, r.phases, len(scalePhases))
			results = append(results, r)
		}
	}
	t.Log(renderScale(results, []int{1200, 2500}, 40, runConditions{}))

	// A fill cut short is finished from the records the store holds.
	for _, eng := range []string{"txtdb", "sqlite"} {
		dir := filepath.Join(t.TempDir(), "kept")
		_, _, resumed := fillScale(t, eng, dir, 1200)
		require.False(t, resumed)
		require.NoError(t, os.Remove(dir+".filled"))
		_, _, resumed = fillScale(t, eng, dir, 2500)
		require.True(t, resumed, eng)
		e, err := newEngine(eng, syncRelaxed)
		require.NoError(t, err)
		seen, bad, problem := e.records(t, dir)
		require.Empty(t, problem, eng)
		require.Empty(t, bad, eng)
		require.Empty(t, checkRecords(seen, nil, 2500, nil), eng)
	}
}
