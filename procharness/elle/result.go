package elle

import (
	"fmt"
	"strings"
)

// Dep is the kind of a dependency edge between two transactions.
type Dep uint8

// Dependency kinds, after Adya. Each edge T1 -> T2 says T1 must come before T2
// in any serial order that explains the history.
const (
	// WW: T2 appended the next element after one T1 appended to a key.
	WW Dep = iota + 1
	// WR: T2 read a list whose last element T1 appended.
	WR
	// RW (anti-dependency): T1 read a list that T2's append extends, that is,
	// T1 did not see T2's append.
	RW
	// RT (real time): T1 committed before T2 was invoked. Used only under
	// StrictSerializable.
	RT
)

// String returns "ww", "wr", "rw" or "rt".
func (d Dep) String() string {
	switch d {
	case WW:
		return "ww"
	case WR:
		return "wr"
	case RW:
		return "rw"
	case RT:
		return "rt"
	}
	return fmt.Sprintf("Dep(%d)", uint8(d))
}

// MarshalText encodes d as its String.
func (d Dep) MarshalText() ([]byte, error) {
	if d < WW || d > RT {
		return nil, fmt.Errorf("elle: invalid dependency %d", uint8(d))
	}
	return []byte(d.String()), nil
}

// UnmarshalText decodes a name returned by String.
func (d *Dep) UnmarshalText(b []byte) error {
	for v := WW; v <= RT; v++ {
		if v.String() == string(b) {
			*d = v
			return nil
		}
	}
	return fmt.Errorf("elle: unknown dependency %q", b)
}

// Step is one edge of a dependency cycle: From and To are transaction
// Indexes, Key the key that gave rise to the edge (empty for RT).
type Step struct {
	From int    `json:"from"`
	To   int    `json:"to"`
	Dep  Dep    `json:"dep"`
	Key  string `json:"key,omitempty"`
}

// Anomaly is one anomaly found in a history, with its explanation.
//
// Txns are the transactions involved: for a cycle, in cycle order (each
// before the next, the last before the first); for G1a and G1b the reader
// then the writer; for LostUpdate the transactions that read the same version
// and appended; for Internal, Duplicate and Garbage the one transaction; for
// IncompatibleOrder the two readers. Key is the key involved, except for
// cycles, whose keys are on the Steps.
type Anomaly struct {
	Kind        Kind   `json:"kind"`
	RealTime    bool   `json:"realtime,omitempty"`
	Key         string `json:"key,omitempty"`
	Txns        []Txn  `json:"txns"`
	Cycle       []Step `json:"cycle,omitempty"`
	Explanation string `json:"explanation"`
}

// Name returns the kind's name, with a "-realtime" suffix for cycles that
// need a real-time edge.
func (a Anomaly) Name() string {
	if a.RealTime {
		return a.Kind.String() + "-realtime"
	}
	return a.Kind.String()
}

// String returns the name and the explanation.
func (a Anomaly) String() string {
	return a.Name() + ": " + a.Explanation
}

// Result is the verdict on one history.
type Result struct {
	// Level is the isolation level the history was checked against.
	Level Level `json:"level"`
	// Valid is true when no anomaly Level forbids was found.
	Valid bool `json:"valid"`
	// Anomalies lists every anomaly found, forbidden at Level or not,
	// grouped by kind in Kind order.
	Anomalies []Anomaly `json:"anomalies,omitempty"`
	// Counts maps an anomaly's Name to how many were found.
	Counts map[string]int `json:"counts"`
	// Txns is the number of transactions checked; Committed counts those in
	// the dependency graph (ok, plus info transactions whose appends were
	// read).
	Txns      int `json:"txns"`
	Committed int `json:"committed"`
	// Truncated is true when a cycle search ran out of its budget in some
	// strongly connected component: that component has a cycle (reported),
	// but a G-single cycle in it may have been reported as G2-item.
	Truncated bool `json:"truncated,omitempty"`
}

// Kinds returns the distinct kinds found, in Kind order.
func (r *Result) Kinds() []Kind {
	var seen [len(kindNames) + 1]bool
	for _, a := range r.Anomalies {
		if int(a.Kind) < len(seen) {
			seen[a.Kind] = true
		}
	}
	var out []Kind
	for _, k := range Kinds() {
		if seen[k] {
			out = append(out, k)
		}
	}
	return out
}

// Failures returns the anomalies Level forbids.
func (r *Result) Failures() []Anomaly {
	var out []Anomaly
	for _, a := range r.Anomalies {
		if r.Level.Forbids(a.Kind) {
			out = append(out, a)
		}
	}
	return out
}

// maxPerKind bounds how many anomalies of one kind String prints.
const maxPerKind = 5

// String returns a human-readable report: the verdict, the counts, and up to
// a few anomalies of each kind with their explanations.
func (r *Result) String() string {
	var b strings.Builder
	verdict := "valid"
	if !r.Valid {
		verdict = "INVALID"
	}
	fmt.Fprintf(&b, "list-append history: %s at %s (%d txns, %d in the dependency graph)\n",
		verdict, r.Level, r.Txns, r.Committed)
	if len(r.Anomalies) == 0 {
		b.WriteString("no anomalies\n")
		return b.String()
	}
	shown := map[string]int{}
	for _, a := range r.Anomalies {
		n := a.Name()
		shown[n]++
		switch c := shown[n]; {
		case c == 1:
			allowed := ""
			if !r.Level.Forbids(a.Kind) {
				allowed = ", allowed at " + r.Level.String()
			}
			fmt.Fprintf(&b, "%s: %d%s\n", n, r.Counts[n], allowed)
			fallthrough
		case c <= maxPerKind:
			fmt.Fprintf(&b, "  - %s\n", a.Explanation)
		case c == maxPerKind+1:
			fmt.Fprintf(&b, "  ... and %d more\n", r.Counts[n]-maxPerKind)
		}
	}
	if r.Truncated {
		b.WriteString("cycle search truncated: a G-single may be reported as G2-item\n")
	}
	return b.String()
}
