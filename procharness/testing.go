package procharness

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/txtdb/txtdb/procharness/history"
)

// SeedEnv names the environment variable that fixes the seed of RunTest and NewTest, to replay
// a failed run's schedule.
const SeedEnv = "TXTDB_SEED"

// TestDeadline bounds a RunTest or NewTest harness unless the test's own deadline is sooner.
const TestDeadline = 5 * time.Minute

// SeedFromEnv returns TXTDB_SEED if it is set (and valid), else a random non-zero seed.
func SeedFromEnv() uint64 {
	if v := os.Getenv(SeedEnv); v != "" {
		if s, err := strconv.ParseUint(v, 10, 64); err == nil && s != 0 {
			return s
		}
	}
	return rand.Uint64() | 1
}

// Fixture is what NewTest sets up for a test: a harness on a fresh directory, a context with
// the test's deadline and a seed.
type Fixture struct {
	*Harness
	Ctx  context.Context
	Seed uint64
	Rand *rand.Rand // seeded with Seed
}

// NewTest returns a harness on a fresh directory for tb. It waits for a heavy-run slot
// (Acquire), logs the seed, and when the test ends kills what still runs, checkpoints the
// directory and fails the test on anything Check finds (Verify), and, if the test failed, keeps the directory and writes the history next to it (both logged with the seed);
// otherwise it removes them.
func NewTest(tb testing.TB) *Fixture {
	tb.Helper()
	seed := SeedFromEnv()
	ctx, cancel := testContext(tb)
	tb.Cleanup(cancel)
	release, err := Acquire(ctx)
	if err != nil {
		tb.Fatalf("procharness: no slot for a heavy test: %v", err)
	}
	tb.Cleanup(release)
	dir := keptDir(tb, seed)
	h, err := New(ctx, Options{Dir: dir, Seed: seed})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		h.KillAll()
		if _, err := os.Stat(dir); err == nil && !tb.Failed() {
			// Every run ends with a checkpoint and Check on the directory.
			vctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			probs, err := h.Verify(vctx)
			if err != nil {
				tb.Errorf("procharness: verify %s at the end of the test: %v", dir, err)
			}
			for _, p := range probs {
				tb.Errorf("procharness: Check at the end of the test: %s", p)
			}
		}
		if tb.Failed() {
			writeHistory(tb, dir, h.History())
		}
	})
	tb.Logf("seed %d (replay: %s=%d)", seed, SeedEnv, seed)
	return &Fixture{Harness: h, Ctx: ctx, Seed: seed, Rand: rand.New(rand.NewPCG(seed, 1))}
}

// RunTest runs cfg as tb's fleet (Dir and Seed filled in as NewTest does) and fails the test
// unless the run completed and its report is OK. It returns the report.
func RunTest(tb testing.TB, cfg Config) *Report {
	tb.Helper()
	if cfg.Seed == 0 {
		cfg.Seed = SeedFromEnv()
	}
	ctx, cancel := testContext(tb)
	defer cancel()
	release, err := Acquire(ctx)
	if err != nil {
		tb.Fatalf("procharness: no slot for a heavy test: %v", err)
	}
	defer release()
	cfg.Dir = keptDir(tb, cfg.Seed)
	if dl, ok := ctx.Deadline(); ok {
		cfg.Deadline = time.Until(dl)
	}
	rep, err := Run(ctx, cfg)
	if rep != nil && rep.History != nil {
		tb.Cleanup(func() {
			if tb.Failed() {
				writeHistory(tb, cfg.Dir, rep.History)
			}
		})
	}
	if err != nil {
		tb.Fatalf("run (seed %d, replay: %s=%d): %v", cfg.Seed, SeedEnv, cfg.Seed, err)
	}
	if !rep.OK() {
		tb.Errorf("run failed (replay: %s=%d):\n%s", SeedEnv, cfg.Seed, rep)
	} else {
		tb.Logf("%s", rep)
	}
	return rep
}

// testContext is bounded by TestDeadline and, a little before it, by the test binary's -timeout.
func testContext(tb testing.TB) (context.Context, context.CancelFunc) {
	deadline := time.Now().Add(TestDeadline)
	if t, ok := tb.(interface{ Deadline() (time.Time, bool) }); ok {
		if d, ok := t.Deadline(); ok && d.Add(-10*time.Second).Before(deadline) {
			deadline = d.Add(-10 * time.Second)
		}
	}
	return context.WithDeadline(context.Background(), deadline)
}

// keptDir makes a data directory that is removed when the test passes and kept (and logged)
// when it fails.
func keptDir(tb testing.TB, seed uint64) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "txtdb-e2e-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("kept the data directory %s (seed %d, replay: %s=%d)", dir, seed, SeedEnv, seed)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return filepath.Join(dir, "data")
}

// writeHistory writes h as JSON lines next to the data directory and logs where.
func writeHistory(tb testing.TB, dataDir string, h *history.History) {
	path := filepath.Join(filepath.Dir(dataDir), "history.jsonl")
	f, err := os.Create(path)
	if err != nil {
		tb.Logf("could not keep the history: %v", err)
		return
	}
	_, err = h.WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		tb.Logf("could not keep the history: %v", err)
		return
	}
	tb.Logf("kept the history (%d lines) in %s", h.Len(), path)
}
