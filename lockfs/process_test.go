package lockfs

import (
	"bufio"
	"context"
	"github.com/gofrs/flock"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// newTestLock returns a Lock on a fresh lock file path in its own temporary directory.
func newTestLock(tb testing.TB) *Lock {
	tb.Helper()
	return New(filepath.Join(tb.TempDir(), "lock"), 0)
}

// lockAsync takes l in mode m in a goroutine and delivers the error, and on success first the
// unlock func.
func lockAsync(ctx context.Context, l *Lock, m mode) (<-chan error, <-chan func() error) {
	errs := make(chan error, 1)
	unlocks := make(chan func() error, 1)
	go func() {
		unlock, err := lockMode(ctx, l, m)
		if err == nil {
			unlocks <- unlock
		}
		errs <- err
	}()
	return errs, unlocks
}

func TestKilledHolderReleasesAtOnce(t *testing.T) {
	t.Parallel()
	l := newTestLock(t)
	holder := startHelper(t, "hold", l, exclusive)
	holder.expect("locked")
	_, ok, err := l.TryLock()
	require.NoError(t, err)
	require.False(t, ok, "TryLock while another process holds the lock")

	// Two waiters: a goroutine of this process, and another process.
	parked := watchBlocked(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs, unlocks := lockAsync(ctx, l, exclusive)
	waitFor(t, parked, "waiter blocking in flock(2)")
	other := startHelper(t, "acquire", l, exclusive, timeoutEnv+"=10s")

	holder.kill()

	require.NoError(t, waitFor(t, errs, "this process's waiter"))
	unlock := <-unlocks
	require.NoError(t, unlock())
	other.expect("locked")
	other.expect("released")
	other.wait()
}

func TestCounterAcrossProcesses(t *testing.T) {
	t.Parallel()
	counterAcrossProcesses(t, 0, true)
}

// Processes that try a held lock again before they wait (SetSpin) still exclude each other: no
// increment is lost. (Fairness is not asserted: see SetSpin.)
func TestCounterAcrossSpinningProcesses(t *testing.T) {
	t.Parallel()
	counterAcrossProcesses(t, 32, false)
}

// counterAcrossProcesses has 8 processes increment a counter file under the lock, each with spin
// tries (Lock.SetSpin), and checks that the counter is exact and, if fair, that the fewest
// increments of a process while all contend are at least half the most.
func counterAcrossProcesses(t *testing.T, spin int, fair bool) {
	const procs, target = 8, 1600
	l := newTestLock(t)
	file := filepath.Join(t.TempDir(), "counter")
	helpers := make([]*proc, procs)
	for i := range helpers {
		helpers[i] = startHelper(t, "counter", l, exclusive,
			fileEnv+"="+file, targetEnv+"="+strconv.Itoa(target), spinEnv+"="+strconv.Itoa(spin))
	}
	for _, h := range helpers {
		h.expect("ready")
	}
	for _, h := range helpers {
		h.send("go")
	}
	counts := make([]int, procs)
	values := make([][]int, procs) // the counter values each process wrote, in order
	total := 0
	for i, h := range helpers {
		line := h.next()
		fields := strings.Fields(line)
		require.True(t, len(fields) >= 2 && fields[0] == "done", "helper %d said %q, want done <n> <values>", i, line)
		c, err := strconv.Atoi(fields[1])
		require.NoError(t, err)
		counts[i] = c
		total += c
		if len(fields) > 2 {
			for _, v := range strings.Split(fields[2], ",") {
				n, err := strconv.Atoi(v)
				require.NoError(t, err)
				values[i] = append(values[i], n)
			}
		}
		require.Len(t, values[i], c, "helper %d", i)
		h.wait()
	}
	t.Logf("increments per process: %v", counts)
	got, err := readCounter(file)
	require.NoError(t, err)
	require.Equal(t, target, got, "counter file")
	require.Equal(t, target, total, "sum of increments")
	// Fairness among processes that contend: from the moment the last one got the lock for the
	// first time (the helpers are told to go one after another, so the first ones start alone)
	// to the end, every process is in the race.
	start := 0
	for i := range values {
		require.NotEmpty(t, values[i], "helper %d never got the lock", i)
		start = max(start, values[i][0])
	}
	require.LessOrEqual(t, start, target*3/4, "the last process joined at %d of %d: too late to judge fairness", start, target)
	racing := make([]int, procs)
	for i, vs := range values {
		for _, v := range vs {
			if v > start {
				racing[i]++
			}
		}
	}
	t.Logf("increments per process after all joined (counter %d on): %v", start, racing)
	if !fair {
		return
	}
	lo, hi := slices.Min(racing), slices.Max(racing)
	require.GreaterOrEqual(t, 2*lo, hi, "fewest increments %d, most %d while all contend: want fewest >= most/2", lo, hi)
}

// A waiter that tries a held lock again before it waits gives up when its context ends, however
// many tries it was given, and gets the lock once the holder lets go.
func TestSpinningWaiterHonoursDeadline(t *testing.T) {
	t.Parallel()
	l := newTestLock(t)
	l.SetSpin(1 << 30)
	holder := startHelper(t, "hold", l, exclusive)
	holder.expect("locked")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	unlock, err := l.Lock(ctx)
	cancel()
	require.Nil(t, unlock)
	require.ErrorIs(t, err, ErrLockTimeout)
	holder.send("release")
	holder.expect("released")
	l.SetSpin(32)
	ctx, cancel = context.WithTimeout(context.Background(), longStop)
	defer cancel()
	unlock, err = l.Lock(ctx)
	require.NoError(t, err, "Lock after the holder released")
	require.NoError(t, unlock())
}

func TestDeadlineWhileAnotherProcessHolds(t *testing.T) {
	t.Parallel()
	l := newTestLock(t)
	holder := startHelper(t, "hold", l, exclusive)
	holder.expect("locked")

	for _, m := range []mode{exclusive, shared} {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		unlock, err := lockMode(ctx, l, m)
		cancel()
		require.Nil(t, unlock, "%v lock", m)
		require.ErrorIs(t, err, ErrLockTimeout, "%v lock", m)
		require.ErrorIs(t, err, context.DeadlineExceeded, "%v lock", m)
		var te *TimeoutError
		require.ErrorAs(t, err, &te)
		require.Equal(t, l.Path(), te.Path)
		require.Contains(t, te.Error(), l.Path())
		require.Positive(t, te.Waited)
	}

	holder.send("release")
	holder.expect("released")
	ctx, cancel := context.WithTimeout(context.Background(), longStop)
	defer cancel()
	unlock, err := l.Lock(ctx)
	require.NoError(t, err, "Lock after the holder released")
	require.NoError(t, unlock())
}

func TestSharedAcrossProcesses(t *testing.T) {
	t.Parallel()
	l := newTestLock(t)
	// The second holder takes its shared lock while the first holds one: they coexist.
	readers := []*proc{startHelper(t, "hold", l, shared), startHelper(t, "hold", l, shared)}
	for _, r := range readers {
		r.expect("locked")
	}

	_, ok, err := l.TryLock()
	require.NoError(t, err)
	require.False(t, ok, "exclusive TryLock while two processes hold the shared lock")
	writer := startHelper(t, "acquire", l, exclusive, timeoutEnv+"=50ms")
	writer.expect("timeout")
	writer.wait()

	// A third process (this one) shares too.
	unlock, ok, err := l.TryRLock()
	require.NoError(t, err)
	require.True(t, ok, "TryRLock while two processes hold the shared lock")
	require.NoError(t, unlock())

	for _, r := range readers {
		r.send("release")
		r.expect("released")
		r.wait()
	}
	unlock, ok, err = l.TryLock()
	require.NoError(t, err)
	require.True(t, ok, "exclusive TryLock after the shared holders released")
	require.NoError(t, unlock())
}

func TestCancelWhileBlocked(t *testing.T) {
	t.Parallel()
	l := newTestLock(t)
	holder := startHelper(t, "hold", l, exclusive)
	holder.expect("locked")

	parked := watchBlocked(t, l)
	for _, m := range []mode{exclusive, shared} {
		ctx, cancel := context.WithCancel(context.Background())
		errs, _ := lockAsync(ctx, l, m)
		waitFor(t, parked, "waiter blocking in flock(2)")
		cancel()
		err := waitFor(t, errs, "cancelled waiter")
		require.ErrorIs(t, err, context.Canceled, "%v lock", m)
		require.NotErrorIs(t, err, ErrLockTimeout, "%v lock", m)
		require.NotErrorIs(t, err, context.DeadlineExceeded, "%v lock", m)
	}

	// The goroutines the waiters left blocked in flock(2) get the lock when the holder
	// releases it, and must let go of it at once.
	holder.send("release")
	holder.expect("released")
	other := startHelper(t, "acquire", l, exclusive, timeoutEnv+"="+longStop.String())
	other.expect("locked")
	other.expect("released")
	other.wait()

	ctx, cancel := context.WithTimeout(context.Background(), longStop)
	defer cancel()
	unlock, err := l.Lock(ctx)
	require.NoError(t, err, "Lock in this process after the cancelled waits")
	require.NoError(t, unlock())
}

// TestCancelledAttemptIsJoined checks that the next waiter for a lock joins the flock(2)
// attempt a cancelled waiter left behind instead of starting another.
func TestCancelledAttemptIsJoined(t *testing.T) {
	t.Parallel()
	l := newTestLock(t)
	holder := startHelper(t, "hold", l, exclusive)
	holder.expect("locked")

	parked := watchBlocked(t, l)
	ctx1, cancel1 := context.WithCancel(context.Background())
	errs1, _ := lockAsync(ctx1, l, exclusive)
	waitFor(t, parked, "first waiter blocking in flock(2)")
	cancel1()
	require.ErrorIs(t, waitFor(t, errs1, "cancelled waiter"), context.Canceled)

	ctx2, cancel2 := context.WithTimeout(context.Background(), longStop)
	defer cancel2()
	errs2, unlocks2 := lockAsync(ctx2, l, exclusive)
	e := lookup(l.key)
	defer e.unref()
	require.Eventually(t, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		a := e.pending[exclusive]
		return a != nil && a.waiters == 1
	}, longStop, time.Millisecond, "second waiter joining the first one's attempt")
	holder.send("release")
	holder.expect("released")
	require.NoError(t, waitFor(t, errs2, "second waiter"))
	unlock := <-unlocks2
	select {
	case <-parked:
		t.Errorf("a second goroutine blocked in flock(2); want the second waiter to join the first's")
	default:
	}
	require.NoError(t, unlock())
}

// TestSharedWaitersShareOneAttempt checks that goroutines of one process waiting for the
// shared lock wait in one flock(2) and then share one shared file lock.
func TestSharedWaitersShareOneAttempt(t *testing.T) {
	t.Parallel()
	l := newTestLock(t)
	holder := startHelper(t, "hold", l, exclusive)
	holder.expect("locked")

	parked := watchBlocked(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), longStop)
	defer cancel()
	errs1, unlocks1 := lockAsync(ctx, l, shared)
	waitFor(t, parked, "first reader blocking in flock(2)")
	errs2, unlocks2 := lockAsync(ctx, New(l.Path(), 0), shared)
	e := lookup(l.key)
	defer e.unref()
	require.Eventually(t, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		a := e.pending[shared]
		return a != nil && a.waiters == 2
	}, longStop, time.Millisecond, "second reader joining the first one's attempt")

	holder.send("release")
	holder.expect("released")
	require.NoError(t, waitFor(t, errs1, "first reader"))
	require.NoError(t, waitFor(t, errs2, "second reader"))
	e.mu.Lock()
	refs := e.heldRefs
	e.mu.Unlock()
	require.Equal(t, 2, refs, "holders of the one shared flock")
	select {
	case <-parked:
		t.Errorf("a second goroutine blocked in flock(2); want the readers to share one")
	default:
	}
	require.NoError(t, (<-unlocks1)())
	require.NoError(t, (<-unlocks2)())
}

