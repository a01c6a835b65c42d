package txn

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/lockfs"
	"github.com/txtdb/txtdb/pages"
)

// Cross-process tests re-exec this test binary with TXN_ROLE set; TestMain runs the role instead
// of the tests. Roles talk to the parent through stdout lines and read commands from stdin.
// A child arms the crash point named in TXTDB_CRASHPOINT (the package itself reads it only when
// built with the txtdb_crashpoints tag), unless TXN_UNARMED is set.
func TestMain(m *testing.M) {
	if role := os.Getenv("TXN_ROLE"); role != "" {
		if os.Getenv("TXN_UNARMED") == "" {
			armCrashFrom(os.Getenv(crashEnv))
		}
		os.Exit(runRole(role))
	}
	os.Exit(m.Run())
}

// longStop bounds every wait in these tests; it is a failure deadline, never a timing assertion.
const longStop = 60 * time.Second

// mustOpen opens dir and, when the test ends, checkpoints (a writable handle still open),
// closes the handle and checks the directory (see checkAtEnd).
func mustOpen(tb testing.TB, dir string, cfg Config) *DB {
	tb.Helper()
	db, err := Open(context.Background(), dir, cfg)
	require.NoError(tb, err)
	tb.Cleanup(func() {
		if !cfg.ReadOnly && db.usable() == nil {
			_ = db.Checkpoint(context.Background())
		}
		_ = db.Close()
		checkAtEnd(tb, dir)
	})
	return db
}

// unchecked holds the directories whose tests leave damage there on purpose (skipCheck).
var unchecked sync.Map

// skipCheck exempts dir from the check at the end of the test: the test leaves damage, or a
// state only recovery repairs, there on purpose.
func skipCheck(dir string) { unchecked.Store(filepath.Clean(dir), true) }

// checkAtEnd fails the test on any problem CheckDir finds in dir, unless the test failed
// already or exempted dir with skipCheck.
func checkAtEnd(tb testing.TB, dir string) {
	tb.Helper()
	if _, skip := unchecked.Load(filepath.Clean(dir)); skip || tb.Failed() {
		return
	}
	probs, err := CheckDir(context.Background(), dir)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		tb.Errorf("CheckDir(%s) at the end of the test: %v", dir, err)
	}
	for _, p := range probs {
		tb.Errorf("CheckDir(%s) at the end of the test: %s", dir, p)
	}
}

// update runs fn in a writable transaction and commits, retrying conflicts. It returns the
// commit's TSN and how many attempts it took.
func update(ctx context.Context, db *DB, fn func(tx *Tx) error) (pages.TSN, int, error) {
	for attempt := 1; ; attempt++ {
		tx, err := db.Begin(ctx, true)
		if err != nil {
			return 0, attempt, err
		}
		if err := fn(tx); err != nil {
			_ = tx.Rollback()
			return 0, attempt, err
		}
		err = tx.Commit()
		if err == nil {
			return tx.CommitTSN(), attempt, nil
		}
		if !errors.Is(err, ErrConflict) || attempt > 10000 {
			return 0, attempt, err
		}
	}
}

func view(ctx context.Context, db *DB, fn func(tx *Tx) error) error {
	tx, err := db.Begin(ctx, false)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	return fn(tx)
}

// readInt reads the single int object of a page.
func readInt(tx *Tx, ns, page string) (int, error) {
	objs, err := tx.ReadPage(ns, page)
	if err != nil {
		return 0, err
	}
	if len(objs) != 1 {
		return 0, fmt.Errorf("page %s/%s has %d objects", ns, page, len(objs))
	}
	var v int
	err = objs[0].Decode(&v)
	return v, err
}

