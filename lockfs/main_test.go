package lockfs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Cross-process tests re-exec the test binary with helperEnv set to a role; TestMain then runs
// the role instead of the tests. A helper talks to its test through stdout lines (it reports)
// and stdin lines (it is told); other settings come in the env vars below.
const (
	helperEnv  = "LOCKFS_HELPER"  // the role
	pathEnv    = "LOCKFS_PATH"    // the lock file
	modeEnv    = "LOCKFS_MODE"    // "exclusive" or "shared"
	timeoutEnv = "LOCKFS_TIMEOUT" // a wait's deadline, as a time.Duration
	fileEnv    = "LOCKFS_FILE"    // the counter file
	targetEnv  = "LOCKFS_TARGET"  // the counter's final value
	retainEnv  = "LOCKFS_RETAIN"  // set: every lock is retained (kept descriptors), helpers included
	freshEnv   = "LOCKFS_FRESH"   // set: the retained-hold helper does not retain (fresh descriptors)
	spinEnv    = "LOCKFS_SPIN"    // the helper's Lock.SetSpin tries
)

// longStop bounds every wait of a test for something that should happen promptly; hitting it
// is a failure, never a measurement.
const longStop = 30 * time.Second

// umask is the process's umask, read once before any test runs.
var umask os.FileMode

// blocked routes testHookBlock calls to the tests watching a lock key.
var blocked struct {
	mu sync.Mutex
	ch map[string]chan struct{} // guarded by mu
}

func TestMain(m *testing.M) {
	testRetainAll = os.Getenv(retainEnv) != ""
	if role := os.Getenv(helperEnv); role != "" {
		os.Exit(runHelper(role))
	}
	old := syscall.Umask(0)
	syscall.Umask(old)
	umask = os.FileMode(old)
	blocked.ch = make(map[string]chan struct{})
	testHookBlock = func(key string) {
		blocked.mu.Lock()
		ch := blocked.ch[key]
		blocked.mu.Unlock()
		if ch != nil {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	os.Exit(m.Run())
}

// watchBlocked returns a channel that receives (best effort, buffered) each time a goroutine
// of this process is about to block in flock(2) on l.
func watchBlocked(tb testing.TB, l *Lock) <-chan struct{} {
	tb.Helper()
	ch := make(chan struct{}, 64)
	blocked.mu.Lock()
	blocked.ch[l.key] = ch
	blocked.mu.Unlock()
	tb.Cleanup(func() {
		blocked.mu.Lock()
		delete(blocked.ch, l.key)
		blocked.mu.Unlock()
	})
	return ch
}

// waitFor fails the test unless ch delivers within longStop.
func waitFor[T any](tb testing.TB, ch <-chan T, what string) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(longStop):
		tb.Fatalf("%s: nothing after %v", what, longStop)
		panic("unreachable")
	}
}

// runHelper runs a helper role and returns the exit code.
func runHelper(role string) int {
	path := os.Getenv(pathEnv)
	m := exclusive
	if os.Getenv(modeEnv) == shared.String() {
		m = shared
	}
	l := New(path, 0)
	if n, err := strconv.Atoi(os.Getenv(spinEnv)); err == nil {
		l.SetSpin(n)
	}
	in := bufio.NewScanner(os.Stdin)
	var err error
	switch role {
	case "hold":
		err = helperHold(l, m, in)
	case "acquire":
		err = helperAcquire(l, m)
	case "counter":
		err = helperCounter(l, in)
	case "pingpong":
		err = helperPingPong(l, in)
	case "retained-hold":
		err = helperRetainedHold(l, m, in)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", role, err)
		return 1
	}
	return 0
}

func lockMode(ctx context.Context, l *Lock, m mode) (func() error, error) {
	if m == exclusive {
		return l.Lock(ctx)
	}
	return l.RLock(ctx)
}

// helperHold takes the lock, says "locked", and releases it on a stdin line or EOF, then
// says "released".
func helperHold(l *Lock, m mode, in *bufio.Scanner) error {
	ctx, cancel := context.WithTimeout(context.Background(), longStop)
	defer cancel()
	unlock, err := lockMode(ctx, l, m)
	if err != nil {
		return err
	}
	fmt.Println("locked")
	in.Scan()
	if err := unlock(); err != nil {
		return err
	}
	fmt.Println("released")
	return nil
}

