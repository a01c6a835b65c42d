package history

import (
	"encoding/json"
	"fmt"
)

// Type is the kind of a Line.
type Type string

// Line types.
const (
	Ready   Type = "ready"   // setup done; Value is a ReadyInfo
	Invoke  Type = "invoke"  // an operation starts; Value is its input
	OK      Type = "ok"      // the operation happened
	Fail    Type = "fail"    // the operation certainly did not happen
	Unknown Type = "unknown" // the operation may or may not have happened
	Event   Type = "event"   // an observation that is not an operation (a change feed event)
	Summary Type = "summary" // the worker stops; Value is a SummaryInfo
	Info    Type = "info"    // anything else worth keeping (setup details)
)

// Completes reports whether t ends an operation (ok, fail or unknown).
func (t Type) Completes() bool { return t == OK || t == Fail || t == Unknown }

// Line is one line of a worker's output.
type Line struct {
	Type   Type   `json:"type"`
	Worker string `json:"worker"`
	// Op is the worker's operation id, shared by an invoke and its completion (from 1).
	Op int64 `json:"op,omitempty"`
	// F names the operation ("transfer", "read", "incr", "write", "cas", "txn", "hold").
	F string `json:"f,omitempty"`
	// Time is CLOCK_MONOTONIC in nanoseconds when the line was made (see Now).
	Time int64 `json:"time"`
	// TSN is the commit TSN of an ok write; Snap the snapshot TSN the operation read at.
	TSN  uint64 `json:"tsn,omitempty"`
	Snap uint64 `json:"snap,omitempty"`
	// Value is the operation's input (invoke) or what it read and wrote (completion).
	Value json.RawMessage `json:"value,omitempty"`
	Err   string          `json:"err,omitempty"`
	// NS names the namespaces a writing operation writes (on its invoke line, so that an
	// operation of unknown outcome says it too, and on its completion), or, on an event line,
	// the namespaces of the event's changes.
	NS []string `json:"ns,omitempty"`
	// Conflicts is how many commit attempts of the operation lost validation (and were retried,
	// or made it fail), on its completion line.
	Conflicts int `json:"conflicts,omitempty"`
}

// Decode decodes the line's value into v.
func (l Line) Decode(v any) error {
	if len(l.Value) == 0 {
		return fmt.Errorf("history: %s line of %s op %d has no value", l.Type, l.Worker, l.Op)
	}
	if err := json.Unmarshal(l.Value, v); err != nil {
		return fmt.Errorf("history: %s line of %s op %d: %w", l.Type, l.Worker, l.Op, err)
	}
	return nil
}

// String returns the line as JSON.
func (l Line) String() string {
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Sprintf("history: %s line of %s op %d: %v", l.Type, l.Worker, l.Op, err)
	}
	return string(b)
}

// ReadyInfo is the value of a ready line.
type ReadyInfo struct {
	PID      int    `json:"pid"`
	Workload string `json:"workload"`
	Dir      string `json:"dir"`
	// Format is the store's format; Lineage the store's lineage at ready (worker flag -lineage).
	Format  string `json:"format,omitempty"`
	Lineage string `json:"lineage,omitempty"`
	// ID is the worker's handle id in the store's process registry (txtdb.DB.ID): what its
	// commits, and so the change feed's events and the queue's claims, name it by.
	ID string `json:"id,omitempty"`
	// From is, for an events worker, the TSN its subscription starts after; Filter its
	// subscription's namespaces (empty: all).
	From   uint64   `json:"from,omitempty"`
	Filter []string `json:"filter,omitempty"`
}

// SummaryInfo is the value of a summary line: what the worker did.
type SummaryInfo struct {
	Ops       int64 `json:"ops"`       // operations invoked
	OK        int64 `json:"ok"`        // completed ok
	Fail      int64 `json:"fail"`      // completed fail
	Unknown   int64 `json:"unknown"`   // completed unknown
	Commits   int64 `json:"commits"`   // commits that returned nil with a TSN
	Conflicts int64 `json:"conflicts"` // commit attempts that lost validation (retried or not)
	Errors    int64 `json:"errors"`    // operations that failed with an error other than a conflict
}

// Bank values.

// Transfer moves Amount from account From to account To (indexes into the accounts). On the ok
// line Amount is what was moved (at most the balance of From).
type Transfer struct {
	From   int   `json:"from"`
	To     int   `json:"to"`
	Amount int64 `json:"amount"`
}

// Balances is what a bank read saw: every account's balance at the line's Snap.
type Balances []int64

// Counter values.

// Incr increments counter Key; on the ok line Value is the counter's new value.
type Incr struct {
	Key   int   `json:"key"`
	Value int64 `json:"value,omitempty"`
}

// Counters is what a counter read saw: every counter at the line's Snap.
type Counters []int64

// Register values.

// Reg is a register operation's value: read (Value read, on ok), write (Value written) or cas
// (From -> To; Swapped on ok says whether the register held From).
type Reg struct {
	Key     int   `json:"key"`
	Value   int64 `json:"value,omitempty"`
	From    int64 `json:"from,omitempty"`
	To      int64 `json:"to,omitempty"`
	Swapped bool  `json:"swapped,omitempty"`
}

// Queue values.

// Job is a queue operation's value: produce (Job, the job's name, unique in the run; Page on
// ok), claim and complete (Job and Page; Claimer the registry id the job is claimed by, Reclaim
// the id of the earlier claimer a claim took the job from, if any).
type Job struct {
	Job     string `json:"job"`
	Page    string `json:"page,omitempty"`
	Claimer string `json:"claimer,omitempty"`
	Reclaim string `json:"reclaim,omitempty"`
	// ClaimedAt is, in a read, the claimer's wall clock at the claim (Unix ns; for the lease).
	ClaimedAt int64 `json:"claimed_at,omitempty"`
}

// Jobs is what a queue read saw: every job in the queue at the line's Snap (done jobs are
// deleted, so these are the ones waiting or claimed).
type Jobs []Job

// Events values.

// FeedEvent is the value of an event line: the committing handle's registry id (Event.Process)
// and the kinds of the event's changes; the line's TSN and NS hold its TSN and namespaces.
type FeedEvent struct {
	Process string   `json:"process"`
	Kinds   []string `json:"kinds"`
}
