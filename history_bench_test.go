// This file is in package txtdb_test, not txtdb like the other root tests, so that the compiler
// holds it to the public API: it must stay valid while the engine under it is rewritten.
package txtdb_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb"
)

// Environment variables of BenchmarkOpenHistory.
const (
	// envBenchStores names a directory where built stores are kept across runs. Unset: every run
	// builds its stores in b.TempDir().
	envBenchStores = "TXTDB_BENCH_STORES"
	// envBenchLarge=1 enables the sizes that take minutes to build.
	envBenchLarge = "TXTDB_BENCH_LARGE"
)

// historyStoreVersion is part of a cached store's name. Bump it when the build recipe below or the
// engine's on-disk layout changes, so that stale cached stores are built again instead of reused.
const historyStoreVersion = 4

const (
	historyNS       = "bench"
	historyPages    = 10_000
	historyInsertTx = 1_000 // inserts per transaction while filling the namespace
	historyWorkers  = 4     // goroutines committing updates in parallel (group commit)
)

// historyObj is the one object on every page of a history store.
type historyObj struct {
	K int `json:"k"`
	V int `json:"v"`
}

// historyStore is a built store: the data directory and what the benchmark needs to know about it.
// It is also the content of the marker file, written last.
type historyStore struct {
	Dir      string        `json:"-"`
	Commits  int           `json:"commits"`   // update commits after the namespace was filled
	ReadPage string        `json:"read_page"` // a page the benchmark reads first
	Build    time.Duration `json:"build_ns"`  // how long building took
}

// BenchmarkOpenHistory measures what opening a store costs as its history grows: every iteration
// opens a store of historyPages pages that has had N update commits, reads one page, and closes.
// open-ms is Open alone, first-read-ms the first View with its ReadPage, heap-MB the live heap with
// the store open after that read, above the heap before Open.
//
// Stores are built once per run, or once for all runs with TXTDB_BENCH_STORES=<dir>. Opening
// writes nothing permanent in steady state, so iterations reuse one store.
func BenchmarkOpenHistory(b *testing.B) {
	sizes := []struct {
		name    string
		commits int
		large   bool // minutes to build: only with TXTDB_BENCH_LARGE=1
	}{
		{"1k", 1_000, false},
		{"10k", 10_000, false},
		{"100k", 100_000, false},
		{"1M", 1_000_000, true},
	}
	for _, sz := range sizes {
		b.Run("commits="+sz.name, func(b *testing.B) {
			if sz.large && os.Getenv(envBenchLarge) != "1" {
				b.Skipf("builds a store with %d commits for minutes; set %s=1 to run it", sz.commits, envBenchLarge)
			}
			st := historyStoreFor(b, sz.commits)
			b.Logf("store %s: %d commits, built in %v", st.Dir, st.Commits, st.Build.Round(time.Millisecond))
			benchOpen(b, st)
		})
	}
}

