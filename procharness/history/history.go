package history

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
)

// History collects the lines of every worker of a run. Add is safe for concurrent use (one
// collector per worker); the other methods see the lines added before they were called.
type History struct {
	mu    sync.Mutex
	lines []Line // guarded by mu: in the order added
}

// Add appends lines.
func (h *History) Add(lines ...Line) {
	h.mu.Lock()
	h.lines = append(h.lines, lines...)
	h.mu.Unlock()
}

// Lines returns a copy of every line, in the order added.
func (h *History) Lines() []Line {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.lines)
}

// Len returns the number of lines.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.lines)
}

// WriteTo writes every line as JSON lines (the workers' protocol), for a post-mortem.
func (h *History) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for _, l := range h.Lines() {
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
	type key struct {
		worker string
		op     int64
	}
	byKey := map[key]int{}
	var ops []Op
	for _, l := range h.Lines() {
		switch {
		case l.Type == Invoke:
			k := key{l.Worker, l.Op}
			if _, dup := byKey[k]; dup {
				return nil, fmt.Errorf("history: %s invoked op %d twice", l.Worker, l.Op)
			}
			byKey[k] = len(ops)
			ops = append(ops, Op{Worker: l.Worker, ID: l.Op, F: l.F, Invoke: l})
		case l.Type.Completes():
			i, ok := byKey[key{l.Worker, l.Op}]
			if !ok {
				return nil, fmt.Errorf("history: %s completed op %d it never invoked: %s", l.Worker, l.Op, l)
			}
			if ops[i].Done.Type != "" {
				return nil, fmt.Errorf("history: %s completed op %d twice", l.Worker, l.Op)
			}
			ops[i].Done = l
		}
	}
	for i := range ops {
		if ops[i].Done.Type == "" {
			ops[i].Done = Line{Type: Unknown, Worker: ops[i].Worker, Op: ops[i].ID, F: ops[i].F,
				Time: math.MaxInt64, Value: ops[i].Invoke.Value, Err: "no completion (worker died)"}
		}
	}
	slices.SortStableFunc(ops, func(a, b Op) int {
		switch {
		case a.Invoke.Time < b.Invoke.Time:
			return -1
		case a.Invoke.Time > b.Invoke.Time:
			return 1
		}
		return 0
	})
	return ops, nil
}

// OfType returns the lines of type t, in the order added.
func (h *History) OfType(t Type) []Line {
	var out []Line
	for _, l := range h.Lines() {
		if l.Type == t {
			out = append(out, l)
		}
	}
	return out
}
