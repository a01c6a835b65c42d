package elle

import "fmt"

// Kind is a class of anomaly.
type Kind uint8

// Anomaly kinds. The cycle kinds (G0, G1c, GSingle, G2Item) are classified by
// the dependency edges of a witness cycle; the others by looking at single
// reads or pairs of them.
const (
	// G0 (write cycle): a cycle of ww edges only.
	G0 Kind = iota + 1
	// G1a (aborted read): a committed read observes a value appended by a
	// failed transaction.
	G1a
	// G1b (intermediate read): a committed read of a key ends at a value that
	// another transaction appended but followed with more appends to that key.
	G1b
	// G1c (circular information flow): a cycle of ww and wr edges with at
	// least one wr edge.
	G1c
	// LostUpdate: two committed transactions read the same version of a key
	// and both append to it.
	LostUpdate
	// GSingle (read skew): a cycle with exactly one rw edge.
	GSingle
	// G2Item (write skew and kin): a cycle with two or more rw edges.
	G2Item
	// Internal: a transaction's read disagrees with its own earlier appends
	// or reads of the key, or observes a value it appends only later.
	Internal
	// IncompatibleOrder: two committed reads of a key where neither is a
	// prefix of the other, so no single version order explains both.
	IncompatibleOrder
	// Duplicate: a committed read holds the same value twice.
	Duplicate
	// Garbage: a committed read holds a value that no transaction appended.
	Garbage
)

// kindNames are the String forms, in Kind order from G0.
var kindNames = [...]string{
	"G0", "G1a", "G1b", "G1c", "lost-update", "G-single", "G2-item",
	"internal", "incompatible-order", "duplicate", "garbage",
}

// Kinds returns every Kind, in order.
func Kinds() []Kind {
	out := make([]Kind, len(kindNames))
	for i := range out {
		out[i] = Kind(i + 1)
	}
	return out
}

// String returns the kind's name: "G0", "G1a", "G1b", "G1c", "lost-update",
// "G-single", "G2-item", "internal", "incompatible-order", "duplicate" or
// "garbage".
func (k Kind) String() string {
	if k >= G0 && int(k) <= len(kindNames) {
		return kindNames[k-1]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// ParseKind parses a name returned by Kind.String.
func ParseKind(s string) (Kind, error) {
	for i, n := range kindNames {
		if n == s {
			return Kind(i + 1), nil
		}
	}
	return 0, fmt.Errorf("elle: unknown anomaly kind %q", s)
}

// MarshalText encodes k as its String.
func (k Kind) MarshalText() ([]byte, error) {
	if k < G0 || int(k) > len(kindNames) {
		return nil, fmt.Errorf("elle: invalid anomaly kind %d", uint8(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText decodes a name returned by String.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// cycle reports whether k is found as a dependency cycle.
func (k Kind) cycle() bool {
	return k == G0 || k == G1c || k == GSingle || k == G2Item
}

// Level is the isolation level a history is checked against: it decides
// which anomalies make a history invalid (all are reported either way).
type Level uint8

// Isolation levels, weakest first (Adya's PL-2, PL-SI, PL-3, PL-SS).
const (
	// ReadCommitted forbids G0, G1a, G1b and G1c.
	ReadCommitted Level = iota + 1
	// SnapshotIsolation forbids, in addition, lost updates and G-single; it
	// permits G2-item (write skew).
	SnapshotIsolation
	// Serializable forbids, in addition, G2-item. It is the default.
	Serializable
	// StrictSerializable is Serializable plus real-time order: a transaction
	// whose Start is after a committed transaction's End must be ordered
	// after it. Cycles that need a real-time edge are reported with
	// Anomaly.RealTime set, and only at this level.
	StrictSerializable
)

// levelNames are the String forms, in Level order from ReadCommitted.
var levelNames = [...]string{"read-committed", "snapshot-isolation", "serializable", "strict-serializable"}

// String returns "read-committed", "snapshot-isolation", "serializable" or
// "strict-serializable".
func (l Level) String() string {
	if l >= ReadCommitted && int(l) <= len(levelNames) {
		return levelNames[l-1]
	}
	return fmt.Sprintf("Level(%d)", uint8(l))
}

// ParseLevel parses a name returned by Level.String.
func ParseLevel(s string) (Level, error) {
	for i, n := range levelNames {
		if n == s {
			return Level(i + 1), nil
		}
	}
	return 0, fmt.Errorf("elle: unknown isolation level %q", s)
}

// MarshalText encodes l as its String.
func (l Level) MarshalText() ([]byte, error) {
	if l < ReadCommitted || int(l) > len(levelNames) {
		return nil, fmt.Errorf("elle: invalid isolation level %d", uint8(l))
	}
	return []byte(l.String()), nil
}

// UnmarshalText decodes a name returned by String.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Forbids reports whether an anomaly of kind k makes a history invalid at
// level l. Internal, IncompatibleOrder, Duplicate and Garbage are forbidden
// at every level: no list store may produce them.
func (l Level) Forbids(k Kind) bool {
	switch k {
	case Internal, IncompatibleOrder, Duplicate, Garbage, G0, G1a, G1b, G1c:
		return true
	case LostUpdate, GSingle:
		return l >= SnapshotIsolation
	case G2Item:
		return l >= Serializable
	}
	return false
}
