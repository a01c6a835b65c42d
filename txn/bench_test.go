package txn

import (
	"context"
	"fmt"
	"math/rand/v2"
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
