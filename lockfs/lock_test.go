package lockfs

import (
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// requireNoEntry fails the test if the registry still has state for l: every hold, wait and
// attempt has let go of it.
func requireNoEntry(tb testing.TB, l *Lock) {
	tb.Helper()
	registry.mu.Lock()
	e := registry.entries[l.key]
	registry.mu.Unlock()
	require.Nil(tb, e, "registry entry for %s after every hold ended", l.key)
}

// queued reports how many goroutines wait for admission to l.
func queued(l *Lock) int {
	e := lookup(l.key)
	defer e.unref()
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.queue)
}

func TestNew(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rel, err := filepath.Rel(mustGetwd(t), filepath.Join(dir, "x", "..", "lock"))
	require.NoError(t, err)
	l := New(rel, 0)
	require.Equal(t, rel, l.Path())
	require.Equal(t, filepath.Join(dir, "lock"), l.key)
	require.Equal(t, New(filepath.Join(dir, "lock"), 0o600).key, l.key, "one key for two spellings of a path")
	_, err = os.Stat(filepath.Join(dir, "lock"))
	require.ErrorIs(t, err, fs.ErrNotExist, "New must not touch the disk")

	for _, tc := range []struct {
		perm, want os.FileMode
	}{
		{0, 0o644},
		{0o600, 0o600},
		{0o640, 0o640},
	} {
		path := filepath.Join(dir, "lock"+tc.perm.String())
		unlock, err := New(path, tc.perm).Lock(context.Background())
		require.NoError(t, err)
		require.NoError(t, unlock())
		fi, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, tc.want&^umask, fi.Mode().Perm(), "mode of a lock file made with perm %v", tc.perm)
	}
}

func mustGetwd(tb testing.TB) string {
	tb.Helper()
	wd, err := os.Getwd()
	require.NoError(tb, err)
	return wd
}

