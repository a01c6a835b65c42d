package history

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// Writer writes one worker's lines: each Line is marshalled and written with a single Write call
// (a whole line with its newline), so a reader never sees two lines interleaved, and a line is
// flushed before the call returns when w is an *os.File or has a Flush method. Safe for
// concurrent use. Write errors are returned; once one happened, every later call returns it.
type Writer struct {
	worker string

	mu  sync.Mutex
	w   io.Writer // guarded by mu
	op  int64     // guarded by mu: the last operation id handed out
	err error     // guarded by mu: the first write error
}

// NewWriter returns a Writer that writes lines of worker to w.
func NewWriter(w io.Writer, worker string) *Writer { return &Writer{w: w, worker: worker} }

// Write writes l with the writer's worker name and, if l.Time is zero, the time now.
func (w *Writer) Write(l Line) error {
	l.Worker = w.worker
	if l.Time == 0 {
		l.Time = Now()
	}
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("history: marshal %s line: %w", l.Type, err)
	}
	b = append(b, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if _, err := w.w.Write(b); err != nil {
		w.err = fmt.Errorf("history: write: %w", err)
		return w.err
	}
	if f, ok := w.w.(interface{ Flush() error }); ok {
		if err := f.Flush(); err != nil {
			w.err = fmt.Errorf("history: flush: %w", err)
			return w.err
		}
	}
	return nil
}

// Value marshals v for a Line's Value. It panics if v cannot be marshalled: the workload value
// types always can.
func Value(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("history: marshal value: " + err.Error())
	}
	return b
}

// Invoke writes an invoke line for operation f with input v (nil: none) and returns the new
// operation's id, for its completion.
func (w *Writer) Invoke(f string, v any) (int64, error) { return w.InvokeNS(f, nil, v) }

// InvokeNS is Invoke for an operation that writes namespaces ns (Line.NS).
func (w *Writer) InvokeNS(f string, ns []string, v any) (int64, error) {
	w.mu.Lock()
	w.op++
	op := w.op
	w.mu.Unlock()
	l := Line{Type: Invoke, Op: op, F: f, NS: ns}
	if v != nil {
		l.Value = Value(v)
	}
	return op, w.Write(l)
}

// Complete writes the completion of operation op: typ is OK, Fail or Unknown, v (nil: none)
// what it read and wrote, err why it failed (nil: no error).
func (w *Writer) Complete(typ Type, op int64, f string, tsn, snap uint64, v any, err error) error {
	if !typ.Completes() {
		return fmt.Errorf("history: %s does not complete an operation", typ)
	}
	l := Line{Type: typ, Op: op, F: f, TSN: tsn, Snap: snap}
	if v != nil {
		l.Value = Value(v)
	}
	if err != nil {
		l.Err = err.Error()
	}
	return w.Write(l)
}
