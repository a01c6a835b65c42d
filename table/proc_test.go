package table

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Cross-process tests re-exec this test binary with TABLE_ROLE naming a role and TABLE_CONFIG
// holding its configuration as JSON; TestMain runs the role instead of the tests. A role talks
// to the parent in JSON lines on stdout (one write each, so a SIGKILL never leaves half a line)
// and reads commands from stdin; diagnostics go to stderr. A role that fails exits 1.
func TestMain(m *testing.M) {
	if role := os.Getenv("TABLE_ROLE"); role != "" {
		if err := runRole(role, os.Getenv("TABLE_CONFIG")); err != nil {
			fmt.Fprintf(os.Stderr, "role %s: %v\n", role, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runRole runs one child role.
func runRole(role, config string) error {
	roles := map[string]func(config string) error{
		"racer":    raceRole,
		"batcher":  batchRole,
		"reader":   fidelityRole,
		"mismatch": mismatchRole,
		"oldcode":  oldCodeRole,
		"migrator": migrateRole,
	}
	fn, ok := roles[role]
	if !ok {
		return fmt.Errorf("no role %q", role)
	}
	return fn(config)
}

// longStop bounds every wait on a child; it is a failure deadline, never a timing assertion.
const longStop = 2 * time.Minute

// proc is a re-executed test binary running a role.
type proc struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string // closed once stdout ends
	done  chan error  // the exit status, once, after lines is closed
	mu    sync.Mutex
	inEOF bool // guarded by mu: stdin closed
}

// startChild starts role with cfg (marshalled into TABLE_CONFIG). The child is killed, if still
// running, when the test ends.
func startChild(tb testing.TB, role string, cfg any) *proc {
	tb.Helper()
	b, err := json.Marshal(cfg)
	require.NoError(tb, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TABLE_ROLE="+role, "TABLE_CONFIG="+string(b))
	cmd.Stderr = os.Stderr
	c := &proc{cmd: cmd, lines: make(chan string, 1<<16), done: make(chan error, 1)}
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
		for range c.lines {
		}
		err := <-c.done
		c.done <- err
	})
	return c
}

// next returns the child's next line; ok is false once its stdout has ended.
func (c *proc) next(tb testing.TB) (string, bool) {
	tb.Helper()
	select {
	case l, ok := <-c.lines:
		return l, ok
	case <-time.After(longStop):
		tb.Fatalf("no line from child within %v", longStop)
		return "", false
	}
}

// expect waits for the next line and decodes it into v; it fails the test if the child exits
// first.
func (c *proc) expect(tb testing.TB, v any) {
	tb.Helper()
	l, ok := c.next(tb)
	if !ok {
		tb.Fatalf("child exited (%v) while a line was expected", c.wait(tb))
	}
	require.NoError(tb, json.Unmarshal([]byte(l), v), "child line %q", l)
}

// send writes one command line to the child's stdin.
func (c *proc) send(tb testing.TB, line string) {
	tb.Helper()
	_, err := io.WriteString(c.in, line+"\n")
	require.NoError(tb, err)
}

// stop closes the child's stdin: a role that reads commands ends at end of file.
func (c *proc) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.inEOF {
		c.inEOF = true
		_ = c.in.Close()
	}
}

// kill sends SIGKILL.
func (c *proc) kill(tb testing.TB) {
	tb.Helper()
	require.NoError(tb, c.cmd.Process.Signal(syscall.SIGKILL))
}

// wait waits for the child to exit, discarding any lines not read yet, and returns its exit
// status.
func (c *proc) wait(tb testing.TB) error {
	tb.Helper()
	deadline := time.After(longStop)
	for {
		select {
		case _, ok := <-c.lines:
			if ok {
				continue
			}
			select {
			case err := <-c.done:
				c.done <- err
				return err
			case <-deadline:
				tb.Fatalf("child did not exit within %v", longStop)
			}
		case <-deadline:
			tb.Fatalf("child did not exit within %v", longStop)
		}
	}
}

// status waits for the exit status of a child whose lines were all read (lines is closed).
func (c *proc) status(tb testing.TB) error {
	tb.Helper()
	select {
	case err := <-c.done:
		c.done <- err
		return err
	case <-time.After(longStop):
		tb.Fatalf("child did not exit within %v", longStop)
		return nil
	}
}

// killedBySIGKILL reports whether a child's exit status is death by SIGKILL.
func killedBySIGKILL(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// Child side.

// emit writes v as one JSON line to stdout in a single write.
func emit(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(b, '\n'))
	return err
}

// decodeConfig decodes a role's TABLE_CONFIG.
func decodeConfig(config string, v any) error {
	if err := json.Unmarshal([]byte(config), v); err != nil {
		return fmt.Errorf("TABLE_CONFIG: %w", err)
	}
	return nil
}

// commands returns a channel of the lines read from stdin, closed at end of file (the parent
// closed it or died). The reading goroutine ends with stdin.
func commands() <-chan string {
	ch := make(chan string, 16)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			ch <- strings.TrimSpace(sc.Text())
		}
	}()
	return ch
}
