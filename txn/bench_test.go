package txn

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

const benchAccounts = 1000

// setupAccounts creates namespace "acct" with benchAccounts pages holding 1000 each.
func setupAccounts(tb testing.TB, dir string) {
	tb.Helper()
	db := mustOpen(tb, dir, Config{OneObjectPerPage: true})
	_, _, err := update(context.Background(), db, func(tx *Tx) error {
		if err := tx.CreateNamespace("acct"); err != nil {
			return err
		}
		for i := 0; i < benchAccounts; i++ {
			if _, err := tx.Insert("acct", 1000); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(tb, err)
	require.NoError(tb, db.Close())
}

// transfer moves 1 between two random accounts: the read-modify-write workload.
func transfer(ctx context.Context, db *DB, rng *rand.Rand) (int, error) {
	a := 1 + rng.IntN(benchAccounts)
	b := 1 + rng.IntN(benchAccounts-1)
	if b >= a {
		b++
	}
	_, attempts, err := update(ctx, db, func(tx *Tx) error {
		ida, idb := pages.PageID(uint64(a)), pages.PageID(uint64(b))
		va, err := readInt(tx, "acct", ida)
		if err != nil {
			return err
		}
		vb, err := readInt(tx, "acct", idb)
		if err != nil {
			return err
		}
		if err := tx.UpdatePage("acct", ida, va-1); err != nil {
			return err
		}
		return tx.UpdatePage("acct", idb, vb+1)
	})
	return attempts, err
}

type latencies []time.Duration

func (l latencies) pct(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkCommitRMW: one process, G goroutines doing transfers.
func BenchmarkCommitRMW(b *testing.B) {
	for _, g := range []int{1, 4} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			dir := b.TempDir()
			setupAccounts(b, dir)
			db := mustOpen(b, dir, Config{})
			var (
				mu   sync.Mutex
				lats latencies
				next = make(chan struct{})
				wg   sync.WaitGroup
			)
			before := db.Stats()
			for w := 0; w < g; w++ {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 1))
					var mine latencies
					for range next {
						start := time.Now()
						if _, err := transfer(context.Background(), db, rng); err != nil {
							b.Error(err)
						}
						mine = append(mine, time.Since(start))
					}
					mu.Lock()
					lats = append(lats, mine...)
					mu.Unlock()
				})
			}
			for b.Loop() {
				next <- struct{}{}
			}
			close(next)
			wg.Wait()
			s := db.Stats()
			commits := float64(s.Commits - before.Commits)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			b.ReportMetric(float64(lats.pct(0.50).Microseconds()), "p50-µs")
			b.ReportMetric(float64(lats.pct(0.99).Microseconds()), "p99-µs")
			b.ReportMetric(float64(s.Fsyncs-before.Fsyncs)/commits, "fsyncs/commit")
			b.ReportMetric(commits/float64(s.Groups-before.Groups), "commits/group")
		})
	}
}

// BenchmarkCommitRMWProcesses: P processes doing transfers on one store; b.N is split among them.
func BenchmarkCommitRMWProcesses(b *testing.B) {
	for _, p := range []int{1, 4} {
		b.Run(fmt.Sprintf("procs=%d", p), func(b *testing.B) {
			dir := b.TempDir()
			setupAccounts(b, dir)
			var kids []*child
			for i := 0; i < p; i++ {
				n := b.N / p
				if i < b.N%p {
					n++
				}
				kids = append(kids, startChild(b, "rmw", configEnv(b, childConfig{Dir: dir, N: n})))
			}
			for _, k := range kids {
				k.expect(b, "ready")
			}
			b.ResetTimer()
			for _, k := range kids {
				k.send(b, "go")
			}
			var p50s, p99s []float64
			var commits, groups, fsyncs, attempts float64
			for _, k := range kids {
				lines, err := k.all(b)
				require.NoError(b, err, "child: %v", tail(lines))
				for _, l := range lines {
					var a, c, g, f, p50, p99 float64
					if _, err := fmt.Sscanf(l, "done %g %g %g %g %g %g", &a, &c, &g, &f, &p50, &p99); err == nil {
						attempts += a
						commits += c
						groups += g
						fsyncs += f
						p50s = append(p50s, p50)
						p99s = append(p99s, p99)
					}
				}
			}
			b.StopTimer()
			require.Len(b, p50s, p, "every child reports")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			b.ReportMetric(slices.Max(p50s), "p50-µs-worst")
			b.ReportMetric(slices.Max(p99s), "p99-µs-worst")
			b.ReportMetric(fsyncs/commits, "fsyncs/commit")
			b.ReportMetric(commits/groups, "commits/group")
			b.ReportMetric(attempts/float64(b.N), "attempts/commit")
		})
	}
}