// benchOpen is the timed loop of BenchmarkOpenHistory on one store.
func benchOpen(b *testing.B, st historyStore) {
	ctx := context.Background()
	var openT, readT time.Duration
	var heap float64
	var ms runtime.MemStats
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		base := ms.HeapInuse
		b.StartTimer()

		start := time.Now()
		db, err := txtdb.Open(st.Dir, nil)
		opened := time.Now()
		if err != nil {
			b.Fatalf("Open(%q) = %v", st.Dir, err)
		}
		err = db.View(ctx, func(tx *txtdb.Tx) error {
			objs, err := tx.ReadPage(historyNS, st.ReadPage)
			if err == nil && len(objs) != 1 {
				err = fmt.Errorf("%d objects, want 1", len(objs))
			}
			return err
		})
		read := time.Now()
		if err != nil {
			b.Fatalf("ReadPage(%q, %q) = %v", historyNS, st.ReadPage, err)
		}
		openT += opened.Sub(start)
		readT += read.Sub(opened)

		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		heap += (float64(ms.HeapInuse) - float64(base)) / (1 << 20)
		b.StartTimer()

		if err := db.Close(); err != nil {
			b.Fatalf("Close() = %v", err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(openT)/1e6/n, "open-ms")
	b.ReportMetric(float64(readT)/1e6/n, "first-read-ms")
	b.ReportMetric(heap/n, "heap-MB")
}

// historyStoreFor returns a store with the given number of update commits: the cached one under
// TXTDB_BENCH_STORES if its marker file says it was built completely, otherwise a new one (in
// b.TempDir() when the variable is unset). The build is not timed.
func historyStoreFor(b *testing.B, commits int) historyStore {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()

	root := os.Getenv(envBenchStores)
	if root == "" {
		root = b.TempDir()
	}
	base := filepath.Join(root, fmt.Sprintf("history-v%d-commits=%d", historyStoreVersion, commits))
	marker := filepath.Join(base, "built.json")
	if st, err := readHistoryMarker(marker); err == nil {
		st.Dir = filepath.Join(base, "db")
		return st
	} else if !errors.Is(err, fs.ErrNotExist) {
		b.Logf("rebuilding %s: %v", base, err)
	}
	// No marker: nothing, or a build that did not finish. Start over.
	require.NoError(b, os.RemoveAll(base))
	require.NoError(b, os.MkdirAll(base, 0o755))
	b.Logf("building %s (%d pages, %d update commits)", base, historyPages, commits)
	st := buildHistoryStore(b, filepath.Join(base, "db"), commits)
	writeHistoryMarker(b, marker, st)
	return st
}

// buildHistoryStore creates a JSON store in dir with historyPages one-object pages in historyNS,
// then commits the given number of updates, each incrementing one random page.
func buildHistoryStore(b *testing.B, dir string, commits int) historyStore {
	b.Helper()
	ctx := context.Background()
	start := time.Now()

	db, err := txtdb.Open(dir, &txtdb.Options{Format: txtdb.JSON, OneObjectPerPage: true, NoSync: true})
	require.NoError(b, err)
	ids := make([]string, 0, historyPages)
	require.NoError(b, db.Update(ctx, func(tx *txtdb.Tx) error { return tx.CreateNamespace(historyNS) }))
	for len(ids) < historyPages {
		var batch []string
		err := db.Update(ctx, func(tx *txtdb.Tx) error {
			batch = batch[:0] // Update may run fn again
			for i := len(ids); i < min(len(ids)+historyInsertTx, historyPages); i++ {
				id, err := tx.Insert(historyNS, historyObj{K: i})
				if err != nil {
					return err
				}
				batch = append(batch, id)
			}
			return nil
		})
		require.NoError(b, err)
		ids = append(ids, batch...)
	}

	// All but the last update without fsync, from several goroutines so that they share groups.
	var (
		next atomic.Int64 // updates handed out
		wg   sync.WaitGroup
		errs = make([]error, historyWorkers)
	)
	for w := range historyWorkers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(commits), uint64(w)))
			for next.Add(1) < int64(commits) {
				if err := incrementPage(ctx, db, ids[rng.IntN(len(ids))]); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(b, errors.Join(errs...))
	require.NoError(b, db.Close())

	// The last update with sync on: it fsyncs the log, so the cached store survives a power cut,
	// and the benchmark opens a store whose last commit was synced, as its handles do.
	db, err = txtdb.Open(dir, &txtdb.Options{OneObjectPerPage: true})
	require.NoError(b, err)
	require.NoError(b, incrementPage(ctx, db, ids[0]))
	require.NoError(b, db.Checkpoint(ctx))
	require.NoError(b, db.Close())

	return historyStore{Dir: dir, Commits: commits, ReadPage: ids[len(ids)/2], Build: time.Since(start)}
}

// incrementPage commits one update: page id's v+1.
func incrementPage(ctx context.Context, db *txtdb.DB, id string) error {
	return db.Update(ctx, func(tx *txtdb.Tx) error {
		objs, err := tx.ReadPage(historyNS, id)
		if err != nil {
			return err
		}
		if len(objs) != 1 {
			return fmt.Errorf("page %s: %d objects, want 1", id, len(objs))
		}
		var o historyObj
		if err := objs[0].Decode(&o); err != nil {
			return fmt.Errorf("page %s: %w", id, err)
		}
		o.V++
		return tx.UpdatePage(historyNS, id, o)
	})
}

// readHistoryMarker reads the marker file of a completely built store.
func readHistoryMarker(path string) (historyStore, error) {
	var st historyStore
	data, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("marker %s: %w", path, err)
	}
	if st.ReadPage == "" {
		return st, fmt.Errorf("marker %s: no read_page", path)
	}
	return st, nil
}

// writeHistoryMarker publishes the marker file: temp file, fsync, rename, fsync the directory.
func writeHistoryMarker(b *testing.B, path string, st historyStore) {
	b.Helper()
	data, err := json.Marshal(st)
	require.NoError(b, err)
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	require.NoError(b, err)
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	require.NoError(b, errors.Join(err, f.Close()))
	require.NoError(b, os.Rename(tmp, path))
	d, err := os.Open(filepath.Dir(path))
	require.NoError(b, err)
	require.NoError(b, errors.Join(d.Sync(), d.Close()))
}
