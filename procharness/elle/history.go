package elle

import (
	"errors"
	"fmt"
)

// Type is the outcome of a transaction as the client saw it.
type Type uint8

// Outcomes. The zero Type is not valid, so a forgotten field is an error
// rather than a silent commit.
const (
	// OK means the transaction committed.
	OK Type = iota + 1
	// Fail means the transaction certainly did not commit.
	Fail
	// Info means the outcome is unknown (a timeout, or the worker was killed
	// between invoke and completion): the transaction may or may not have
	// committed.
	Info
)

// String returns "ok", "fail" or "info".
func (t Type) String() string {
	switch t {
	case OK:
		return "ok"
	case Fail:
		return "fail"
	case Info:
		return "info"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// ParseType parses "ok", "fail" or "info".
func ParseType(s string) (Type, error) {
	switch s {
	case "ok":
		return OK, nil
	case "fail":
		return Fail, nil
	case "info":
		return Info, nil
	}
	return 0, fmt.Errorf("elle: unknown txn type %q", s)
}

// MarshalText encodes t as its String.
func (t Type) MarshalText() ([]byte, error) {
	if t < OK || t > Info {
		return nil, fmt.Errorf("elle: invalid txn type %d", uint8(t))
	}
	return []byte(t.String()), nil
}

// UnmarshalText decodes a name returned by String.
func (t *Type) UnmarshalText(b []byte) error {
	v, err := ParseType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Func is what a micro-operation does.
type Func uint8

// Micro-operation functions. The zero Func is not valid.
const (
	// Append appends MicroOp.Value to the list at MicroOp.Key.
	Append Func = iota + 1
	// Read reads the whole list at MicroOp.Key into MicroOp.List.
	Read
)

// String returns "append" or "r".
func (f Func) String() string {
	switch f {
	case Append:
		return "append"
	case Read:
		return "r"
	}
	return fmt.Sprintf("Func(%d)", uint8(f))
}

// ParseFunc parses "append" or "r".
func ParseFunc(s string) (Func, error) {
	switch s {
	case "append":
		return Append, nil
	case "r":
		return Read, nil
	}
	return 0, fmt.Errorf("elle: unknown micro-op %q", s)
}

// MarshalText encodes f as its String.
func (f Func) MarshalText() ([]byte, error) {
	if f != Append && f != Read {
		return nil, fmt.Errorf("elle: invalid micro-op %d", uint8(f))
	}
	return []byte(f.String()), nil
}

// UnmarshalText decodes a name returned by String.
func (f *Func) UnmarshalText(b []byte) error {
	v, err := ParseFunc(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// MicroOp is one step of a transaction: an append of Value to the list at
// Key, or a read of the list at Key. List is the read's result; nil means the
// result is not known (always so in fail and info transactions), while an
// empty non-nil list is a read of an empty or missing list. In JSON, `"list":
// []` is an empty read and a missing or null list an unknown one.
type MicroOp struct {
	F     Func   `json:"f"`
	Key   string `json:"key"`
	Value int    `json:"value,omitempty"`
	List  []int  `json:"list"`
}

// Txn is one transaction of a history, as the client saw it: its operations
// in program order and its outcome.
//
// Index identifies the transaction in reports; the worker numbers
// transactions by their position in the history. Start and End are the
// host-wide monotonic times (nanoseconds) at which the client invoked the
// transaction and saw its outcome; zero means unknown. They are used only
// under StrictSerializable, which orders a transaction after every committed
// one whose End is before its Start.
type Txn struct {
	Process string    `json:"process"`
	Index   int       `json:"index"`
	Type    Type      `json:"type"`
	Start   int64     `json:"start,omitempty"`
	End     int64     `json:"end,omitempty"`
	Ops     []MicroOp `json:"ops"`
}

// ErrInvalidHistory reports a history Check cannot interpret: an unknown
// transaction type or micro-op, or a value appended twice to one key (the
// list-append workload appends unique values, so that every value read names
// the one transaction that wrote it). Details travel in *HistoryError.
var ErrInvalidHistory = errors.New("elle: invalid history")

// HistoryError says which transaction and micro-op of a history is invalid
// and why (Txn is the position in the slice given to Check; Op is -1 when the
// transaction as a whole is at fault). It unwraps to ErrInvalidHistory.
type HistoryError struct {
	Txn    int
	Op     int
	Reason string
}

// Error returns "elle: invalid history: txn <n> op <m>: <reason>".
func (e *HistoryError) Error() string {
	if e.Op < 0 {
		return fmt.Sprintf("elle: invalid history: txn %d: %s", e.Txn, e.Reason)
	}
	return fmt.Sprintf("elle: invalid history: txn %d op %d: %s", e.Txn, e.Op, e.Reason)
}

// Unwrap returns ErrInvalidHistory.
func (e *HistoryError) Unwrap() error { return ErrInvalidHistory }
