package history

import (
	"encoding/json"
	"fmt"
)

// Txn is the value of a list-append transaction (f "txn"), Elle's notation: a list of micro-ops,
// each ["append", key, value] or ["r", key, list]. On the invoke line a read's list is null; on
// the ok line it is the list the transaction read (its own appends included). Values appended
// to one key are unique across all workers.
type Txn []MicroOp

// MicroOp is one micro-op of a Txn. F is "append" or "r"; Value is the appended value; Read the
// list read (nil: not read yet, on an invoke line).
type MicroOp struct {
	F     string
	Key   int
	Value int64
	Read  []int64
}

// Micro-op names.
const (
	OpAppend = "append"
	OpRead   = "r"
)

// MarshalJSON writes the micro-op as a JSON array.
func (m MicroOp) MarshalJSON() ([]byte, error) {
	switch m.F {
	case OpAppend:
		return json.Marshal([]any{m.F, m.Key, m.Value})
	case OpRead:
		if m.Read == nil {
			return json.Marshal([]any{m.F, m.Key, nil})
		}
		return json.Marshal([]any{m.F, m.Key, m.Read})
	}
	return nil, fmt.Errorf("history: micro-op %q", m.F)
}

// UnmarshalJSON reads a micro-op written by MarshalJSON.
func (m *MicroOp) UnmarshalJSON(b []byte) error {
	var parts []json.RawMessage
	if err := json.Unmarshal(b, &parts); err != nil {
		return err
	}
	if len(parts) != 3 {
		return fmt.Errorf("history: micro-op %s: want 3 elements", b)
	}
	var out MicroOp
	if err := json.Unmarshal(parts[0], &out.F); err != nil {
		return err
	}
	if err := json.Unmarshal(parts[1], &out.Key); err != nil {
		return err
	}
	switch out.F {
	case OpAppend:
		if err := json.Unmarshal(parts[2], &out.Value); err != nil {
			return err
		}
	case OpRead:
		if string(parts[2]) != "null" {
			out.Read = []int64{}
			if err := json.Unmarshal(parts[2], &out.Read); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("history: micro-op %q", out.F)
	}
	*m = out
	return nil
}