// rmwRole is the child side of BenchmarkCommitRMWProcesses: waits for "go", runs N transfers,
// prints "done <attempts> <commits> <groups> <fsyncs> <p50µs> <p99µs>".
func rmwRole(db *DB, n int, stdin func() string) int {
	rng := rand.New(rand.NewPCG(rand.Uint64(), 2))
	if !strings.HasPrefix(stdin(), "go") {
		return 2
	}
	var lats latencies
	attempts := 0
	for i := 0; i < n; i++ {
		start := time.Now()
		a, err := transfer(context.Background(), db, rng)
		if err != nil {
			fmt.Println("error", err)
			return 3
		}
		attempts += a
		lats = append(lats, time.Since(start))
	}
	s := db.Stats()
	fmt.Println("done", attempts, s.Commits, s.Groups, s.Fsyncs, lats.pct(0.5).Microseconds(), lats.pct(0.99).Microseconds())
	return 0
}

// syncModes are the two sync settings of the hot-path benchmarks: the default (fdatasync of the
// log at commit) and NoSync.
var syncModes = []struct {
	name   string
	noSync bool
}{{"sync=fdatasync", false}, {"sync=none", true}}

// BenchmarkBegin: Begin and Rollback on an idle store (no other handle commits), read-only and
// writable.
func BenchmarkBegin(b *testing.B) {
	for _, writable := range []bool{false, true} {
		b.Run(map[bool]string{false: "read", true: "write"}[writable], func(b *testing.B) {
			dir := b.TempDir()
			setupAccounts(b, dir)
			db := mustOpen(b, dir, Config{})
			ctx := context.Background()
			for b.Loop() {
				tx, err := db.Begin(ctx, writable)
				if err != nil {
					b.Fatal(err)
				}
				if err := tx.Rollback(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "begins/s")
		})
	}
}

// BenchmarkReadUnchanged: a read-only transaction reading one page that nobody changed since
// this handle cached it (Begin, ReadPage, Rollback): the point read.
func BenchmarkReadUnchanged(b *testing.B) {
	dir := b.TempDir()
	setupAccounts(b, dir)
	db := mustOpen(b, dir, Config{})
	ctx := context.Background()
	page := pages.PageID(1)
	read := func() {
		err := view(ctx, db, func(tx *Tx) error {
			_, err := readInt(tx, "acct", page)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	read() // cache it
	hits := db.Stats().CacheHits
	for b.Loop() {
		read()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
	b.ReportMetric(float64(db.Stats().CacheHits-hits)/float64(b.N), "cache-hits/read")
}

// BenchmarkCommit2Pages: one goroutine, one handle, a read-modify-write of the same two pages
// per commit (Begin, 2 ReadPage, 2 UpdatePage, Commit), with and without the log fsync.
func BenchmarkCommit2Pages(b *testing.B) {
	for _, m := range syncModes {
		b.Run(m.name, func(b *testing.B) {
			dir := b.TempDir()
			setupAccounts(b, dir)
			db := mustOpen(b, dir, Config{NoSync: m.noSync})
			ctx := context.Background()
			p1, p2 := pages.PageID(1), pages.PageID(2)
			before := db.Stats()
			for b.Loop() {
				_, _, err := update(ctx, db, func(tx *Tx) error {
					v1, err := readInt(tx, "acct", p1)
					if err != nil {
						return err
					}
					v2, err := readInt(tx, "acct", p2)
					if err != nil {
						return err
					}
					if err := tx.UpdatePage("acct", p1, v1-1); err != nil {
						return err
					}
					return tx.UpdatePage("acct", p2, v2+1)
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			s := db.Stats()
			commits := float64(s.Commits - before.Commits)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			b.ReportMetric(float64(s.Fsyncs-before.Fsyncs)/commits, "fsyncs/commit")
		})
	}
}

// BenchmarkInsert: one goroutine, one handle, one small object inserted per commit into one
// namespace (the job queue), without the log fsync: inserts pack many objects to a page, so
// each lands in a page that already holds up to a page's worth of them.
func BenchmarkInsert(b *testing.B) {
	dir := b.TempDir()
	db := mustOpen(b, dir, Config{NoSync: true, CheckpointEvery: time.Hour})
	ctx := context.Background()
	if _, _, err := update(ctx, db, func(tx *Tx) error { return tx.CreateNamespace("jobs") }); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		_, _, err := update(ctx, db, func(tx *Tx) error {
			_, err := tx.Insert("jobs", map[string]int{"job": i})
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}

// BenchmarkCommitHandoff: two committers on one store commit 2-page writes to pages of their own
// at the same time, so the commit lock passes between them and each commit first catches up the
// other's record. procs=2 runs them in two processes (b.N split between them; the waiter blocks
// in flock(2)); handles=2 runs two handles in this process, which share lockfs's in-process
// entry for the lock file (the waiter queues in-process, then takes the flock uncontended).
// handoffs/commit is the share of commits whose predecessor in TSN order came from the other
// committer.
func BenchmarkCommitHandoff(b *testing.B) {
	for _, m := range syncModes {
		b.Run("procs=2/"+m.name, func(b *testing.B) { benchHandoffProcs(b, m.noSync) })
	}
	for _, m := range syncModes {
		b.Run("handles=2/"+m.name, func(b *testing.B) { benchHandoffHandles(b, m.noSync) })
	}
}

func benchHandoffProcs(b *testing.B, noSync bool) {
	dir := b.TempDir()
	setupAccounts(b, dir)
	var kids []*child
	for i := range 2 {
		n := b.N / 2
		if i < b.N%2 {
			n++
		}
		kids = append(kids, startChild(b, "handoff", configEnv(b, childConfig{Dir: dir, N: n, NoSync: noSync, Own: i})))
	}
	for _, k := range kids {
		k.expect(b, "ready")
	}
	b.ResetTimer()
	for _, k := range kids {
		k.send(b, "go")
	}
	var commits, fsyncs, handoffs float64
	reported := 0
	for _, k := range kids {
		lines, err := k.all(b)
		require.NoError(b, err, "child: %v", tail(lines))
		for _, l := range lines {
			var c, f, h float64
			if _, err := fmt.Sscanf(l, "done %g %g %g", &c, &f, &h); err == nil {
				commits += c
				fsyncs += f
				handoffs += h
				reported++
			}
		}
	}
	b.StopTimer()
	require.Equal(b, 2, reported, "every child reports")
	b.ReportMetric(commits/b.Elapsed().Seconds(), "commits/s")
	b.ReportMetric(fsyncs/commits, "fsyncs/commit")
	b.ReportMetric(handoffs/commits, "handoffs/commit")
}

// handoffRole is the child side of BenchmarkCommitHandoff/procs=2: waits for "go", runs n
// 2-page writes to its own pages, prints "done <commits> <fsyncs> <handoffs>", handoffs being
// its commits whose TSN does not follow its own previous commit's.
func handoffRole(db *DB, own, n int, stdin func() string) int {
	if !strings.HasPrefix(stdin(), "go") {
		return 2
	}
	before := db.Stats()
	var last pages.TSN
	handoffs := 0
	for range n {
		tsn, err := bumpOwn(db, own)
		if err != nil {
			fmt.Println("error", err)
			return 3
		}
		if tsn != last+1 {
			handoffs++
		}
		last = tsn
	}
	s := db.Stats()
	fmt.Println("done", s.Commits-before.Commits, s.Fsyncs-before.Fsyncs, handoffs)
	return 0
}

// bumpOwn adds 1 to pages 2*own+1 and 2*own+2 of "acct" in one transaction and returns its TSN.
func bumpOwn(db *DB, own int) (pages.TSN, error) {
	tsn, _, err := update(context.Background(), db, func(tx *Tx) error {
		for _, p := range []string{pages.PageID(uint64(2*own + 1)), pages.PageID(uint64(2*own + 2))} {
			v, err := readInt(tx, "acct", p)
			if err != nil {
				return err
			}
			if err := tx.UpdatePage("acct", p, v+1); err != nil {
				return err
			}
		}
		return nil
	})
	return tsn, err
}

func benchHandoffHandles(b *testing.B, noSync bool) {
	dir := b.TempDir()
	setupAccounts(b, dir)
	dbs := []*DB{mustOpen(b, dir, Config{NoSync: noSync}), mustOpen(b, dir, Config{NoSync: noSync})}
	var befores []Stats
	for _, db := range dbs {
		befores = append(befores, db.Stats())
	}
	next := make(chan struct{})
	tsns := make([][]pages.TSN, len(dbs))
	var wg sync.WaitGroup
	for h, db := range dbs {
		wg.Go(func() {
			for range next {
				tsn, err := bumpOwn(db, h)
				if err != nil {
					b.Error(err)
					continue
				}
				tsns[h] = append(tsns[h], tsn)
			}
		})
	}
	for b.Loop() {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	var commits, fsyncs float64
	for h, db := range dbs {
		s := db.Stats()
		commits += float64(s.Commits - befores[h].Commits)
		fsyncs += float64(s.Fsyncs - befores[h].Fsyncs)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	b.ReportMetric(fsyncs/commits, "fsyncs/commit")
	b.ReportMetric(handoffShare(tsns), "handoffs/commit")
}

// handoffShare returns the share of the commits in tsns (each handle's commit TSNs) whose
// predecessor in TSN order is another handle's.
func handoffShare(tsns [][]pages.TSN) float64 {
	type commit struct {
		tsn    pages.TSN
		handle int
	}
	var all []commit
	for h, l := range tsns {
		for _, t := range l {
			all = append(all, commit{t, h})
		}
	}
	if len(all) < 2 {
		return 0
	}
	slices.SortFunc(all, func(a, b commit) int { return cmp.Compare(a.tsn, b.tsn) })
	n := 0
	for i := 1; i < len(all); i++ {
		if all[i].handle != all[i-1].handle {
			n++
		}
	}
	return float64(n) / float64(len(all)-1)
}

// BenchmarkCatchUp: a handle's Begin applies records another handle committed (what every Begin
// of a process does for the other processes' commits): per op, a writer handle commits
// catchUpBatch transfers with the timer stopped, then the reader's Begin and Rollback run timed.
// ns/record and allocs/record are per applied record.
func BenchmarkCatchUp(b *testing.B) {
	const catchUpBatch = 8
	dir := b.TempDir()
	setupAccounts(b, dir)
	w := mustOpen(b, dir, Config{NoSync: true, NoOffer: true})
	r := mustOpen(b, dir, Config{NoSync: true, NoOffer: true})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	begin := func() {
		tx, err := r.Begin(ctx, false)
		if err != nil {
			b.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			b.Fatal(err)
		}
	}
	begin()
	var ms0, ms1 runtime.MemStats
	var mallocs uint64
	for b.Loop() {
		b.StopTimer()
		for range catchUpBatch {
			if _, err := transfer(ctx, w, rng); err != nil {
				b.Fatal(err)
			}
		}
		runtime.ReadMemStats(&ms0)
		b.StartTimer()
		begin()
		b.StopTimer()
		runtime.ReadMemStats(&ms1)
		mallocs += ms1.Mallocs - ms0.Mallocs
		b.StartTimer()
	}
	recs := float64(b.N * catchUpBatch)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/recs, "ns/record")
	b.ReportMetric(float64(mallocs)/recs, "allocs/record")
}
