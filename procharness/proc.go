package procharness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/txtdb/txtdb/procharness/history"
)

// Spec says what a worker runs.
type Spec struct {
	Workload string   // bank, counter, register, append, hold
	Args     []string // more worker flags (-accounts 10, -keys 3, -nosync, -ops 50, ...)
	Env      []string // more environment (TXTDB_CRASHPOINT=<point>[:n])
}

// Proc is one worker process (one incarnation of a slot). Its methods are safe for concurrent
// use.
type Proc struct {
	Name string // worker name in the history: "w<slot>.<incarnation>"
	Slot int    // the fleet position it fills; a restart fills the same slot
	Spec Spec
	PID  int

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr lockedBuffer
	ready  chan history.ReadyInfo // one value, then closed, once the ready line arrived
	done   chan struct{}          // closed once the process exited and its output is read
	exit   *Exit                  // set before done is closed
	ops    atomic.Int64           // completions seen
	resume atomic.Uint64          // an events worker's last TSN: its ready line's From, then its events'
	onLine func(history.Line)
	stopMu sync.Mutex
}

// Exit is how a worker ended.
type Exit struct {
	Code      int            // exit status, -1 if killed by a signal
	Signal    syscall.Signal // the signal that killed it, 0 if it exited
	Stderr    string         // everything it wrote to stderr
	Truncated bool           // its last stdout line was torn (killed mid-write)
	Err       error          // a protocol error in its output, if any
}

// Killed reports whether the worker died of SIGKILL.
func (e *Exit) Killed() bool { return e.Signal == syscall.SIGKILL }

// CrashedAt reports whether the worker died at crash point point: it wrote "crash <point>" on
// stderr and died of SIGKILL. Anything else (a clean exit, another death) does not count.
func (e *Exit) CrashedAt(point string) bool {
	return e.Killed() && slices.Contains(strings.Split(e.Stderr, "\n"), "crash "+point)
}

// String describes the exit.
func (e *Exit) String() string {
	s := fmt.Sprintf("exit %d", e.Code)
	if e.Signal != 0 {
		s = "killed by " + e.Signal.String()
	}
	if e.Err != nil {
		s += fmt.Sprintf(" (output: %v)", e.Err)
	}
	if st := strings.TrimSpace(e.Stderr); st != "" {
		s += "; stderr: " + lastLines(st, 10)
	}
	return s
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// start starts the process (its command changed by wrap, if set) and the goroutine that reads
// its output; it does not wait for ready.
func (p *Proc) start(bin string, args, env []string, wrap func(*exec.Cmd)) error {
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	if wrap != nil {
		wrap(p.cmd)
	}
	p.cmd.Stderr = &p.stderr
	in, err := p.cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	p.stdin = in
	p.ready = make(chan history.ReadyInfo, 1)
	p.done = make(chan struct{})
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("procharness: start %s: %w", p.Name, err)
	}
	p.PID = p.cmd.Process.Pid
	go p.read(out)
	return nil
}

// read consumes the worker's stdout until it closes, then reaps the process.
func (p *Proc) read(out io.Reader) {
	r := history.NewReader(out)
	var perr error
	readySent := false
	for {
		l, err := r.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				perr = err
				_, _ = io.Copy(io.Discard, out)
			}
			break
		}
		if l.Worker != p.Name && perr == nil {
			perr = fmt.Errorf("line of worker %q on %s's stdout", l.Worker, p.Name)
		}
		p.onLine(l)
		switch {
		case l.Type == history.Ready && !readySent:
			var ri history.ReadyInfo
			if err := l.Decode(&ri); err != nil && perr == nil {
				perr = err
			}
			p.resume.Store(max(p.resume.Load(), ri.From))
			p.ready <- ri
			close(p.ready)
			readySent = true
		case l.Type.Completes():
			p.ops.Add(1)
		case l.Type == history.Event:
			p.resume.Store(max(p.resume.Load(), l.TSN))
		}
	}
	if !readySent {
		close(p.ready)
	}
	err := p.cmd.Wait()
	e := &Exit{Code: p.cmd.ProcessState.ExitCode(), Stderr: p.stderr.String(), Truncated: r.Truncated(), Err: perr}
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.Signal = ws.Signal()
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) && e.Err == nil {
		e.Err = err
	}
	p.exit = e
	close(p.done)
}

// WaitReady waits for the worker's ready line and returns it. It fails if the worker exits
// first, or ctx ends.
func (p *Proc) WaitReady(ctx context.Context) (history.ReadyInfo, error) {
	select {
	case ri, ok := <-p.ready:
		if ok {
			return ri, nil
		}
		<-p.done
		return history.ReadyInfo{}, fmt.Errorf("procharness: %s exited before ready: %s", p.Name, p.exit)
	case <-ctx.Done():
		return history.ReadyInfo{}, fmt.Errorf("procharness: %s not ready: %w; stderr: %s", p.Name, ctx.Err(), lastLines(p.stderr.String(), 10))
	}
}

// Ops returns how many operations the worker completed so far.
func (p *Proc) Ops() int64 { return p.ops.Load() }

// Resume returns the TSN an events worker's successor resumes after (-from): the last event
// TSN it recorded, or where its subscription started; 0 before its ready line.
func (p *Proc) Resume() uint64 { return p.resume.Load() }

// Done is closed once the worker exited and all its output was read.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Stderr returns what the worker wrote to stderr so far.
func (p *Proc) Stderr() string { return p.stderr.String() }

// Wait waits for the worker to exit, at most until ctx ends (then it kills it and still waits
// for the exit, which SIGKILL makes prompt).
func (p *Proc) Wait(ctx context.Context) (*Exit, error) {
	select {
	case <-p.done:
		return p.exit, nil
	case <-ctx.Done():
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		return p.exit, fmt.Errorf("procharness: %s did not exit: %w", p.Name, ctx.Err())
	}
}

// Stop asks the worker to stop (it closes its stdin: the worker finishes its operation, runs
// its final reads, writes its summary and exits 0) and waits for it; see Wait.
func (p *Proc) Stop(ctx context.Context) (*Exit, error) {
	p.stopMu.Lock()
	_ = p.stdin.Close()
	p.stopMu.Unlock()
	return p.Wait(ctx)
}

// Kill kills the worker with SIGKILL and waits for it to be gone. Killing a worker that
// already exited is not an error.
func (p *Proc) Kill(ctx context.Context) (*Exit, error) {
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return nil, fmt.Errorf("procharness: kill %s: %w", p.Name, err)
	}
	return p.Wait(ctx)
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