func TestReplacedLockFile(t *testing.T) {
	if testRetainAll {
		t.Skip("a retained lock file is checked once, when its descriptor opens: it must never be replaced")
	}
	if _, err := os.Stat("/proc/locks"); err != nil {
		t.Skip("needs /proc/locks to see a blocked flock(2):", err)
	}
	t.Parallel()
	for _, tc := range []struct {
		name     string
		recreate bool // an outsider re-creates the path (else the path stays unlinked)
		rmdir    bool // and removes the directory: the waiter cannot re-create the file
	}{
		{"replaced", true, false},
		{"unlinked", false, false},
		{"directory removed", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newTestLock(t)
			first := startHelper(t, "hold", l, exclusive)
			first.expect("locked")
			oldIno := inode(t, l.Path())
			// Keep the old file open (unlocked) so that its inode number is not reused.
			keep, err := os.Open(l.Path())
			require.NoError(t, err)
			defer keep.Close()

			ctx, cancel := context.WithTimeout(context.Background(), longStop)
			defer cancel()
			errs, unlocks := lockAsync(ctx, l, exclusive)
			waitBlockedOn(t, oldIno)

			// The outsider: unlink the lock file, re-create it, and hold the new one.
			require.NoError(t, os.Remove(l.Path()))
			if tc.rmdir {
				require.NoError(t, os.Remove(filepath.Dir(l.Path())))
			}
			var second *proc
			if tc.recreate {
				require.NoError(t, os.WriteFile(l.Path(), nil, 0o644))
				second = startHelper(t, "hold", l, exclusive)
				second.expect("locked")
			}

			// The waiter gets the old file's lock, finds the path names another file (or none),
			// drops it and goes for the file the path names.
			first.send("release")
			first.expect("released")
			if tc.recreate {
				waitBlockedOn(t, inode(t, l.Path()))
				second.send("release")
				second.expect("released")
			}
			err = waitFor(t, errs, "waiter")
			if tc.rmdir {
				require.ErrorIs(t, err, fs.ErrNotExist, "lock after the directory was removed")
				requireNoEntry(t, l)
				return
			}
			require.NoError(t, err)
			unlock := <-unlocks

			newIno := inode(t, l.Path())
			require.NotEqual(t, oldIno, newIno)
			e := lookup(l.key)
			e.mu.Lock()
			heldIno := uint64(0)
			if fi, err := e.held.(*flock.Flock).Stat(); err == nil {
				heldIno = fi.Sys().(*syscall.Stat_t).Ino
			}
			e.mu.Unlock()
			e.unref()
			require.Equal(t, newIno, heldIno, "inode of the held lock file")
			probe := startHelper(t, "acquire", l, exclusive, timeoutEnv+"=50ms")
			probe.expect("timeout")
			probe.wait()
			require.NoError(t, unlock())
		})
	}
}

