package history

import (
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"math"
	"slices"
	"sync"
)

// History collects the lines of every worker of a run. Add is safe for concurrent use (one
// collector per worker); the other methods see the lines added before they were called.
//
// Lines are kept in fixed-size chunks, so that a long run's history grows without the copies
// (and the twice-the-size peaks) of one growing slice.
type History struct {
	mu     sync.Mutex
	chunks [][]Line // guarded by mu: in the order added; every chunk but the last is full
	n      int      // guarded by mu: lines added
}

// chunkLines is the number of lines per chunk.
const chunkLines = 4096

// Add appends lines.
func (h *History) Add(lines ...Line) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range lines {
		if k := len(h.chunks); k == 0 || len(h.chunks[k-1]) == chunkLines {
			h.chunks = append(h.chunks, make([]Line, 0, chunkLines))
		}
		last := &h.chunks[len(h.chunks)-1]
		*last = append(*last, l)
		h.n++
	}
}

// All yields every line added before the call, in the order added. Lines added while it runs
// are not yielded; the lines are shared with h (a Line's Value and NS must not be modified).
func (h *History) All() iter.Seq[Line] {
	h.mu.Lock()
	chunks := slices.Clone(h.chunks) // the slice headers: a chunk's first len lines never change
	h.mu.Unlock()
	return func(yield func(Line) bool) {
		for _, c := range chunks {
			for _, l := range c {
				if !yield(l) {
					return
				}
			}
		}
	}
}

// Lines returns a copy of every line, in the order added.
func (h *History) Lines() []Line {
	out := make([]Line, 0, h.Len())
	for l := range h.All() {
		out = append(out, l)
	}
	return out
}

// Len returns the number of lines.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// WriteTo writes every line as JSON lines (the workers' protocol), for a post-mortem.
func (h *History) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for l := range h.All() {
		b, err := json.Marshal(l)
		if err != nil {
			return n, err
		}
		m, err := w.Write(append(b, '\n'))
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Op is one operation: its invoke line and its completion.
type Op struct {
	Worker string
	ID     int64
	F      string
	Invoke Line
	// Done is the completion. An invoke whose worker never completed it (killed) gets a
	// synthesized Done of type Unknown with Time math.MaxInt64: it may have taken effect at any
	// time after its invoke.
	Done Line
}

// Type returns the operation's outcome: OK, Fail or Unknown.
func (o Op) Type() Type { return o.Done.Type }

// Start and End return the invoke and completion times.
func (o Op) Start() int64 { return o.Invoke.Time }

// End returns the completion time; math.MaxInt64 when the outcome is unknown.
func (o Op) End() int64 {
	if o.Done.Type == Unknown {
		return math.MaxInt64
	}
	return o.Done.Time
}

// Ops pairs every invoke with its completion, sorted by invoke time. An invoke without a
// completion, and a completion of type unknown, is an operation of unknown outcome. A completion
// without an invoke, or a second completion, is an error: the worker broke the protocol.
func (h *History) Ops() ([]Op, error) {
	type placed struct {
		op Op
		n  int
	}
	var ops []placed
	if err := h.eachOp(func(o Op, n int) { ops = append(ops, placed{o, n}) }); err != nil {
		return nil, err
	}
	// By invoke time; equal times in invoke order.
	slices.SortFunc(ops, func(a, b placed) int {
		switch {
		case a.op.Invoke.Time < b.op.Invoke.Time:
			return -1
		case a.op.Invoke.Time > b.op.Invoke.Time:
			return 1
		}
		return a.n - b.n
	})
	out := make([]Op, len(ops))
	for i, p := range ops {
		out[i] = p.op
	}
	return out, nil
}

// EachOp is Ops without the slice: it calls fn with each operation as its completion is
// reached, in the order of the lines, then with every operation that never completed (in
// invoke order), and returns Ops's protocol error, if any, before any call for the lines past
// it. It keeps only the operations in flight, so a long history costs no more than its lines.
func (h *History) EachOp(fn func(Op)) error {
	return h.eachOp(func(o Op, _ int) { fn(o) })
}

// eachOp is EachOp that also passes the place of the operation's invoke in the history.
func (h *History) eachOp(fn func(o Op, n int)) error {
	type key struct {
		worker string
		op     int64
	}
	type inFlight struct {
		invoke Line
		n      int // the invoke's place in the history
	}
	seen := map[key]bool{}        // every operation invoked: true once completed
	pending := map[key]inFlight{} // invoked and not completed
	n := 0
	for l := range h.All() {
		n++
		k := key{l.Worker, l.Op}
		switch {
		case l.Type == Invoke:
			if _, dup := seen[k]; dup {
				return fmt.Errorf("history: %s invoked op %d twice", l.Worker, l.Op)
			}
			seen[k] = false
			pending[k] = inFlight{l, n}
		case l.Type.Completes():
			done, ok := seen[k]
			if !ok {
				return fmt.Errorf("history: %s completed op %d it never invoked: %s", l.Worker, l.Op, l)
			}
			if done {
				return fmt.Errorf("history: %s completed op %d twice", l.Worker, l.Op)
			}
			seen[k] = true
			p := pending[k]
			delete(pending, k)
			fn(Op{Worker: l.Worker, ID: l.Op, F: p.invoke.F, Invoke: p.invoke, Done: l}, p.n)
		}
	}
	rest := make([]inFlight, 0, len(pending))
	for _, p := range pending {
		rest = append(rest, p)
	}
	slices.SortFunc(rest, func(a, b inFlight) int { return a.n - b.n })
	for _, p := range rest {
		inv := p.invoke
		fn(Op{Worker: inv.Worker, ID: inv.Op, F: inv.F, Invoke: inv, Done: Line{Type: Unknown,
			Worker: inv.Worker, Op: inv.Op, F: inv.F, Time: math.MaxInt64, Value: inv.Value,
			Err: "no completion (worker died)"}}, p.n)
	}
	return nil
}

// OfType returns the lines of type t, in the order added.
func (h *History) OfType(t Type) []Line {
	var out []Line
	for l := range h.All() {
		if l.Type == t {
			out = append(out, l)
		}
	}
	return out
}