// setupPair creates namespace "c" with page000001 and page000002, both holding 0.
func setupPair(tb testing.TB, dir string, cfg Config) {
	tb.Helper()
	cfg.OneObjectPerPage = true
	db := mustOpen(tb, dir, cfg)
	_, _, err := update(context.Background(), db, func(tx *Tx) error {
		if err := tx.CreateNamespace("c"); err != nil {
			return err
		}
		for i := 0; i < 2; i++ {
			if _, err := tx.Insert("c", 0); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(tb, err)
	require.NoError(tb, db.Close())
}

// bumpPair increments both pages of "c" in one transaction and returns the new value. It fails
// if it ever sees the two pages differ (half of another commit).
func bumpPair(tx *Tx) (int, error) {
	a, err := readInt(tx, "c", "page000001")
	if err != nil {
		return 0, err
	}
	b, err := readInt(tx, "c", "page000002")
	if err != nil {
		return 0, err
	}
	if a != b {
		return 0, fmt.Errorf("TORN: page000001=%d page000002=%d at snapshot %d", a, b, tx.Snapshot())
	}
	if err := tx.UpdatePage("c", "page000001", a+1); err != nil {
		return 0, err
	}
	return a + 1, tx.UpdatePage("c", "page000002", a+1)
}

// child is a re-executed test binary running a role.
type child struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	lines  chan string
	done   chan error
	stderr lockedBuffer // everything the child wrote to stderr (also copied to ours)
}

// lockedBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startChild(tb testing.TB, role string, env ...string) *child {
	tb.Helper()
	return startTestBinary(tb, []string{"-test.run=^$"}, append([]string{"TXN_ROLE=" + role}, env...)...)
}

// startTestBinary re-executes this test binary with args and env added to ours; its stdout lines
// arrive on lines (up to 16 MiB each), its stderr is kept (and copied to ours).
func startTestBinary(tb testing.TB, args []string, env ...string) *child {
	tb.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), env...)
	return startCmd(tb, cmd)
}

// startCmd starts cmd as a child (see startTestBinary).
func startCmd(tb testing.TB, cmd *exec.Cmd) *child {
	tb.Helper()
	c := &child{cmd: cmd, lines: make(chan string, 1<<16), done: make(chan error, 1)}
	// Not an *os.File: cmd.Wait returns only once all of the child's stderr is copied.
	cmd.Stderr = io.MultiWriter(os.Stderr, &c.stderr)
	in, err := cmd.StdinPipe()
	require.NoError(tb, err)
	c.in = in
	out, err := cmd.StdoutPipe()
	require.NoError(tb, err)
	require.NoError(tb, cmd.Start())
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.done <- cmd.Wait()
	}()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
	})
	return c
}

// expect waits for the next line with the given prefix (skipping others) and returns its rest.
func (c *child) expect(tb testing.TB, prefix string) string {
	tb.Helper()
	deadline := time.After(longStop)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				tb.Fatalf("child exited before printing %q", prefix)
			}
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return strings.TrimSpace(rest)
			}
		case <-deadline:
			tb.Fatalf("no %q line from child within %v", prefix, longStop)
		}
	}
}

// all waits for the child to exit and returns every remaining line and the exit error.
func (c *child) all(tb testing.TB) ([]string, error) {
	tb.Helper()
	var out []string
	deadline := time.After(longStop)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				select {
				case err := <-c.done:
					c.done <- err
					return out, err
				case <-deadline:
					tb.Fatalf("child did not exit within %v", longStop)
				}
			}
			out = append(out, l)
		case <-deadline:
			tb.Fatalf("child did not finish within %v", longStop)
		}
	}
}

func (c *child) send(tb testing.TB, line string) {
	tb.Helper()
	_, err := io.WriteString(c.in, line+"\n")
	require.NoError(tb, err)
}

// childConfig is passed to roles as JSON in TXN_CONFIG.
type childConfig struct {
	Dir          string
	N            int
	SegmentBytes int64
	NoSync       bool
	NoOffer      bool // Config.NoOffer
	Packed       bool // several objects per page (the default layout) instead of one per page
	Pages        int  // spreader: pages of "g"
	Own          int  // handoff: writes pages 2*Own+1 and 2*Own+2 of "acct"
	// CheckpointEvery is passed to Open.
	CheckpointEvery time.Duration
	// SyncLog: a file shared by the children: each appends "sync <pid> <segment> <end>" after
	// every log fsync (before state names it) and, as a bumper, "ack <pid> <tsn>" after each
	// acknowledged commit.
	SyncLog string
}

func configEnv(tb testing.TB, cc childConfig) string {
	b, err := json.Marshal(cc)
	require.NoError(tb, err)
	return "TXN_CONFIG=" + string(b)
}

func atoi(tb testing.TB, s string) int {
	tb.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(tb, err)
	return n
}

func errLockTimeout() error { return lockfs.ErrLockTimeout }

// waitLeadIdle waits until no commit group of db runs: a holder's later rounds (serve) run after
// the commits of its first round have returned, and release the lock only at their end.
func waitLeadIdle(db *DB) {
	db.q.mu.Lock()
	defer db.q.mu.Unlock()
	for db.q.leading {
		db.q.idle.Wait()
	}
}