// helperAcquire takes the lock within LOCKFS_TIMEOUT and says "locked" (then releases it and
// says "released") or "timeout".
func helperAcquire(l *Lock, m mode) error {
	d, err := time.ParseDuration(os.Getenv(timeoutEnv))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	unlock, err := lockMode(ctx, l, m)
	if errors.Is(err, ErrLockTimeout) {
		fmt.Println("timeout")
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Println("locked")
	if err := unlock(); err != nil {
		return err
	}
	fmt.Println("released")
	return nil
}

// helperCounter says "ready", waits for a stdin line, then increments the counter file under
// the exclusive lock until it reaches LOCKFS_TARGET, and says "done <its increments>".
func helperCounter(l *Lock, in *bufio.Scanner) error {
	file := os.Getenv(fileEnv)
	target, err := strconv.Atoi(os.Getenv(targetEnv))
	if err != nil {
		return err
	}
	fmt.Println("ready")
	in.Scan()
	ctx, cancel := context.WithTimeout(context.Background(), 2*longStop)
	defer cancel()
	mine := 0
	var wrote []string // the counter values this process wrote, in order
	for {
		unlock, err := l.Lock(ctx)
		if err != nil {
			return err
		}
		n, err := readCounter(file)
		if err == nil && n < target {
			err = os.WriteFile(file, []byte(strconv.Itoa(n+1)), 0o644)
			mine++
			wrote = append(wrote, strconv.Itoa(n+1))
		}
		if uerr := unlock(); err == nil {
			err = uerr
		}
		if err != nil {
			return err
		}
		if n >= target {
			break
		}
	}
	fmt.Println("done", mine, strings.Join(wrote, ","))
	return nil
}

func readCounter(file string) (int, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(string(b))
}

// helperPingPong says "ready", then on "go" takes the exclusive lock and says "got", on "rel"
// releases it, and stops at EOF.
func helperPingPong(l *Lock, in *bufio.Scanner) error {
	fmt.Println("ready")
	var unlock func() error
	for in.Scan() {
		switch in.Text() {
		case "go":
			var err error
			if unlock, err = l.Lock(context.Background()); err != nil {
				return err
			}
			fmt.Println("got")
		case "rel":
			if err := unlock(); err != nil {
				return err
			}
		}
	}
	return nil
}

// helperRetainedHold retains the lock, takes it, says "locked"; on a stdin line releases it and
// says "released <error or ok>"; then keeps the Retain (and so the kept descriptor) until EOF.
// It runs on one OS thread, so that a fault injected by the nth flock(2) of a thread (strace
// counts per thread) hits a known call: the first is the take, the second the release.
func helperRetainedHold(l *Lock, m mode, in *bufio.Scanner) error {
	runtime.LockOSThread()
	if os.Getenv(freshEnv) == "" {
		release := l.Retain()
		defer release()
	}
	ctx, cancel := context.WithTimeout(context.Background(), longStop)
	defer cancel()
	unlock, err := lockMode(ctx, l, m)
	if err != nil {
		return err
	}
	fmt.Println("locked")
	in.Scan()
	res := "ok"
	if err := unlock(); err != nil {
		res = err.Error()
	}
	fmt.Println("released", res)
	for in.Scan() {
	}
	return nil
}

// proc is a helper process seen from its test.
type proc struct {
	tb     testing.TB
	role   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string   // stdout lines; closed at EOF
	exited chan struct{} // closed when the process has been waited for
	err    error         // of cmd.Wait; read after exited
	stderr bytes.Buffer  // read after exited
}

// startHelper starts a helper process in role for lock l with the given extra env settings
// ("KEY=value"). A cleanup kills it if it still runs.
func startHelper(tb testing.TB, role string, l *Lock, m mode, env ...string) *proc {
	tb.Helper()
	return startHelperUnder(tb, nil, role, l, m, env...)
}

// startHelperUnder is startHelper with the helper run under a wrapper command (such as strace
// with fault injection): wrapper's words, then the test binary and its arguments.
func startHelperUnder(tb testing.TB, wrapper []string, role string, l *Lock, m mode, env ...string) *proc {
	tb.Helper()
	argv := append(append([]string(nil), wrapper...), os.Args[0], "-test.run=^$")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), helperEnv+"="+role, pathEnv+"="+l.Path(), modeEnv+"="+m.String())
	// Under -race a process sleeps 1 s at exit (atexit_sleep_ms) unless told otherwise.
	cmd.Env = append(cmd.Env, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.Env = append(cmd.Env, env...)
	p := &proc{tb: tb, role: role, cmd: cmd, lines: make(chan string, 16), exited: make(chan struct{})}
	cmd.Stderr = &p.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { // owned by p: ends when the process has exited
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.err = cmd.Wait()
		close(p.exited)
	}()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = stdin.Close()
		for range p.lines { // drain so the reader goroutine can finish
		}
		<-p.exited
	})
	return p
}

// next returns the helper's next stdout line, failing the test if there is none within
// longStop.
func (p *proc) next() string {
	p.tb.Helper()
	select {
	case line, ok := <-p.lines:
		if !ok {
			<-p.exited
			p.tb.Fatalf("helper %s exited (%v) before saying anything more; stderr:\n%s", p.role, p.err, p.stderr.String())
		}
		return line
	case <-time.After(longStop):
		p.tb.Fatalf("helper %s said nothing for %v", p.role, longStop)
		return ""
	}
}

// expect fails the test unless the helper's next line is want.
func (p *proc) expect(want string) {
	p.tb.Helper()
	if got := p.next(); got != want {
		p.tb.Fatalf("helper %s said %q, want %q", p.role, got, want)
	}
}

// send writes a line to the helper's stdin.
func (p *proc) send(line string) {
	p.tb.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		p.tb.Fatalf("tell helper %s %q: %v", p.role, line, err)
	}
}

// wait waits for the helper to exit and fails the test unless it exited with status 0.
// Lines it has not been asked for are dropped.
func (p *proc) wait() {
	p.tb.Helper()
	_ = p.stdin.Close()
	p.drain()
	if p.err != nil {
		p.tb.Fatalf("helper %s: %v; stderr:\n%s", p.role, p.err, p.stderr.String())
	}
}

// kill kills the helper with SIGKILL and waits for it to be gone.
func (p *proc) kill() {
	p.tb.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.tb.Fatalf("kill helper %s: %v", p.role, err)
	}
	p.drain()
}

// drain drops the helper's remaining lines and waits for it to exit, within longStop.
func (p *proc) drain() {
	p.tb.Helper()
	timeout := time.After(longStop)
	for {
		select {
		case _, ok := <-p.lines:
			if ok {
				continue
			}
		case <-timeout:
			p.tb.Fatalf("helper %s did not exit within %v", p.role, longStop)
		}
		break
	}
	<-p.exited
}