func inode(tb testing.TB, path string) uint64 {
	tb.Helper()
	fi, err := os.Stat(path)
	require.NoError(tb, err)
	return fi.Sys().(*syscall.Stat_t).Ino
}

// waitBlockedOn waits until /proc/locks shows this process blocked in flock(2) on the file
// with inode ino.
func waitBlockedOn(tb testing.TB, ino uint64) {
	tb.Helper()
	pid := strconv.Itoa(os.Getpid())
	suffix := ":" + strconv.FormatUint(ino, 10)
	require.Eventually(tb, func() bool {
		f, err := os.Open("/proc/locks")
		if err != nil {
			return false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// "1: -> FLOCK  ADVISORY  WRITE 7046 fe:00:9977961 0 EOF"
			fields := strings.Fields(sc.Text())
			if len(fields) >= 7 && fields[1] == "->" && fields[2] == "FLOCK" &&
				fields[5] == pid && strings.HasSuffix(fields[6], suffix) {
				return true
			}
		}
		return false
	}, longStop, 2*time.Millisecond, "this process blocked in flock(2) on inode %d", ino)
}

// An attempt on a kept descriptor that every waiter gave up on holds the file lock for a moment
// when it gets it, then releases it. Nothing else of the process may take the lock on that
// descriptor meanwhile: a second flock(2) on the same open file description would "succeed"
// on the attempt's lock, and the attempt's release would then drop the lock under its new
// holder. The attempt is stalled right after flock(2) granted it; TryLock must fail until the
// attempt has let go, and once TryLock holds the lock, another process must not get it.
func TestAbandonedKeptAttemptKeepsExclusion(t *testing.T) {
	l := newTestLock(t)
	release := l.Retain()
	defer release()
	holder := startHelper(t, "hold", l, exclusive)
	holder.expect("locked")

	granted, resume := make(chan struct{}), make(chan struct{})
	testHookLocked = func(key string) {
		if key == l.key {
			close(granted)
			<-resume
		}
	}
	defer func() { testHookLocked = nil }()
	parked := watchBlocked(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	errs, _ := lockAsync(ctx, l, exclusive)
	waitFor(t, parked, "waiter blocking in flock(2) on the kept descriptor")
	cancel()
	require.ErrorIs(t, waitFor(t, errs, "cancelled waiter"), context.Canceled)
	holder.send("release")
	holder.expect("released")
	waitFor(t, granted, "the abandoned attempt granted the lock")

	_, ok, err := l.TryLock()
	require.NoError(t, err)
	require.False(t, ok, "TryLock while an abandoned attempt holds the lock on the kept descriptor")
	close(resume)
	var unlock func() error
	require.Eventually(t, func() bool {
		u, ok, err := l.TryLock()
		unlock = u
		return err == nil && ok
	}, longStop, time.Millisecond, "TryLock after the abandoned attempt let go")
	probe := startHelper(t, "acquire", l, exclusive, timeoutEnv+"=50ms")
	probe.expect("timeout")
	probe.wait()
	require.NoError(t, unlock())
}

// A release whose flock(LOCK_UN) fails (injected by strace into the helper's second flock(2):
// EINTR, which on FUSE a signal can cause for real, and a hard error) must not leave the file
// locked. A kept descriptor stays open, so a lock left on it would exclude every other process
// until this one happened to take and release the lock again (possibly never: an idle process
// keeps the commit lock forever); gofrs/flock keeps a fresh one open too when LOCK_UN fails
// (until the garbage collector closes it), so EINTR is retried there as well.
func TestRetainedReleaseFailureFreesLock(t *testing.T) {
	strace := needStrace(t)
	for _, tc := range []struct {
		name, errno string
		fresh       bool
	}{{"kept/EINTR", "EINTR", false}, {"kept/ENOLCK", "ENOLCK", false}, {"fresh/EINTR", "EINTR", true}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fresh && testRetainAll {
				t.Skip("every lock is retained in this run")
			}
			l := newTestLock(t)
			wrapper := []string{strace, "-f", "-qq", "-o", os.DevNull, "-e", "trace=flock",
				"-e", "inject=flock:error=" + tc.errno + ":when=2"}
			var env []string
			if tc.fresh {
				env = append(env, freshEnv+"=1")
			}
			holder := startHelperUnder(t, wrapper, "retained-hold", l, exclusive, env...)
			if line := holder.next(); line != "locked" {
				t.Skipf("helper under strace said %q (ptrace not permitted?)", line)
			}
			holder.send("release")
			line := holder.next()
			t.Logf("helper: %s", line)
			probe := startHelper(t, "acquire", l, exclusive, timeoutEnv+"=2s")
			require.Equal(t, "locked", probe.next(), "another process takes the lock after the holder released it (holder said %q)", line)
			probe.wait()
			holder.wait()
		})
	}
}

// A non-blocking flock(2) interrupted by a signal (EINTR, injected by strace into the first
// flock(2) of each of the helper's threads) is retried, as the blocking one is: taking a free
// lock does not fail with "interrupted system call" on either kind of descriptor.
func TestTryFlockEINTRRetried(t *testing.T) {
	strace := needStrace(t)
	l := newTestLock(t)
	wrapper := []string{strace, "-f", "-qq", "-o", os.DevNull, "-e", "trace=flock",
		"-e", "inject=flock:error=EINTR:when=1"}
	p := startHelperUnder(t, wrapper, "acquire", l, exclusive, timeoutEnv+"=5s")
	require.Equal(t, "locked", p.next(), "a free lock taken with an interrupted first flock(2)")
	p.wait()
}

func needStrace(t *testing.T) string {
	t.Helper()
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("needs strace for fault injection:", err)
	}
	return strace
}
