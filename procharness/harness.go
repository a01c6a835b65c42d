package procharness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/procharness/history"
)

// Options configures a Harness.
type Options struct {
	Dir    string   // the data directory (required); created by the first worker if missing
	Binary string   // the worker binary; "" builds it (Binary)
	Seed   uint64   // base of the workers' seeds
	Env    []string // environment for every worker, after this process's own
	// Wrap, if set, is called with every worker's command just before it starts and may change
	// it: run the worker through another program (a command prefix), in a namespace of its own
	// (SysProcAttr), with more environment. Kill still SIGKILLs the started process, so a wrapper
	// must exec the worker rather than fork it. Called from the goroutine that starts the worker.
	Wrap func(*exec.Cmd)
}

// Harness starts, stops, kills and restarts workers on one data directory and collects what
// they write into one History. Safe for concurrent use.
type Harness struct {
	opts Options
	bin  string
	hist history.History

	changed   chan struct{} // a non-blocking signal: a line arrived or a worker exited
	commits   atomic.Int64  // ok lines with a commit TSN
	conflicts atomic.Int64  // conflicts reported on completion lines

	mu    sync.Mutex
	procs []*Proc // guarded by mu: every process started, in start order
	incs  []int   // guarded by mu: incarnations started per slot
}

// New returns a harness on opts.Dir, building the worker if opts.Binary is empty.
func New(ctx context.Context, opts Options) (*Harness, error) {
	if opts.Dir == "" {
		return nil, errors.New("procharness: Options.Dir is required")
	}
	bin := opts.Binary
	if bin == "" {
		var err error
		if bin, err = Binary(ctx); err != nil {
			return nil, err
		}
	}
	return &Harness{opts: opts, bin: bin, changed: make(chan struct{}, 1)}, nil
}

// Dir returns the data directory.
func (h *Harness) Dir() string { return h.opts.Dir }

// History returns the lines of every worker so far.
func (h *Harness) History() *history.History { return &h.hist }

// Changed returns a channel that receives (without blocking the harness: signals coalesce)
// after a line arrives or a worker exits; a loop waiting for a condition on the history selects
// on it.
func (h *Harness) Changed() <-chan struct{} { return h.changed }

func (h *Harness) signal() {
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// Commits returns how many commits (ok lines with a TSN) the workers reported so far.
func (h *Harness) Commits() int64 { return h.commits.Load() }

// Conflicts returns how many conflicts (commit attempts that lost validation) the workers
// reported so far.
func (h *Harness) Conflicts() int64 { return h.conflicts.Load() }

// Procs returns every process started so far, in start order.
func (h *Harness) Procs() []*Proc {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.procs)
}

// Start starts a worker in a new slot and waits for its ready line (see Restart).
func (h *Harness) Start(ctx context.Context, spec Spec) (*Proc, error) {
	h.mu.Lock()
	slot := len(h.incs)
	h.incs = append(h.incs, 0)
	h.mu.Unlock()
	return h.startSlot(ctx, slot, spec)
}

// StartNoWait starts a worker in a new slot without waiting for its ready line: for a worker
// armed to crash during its setup.
func (h *Harness) StartNoWait(spec Spec) (*Proc, error) {
	h.mu.Lock()
	slot := len(h.incs)
	h.incs = append(h.incs, 0)
	h.mu.Unlock()
	return h.launch(slot, spec)
}

// Restart starts a new incarnation of p's slot with p's spec (p must have exited) and waits
// for its ready line. An events worker resumes after the last TSN p recorded (-from).
func (h *Harness) Restart(ctx context.Context, p *Proc) (*Proc, error) {
	select {
	case <-p.Done():
	default:
		return nil, fmt.Errorf("procharness: restart %s: still running", p.Name)
	}
	spec := p.Spec
	if spec.Workload == "events" && p.Resume() != 0 {
		spec.Args = append(withoutFlag(spec.Args, "-from"), "-from", strconv.FormatUint(p.Resume(), 10))
	}
	return h.startSlot(ctx, p.Slot, spec)
}

// withoutFlag returns args without flag and its value.
func withoutFlag(args []string, flag string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == flag {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

func (h *Harness) startSlot(ctx context.Context, slot int, spec Spec) (*Proc, error) {
	p, err := h.launch(slot, spec)
	if err != nil {
		return nil, err
	}
	if _, err := p.WaitReady(ctx); err != nil {
		_, _ = p.Kill(context.Background())
		return nil, err
	}
	return p, nil
}

func (h *Harness) launch(slot int, spec Spec) (*Proc, error) {
	h.mu.Lock()
	h.incs[slot]++
	inc := h.incs[slot]
	h.mu.Unlock()
	name := fmt.Sprintf("w%d.%d", slot, inc)
	// uid: unique per incarnation in this harness, for values that must be unique (append).
	uid := int64(slot+1)*1000 + int64(inc)
	seed := h.opts.Seed*1_000_003 + uint64(uid)
	args := append([]string{"-dir", h.opts.Dir, "-workload", spec.Workload, "-name", name,
		"-uid", strconv.FormatInt(uid, 10), "-seed", strconv.FormatUint(seed, 10)}, spec.Args...)
	env := append(append(os.Environ(), h.opts.Env...), spec.Env...)
	p := &Proc{Name: name, Slot: slot, Spec: spec, onLine: func(l history.Line) {
		h.hist.Add(l)
		if l.Type == history.OK && l.TSN != 0 {
			h.commits.Add(1)
		}
		h.conflicts.Add(int64(l.Conflicts))
		h.signal()
	}}
	if err := p.start(h.bin, args, env, h.opts.Wrap); err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.mu.Unlock()
	go func() {
		<-p.Done()
		h.signal()
	}()
	return p, nil
}

// StopAll stops every running worker (see Proc.Stop) and returns the exits of those that did not
// exit 0, as errors.
func (h *Harness) StopAll(ctx context.Context) error {
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range h.Procs() {
		select {
		case <-p.Done():
			continue
		default:
		}
		wg.Go(func() {
			e, err := p.Stop(ctx)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err)
			case e.Code != 0 || e.Err != nil:
				errs = append(errs, fmt.Errorf("procharness: %s stopped with %s", p.Name, e))
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// KillAll kills every worker still running and waits for them.
func (h *Harness) KillAll() {
	for _, p := range h.Procs() {
		_, _ = p.Kill(context.Background())
	}
}

// Verify opens the directory, checkpoints it and runs Check; it returns the problems found.
// Every run ends with it, after the workers have stopped.
func (h *Harness) Verify(ctx context.Context) ([]txtdb.Problem, error) {
	db, err := txtdb.Open(h.opts.Dir, nil)
	if err != nil {
		return nil, fmt.Errorf("procharness: open for verify: %w", err)
	}
	cerr := db.Checkpoint(ctx)
	probs, err := db.Check(ctx)
	return probs, errors.Join(cerr, err, db.Close())
}