func TestExclusionInProcess(t *testing.T) {
	t.Parallel()
	const goroutines, rounds = 8, 200
	path := filepath.Join(t.TempDir(), "lock")
	counter := 0 // guarded by the lock; the race detector checks that
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for range goroutines {
		wg.Go(func() {
			l := New(path, 0) // a Lock value of its own
			for range rounds {
				unlock, err := l.Lock(context.Background())
				if err != nil {
					errs <- err
					return
				}
				counter++
				if err := unlock(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, goroutines*rounds, counter)
	requireNoEntry(t, New(path, 0))
}

func TestTryLockInProcess(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "lock")
	holder, other := New(path, 0), New(path, 0)

	held := make(chan func() error)
	go func() {
		unlock, err := holder.Lock(context.Background())
		if err != nil {
			close(held)
			return
		}
		held <- unlock
	}()
	unlock, ok := <-held
	require.True(t, ok, "holder Lock failed")

	for _, try := range []func() (func() error, bool, error){other.TryLock, other.TryRLock, holder.TryLock} {
		u, ok, err := try()
		require.NoError(t, err)
		require.False(t, ok, "Try* while another goroutine holds the exclusive lock")
		require.Nil(t, u)
	}
	require.NoError(t, unlock())

	u, ok, err := other.TryLock()
	require.NoError(t, err)
	require.True(t, ok, "TryLock after the holder released")
	require.NoError(t, u())
	requireNoEntry(t, other)
}

func TestSharedInProcess(t *testing.T) {
	t.Parallel()
	l := newTestLock(t)
	ctx, cancel := context.WithTimeout(context.Background(), longStop)
	defer cancel()

	r1, err := l.RLock(ctx)
	require.NoError(t, err)
	r2, err := New(l.Path(), 0).RLock(ctx) // while r1 holds
	require.NoError(t, err)
	e := lookup(l.key)
	e.mu.Lock()
	refs, m := e.heldRefs, e.heldMode
	e.mu.Unlock()
	e.unref()
	require.Equal(t, 2, refs, "shared holders of the one shared flock")
	require.Equal(t, shared, m)

	_, ok, err := l.TryLock()
	require.NoError(t, err)
	require.False(t, ok, "TryLock while two goroutines hold the shared lock")

	// A writer waits for the readers; readers that come after it wait for it.
	werrs, wunlocks := lockAsync(ctx, l, exclusive)
	require.Eventually(t, func() bool { return queued(l) == 1 }, longStop, time.Millisecond)
	_, ok, err = l.TryRLock()
	require.NoError(t, err)
	require.False(t, ok, "TryRLock while a writer waits before it")
	rerrs, runlocks := lockAsync(ctx, l, shared)
	require.Eventually(t, func() bool { return queued(l) == 2 }, longStop, time.Millisecond)

	require.NoError(t, r1())
	require.NoError(t, r2())
	require.NoError(t, waitFor(t, werrs, "writer"))
	select {
	case err := <-rerrs:
		t.Fatalf("reader behind the writer returned (%v) while the writer holds the lock", err)
	default:
	}
	require.NoError(t, (<-wunlocks)())
	require.NoError(t, waitFor(t, rerrs, "reader behind the writer"))
	require.NoError(t, (<-runlocks)())
	requireNoEntry(t, l)
}

func TestWaitEndsInProcess(t *testing.T) {
	t.Parallel()
	l := newTestLock(t)
	unlock, err := l.Lock(context.Background())
	require.NoError(t, err)

	for _, m := range []mode{exclusive, shared} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		u, err := lockMode(ctx, l, m)
		cancel()
		require.Nil(t, u)
		require.ErrorIs(t, err, ErrLockTimeout, "%v lock", m)
		require.ErrorIs(t, err, context.DeadlineExceeded, "%v lock", m)

		ctx, cancel = context.WithCancel(context.Background())
		errs, _ := lockAsync(ctx, l, m)
		require.Eventually(t, func() bool { return queued(l) == 1 }, longStop, time.Millisecond)
		cancel()
		err = waitFor(t, errs, "cancelled waiter")
		require.ErrorIs(t, err, context.Canceled, "%v lock", m)
		require.NotErrorIs(t, err, ErrLockTimeout, "%v lock", m)
		require.Equal(t, 0, queued(l), "queue after the waiter gave up")
	}

	// A context that has ended already fails even on a free lock.
	require.NoError(t, unlock())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = l.Lock(ctx)
	require.ErrorIs(t, err, context.Canceled)
	requireNoEntry(t, l)
}

func TestUnlockTwice(t *testing.T) {
	t.Parallel()
	l := newTestLock(t)
	for _, m := range []mode{exclusive, shared} {
		// For a shared hold, another shared holder that the extra unlocks must not release.
		var other func() error
		if m == shared {
			var err error
			other, err = New(l.Path(), 0).RLock(context.Background())
			require.NoError(t, err)
		}
		unlock, err := lockMode(context.Background(), l, m)
		require.NoError(t, err)

		var wg sync.WaitGroup
		var errs [2]error
		for i := range errs {
			wg.Go(func() { errs[i] = unlock() })
		}
		wg.Wait()
		nils := 0
		for _, err := range errs {
			if err == nil {
				nils++
			} else {
				require.ErrorIs(t, err, ErrClosed)
			}
		}
		require.Equal(t, 1, nils, "unlocks that released the %v lock: errors %v", m, errs)
		require.ErrorIs(t, unlock(), ErrClosed)

		if other != nil {
			_, ok, err := l.TryLock()
			require.NoError(t, err)
			require.False(t, ok, "TryLock while the other shared holder holds")
			require.NoError(t, other())
		}
		u, ok, err := l.TryLock()
		require.NoError(t, err)
		require.True(t, ok, "TryLock after every hold was released")
		require.NoError(t, u())
	}
	requireNoEntry(t, l)
}

func TestUnlockTwiceExclusiveThenShared(t *testing.T) {
	t.Parallel()
	// The second unlock of an exclusive hold must not release somebody else's later hold.
	l := newTestLock(t)
	unlock, err := l.Lock(context.Background())
	require.NoError(t, err)
	require.NoError(t, unlock())
	again, err := l.Lock(context.Background())
	require.NoError(t, err)
	require.ErrorIs(t, unlock(), ErrClosed)
	_, ok, err := l.TryRLock()
	require.NoError(t, err)
	require.False(t, ok, "a stale unlock released a later hold")
	require.NoError(t, again())
}

func TestLockFileError(t *testing.T) {
	t.Parallel()
	l := New(filepath.Join(t.TempDir(), "missing", "lock"), 0)
	_, err := l.Lock(context.Background())
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.NotErrorIs(t, err, ErrLockTimeout)
	_, err = l.RLock(context.Background())
	require.ErrorIs(t, err, fs.ErrNotExist)
	_, ok, err := l.TryLock()
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.False(t, ok)
	requireNoEntry(t, l)
}

// TestMixedInProcess runs readers and writers on one lock and checks, with counters that the
// holders change, that a writer is always alone.
func TestMixedInProcess(t *testing.T) {
	t.Parallel()
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	path := filepath.Join(t.TempDir(), "lock")
	rounds := 300
	if testing.Short() {
		rounds = 100
	}
	var readers, writers atomic.Int32
	value := 0 // guarded by the lock
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for g := range 6 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			l := New(path, 0)
			for range rounds {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(2000))*time.Microsecond)
				var unlock func() error
				var err error
				write := rng.IntN(3) == 0
				try := rng.IntN(4) == 0
				switch {
				case write && try:
					var ok bool
					if unlock, ok, err = l.TryLock(); !ok && err == nil {
						cancel()
						continue
					}
				case write:
					unlock, err = l.Lock(ctx)
				case try:
					var ok bool
					if unlock, ok, err = l.TryRLock(); !ok && err == nil {
						cancel()
						continue
					}
				default:
					unlock, err = l.RLock(ctx)
				}
				cancel()
				if err != nil {
					if !errors.Is(err, ErrLockTimeout) {
						errs <- err.Error()
					}
					continue
				}
				if write {
					if w := writers.Add(1); w != 1 || readers.Load() != 0 {
						errs <- "writer not alone"
					}
					value++
					writers.Add(-1)
				} else {
					if readers.Add(1); writers.Load() != 0 {
						errs <- "reader beside a writer"
					}
					_ = value
					readers.Add(-1)
				}
				if err := unlock(); err != nil {
					errs <- err.Error()
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	requireNoEntry(t, New(path, 0))
}

// The whole suite again with every lock retained (kept descriptors, one flock(2) per acquisition
// and release), in this test binary re-executed with retainEnv set; its helpers inherit it.
func TestSuiteRetained(t *testing.T) {
	if testRetainAll {
		t.Skip("already retained")
	}
	args := []string{"-test.count=1", "-test.skip=^TestSuiteRetained$"}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), retainEnv+"=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "suite with retained locks:\n%s", out)
}

// A retained lock keeps one descriptor of its file, used for every acquisition, and closes it
// when the last Retain is released and nobody holds the lock.
func TestRetainKeepsOneDescriptor(t *testing.T) {
	l := New(filepath.Join(t.TempDir(), "lock"), 0)
	release := l.Retain()
	for i := 0; i < 3; i++ {
		unlock, err := l.Lock(context.Background())
		require.NoError(t, err)
		require.Equal(t, 1, openDescriptors(t, l.key), "descriptors of the lock file while held")
		require.NoError(t, unlock())
		require.Equal(t, 1, openDescriptors(t, l.key), "descriptors of the lock file between holds")
	}
	unlock, err := l.Lock(context.Background())
	require.NoError(t, err)
	release()
	release() // idempotent
	require.Equal(t, 1, openDescriptors(t, l.key), "still held: the descriptor stays")
	require.NoError(t, unlock())
	require.Equal(t, 0, openDescriptors(t, l.key), "released and unlocked: closed")
	requireNoEntry(t, l)
}

// openDescriptors counts this process's descriptors open on path.
func openDescriptors(t *testing.T, path string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("needs /proc/self/fd:", err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == path {
			n++
		}
	}
	return n
}
