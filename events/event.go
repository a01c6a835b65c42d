package events

import (
	"fmt"
	"strings"
	"time"

	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// Kind is the kind of one change, as the commit log records it.
type Kind uint8

// Change kinds, as the log records them. A new page (Insert) and a replaced one (Update) carry the
// whole page: after either, the page holds exactly the change's Objects. Appends (inserts into an
// existing page, keyed appends) carry only the new objects. A keyed append that the committer
// wrote whole (a put with keys: the page's run of appends was full) is an Update with the whole
// page.
const (
	Insert          Kind = iota + 1 // put of a page the transaction created: it holds exactly Objects
	Update                          // put of an existing page: it now holds exactly Objects
	Append                          // append (also keyed): Objects were appended to the page's previous contents
	Delete                          // del: the page was deleted
	NamespaceCreate                 // create: Namespace was created
	NamespaceDelete                 // drop: Namespace was deleted (one change per namespace of the subtree)
	NamespaceRename                 // rename: Namespace was renamed to NewName (one change per namespace of the subtree)
)

var kindNames = [...]string{Insert: "insert", Update: "update", Append: "append", Delete: "delete",
	NamespaceCreate: "namespace-create", NamespaceDelete: "namespace-delete", NamespaceRename: "namespace-rename"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind parses the names String returns.
func ParseKind(s string) (Kind, error) {
	for k, n := range kindNames {
		if n != "" && n == s {
			return Kind(k), nil
		}
	}
	return 0, fmt.Errorf("txtdb: events: unknown change kind %q", s)
}

// MarshalText writes the kind's name (for JSON output).
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses a kind's name.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	*k = v
	return err
}

// Change is one change of a committed transaction.
type Change struct {
	Kind      Kind           `json:"kind"`
	Namespace string         `json:"ns"`                 // the namespace (for a rename, its old name)
	NewName   string         `json:"new_name,omitempty"` // a rename's new name
	Page      string         `json:"page,omitempty"`     // page ID for page changes
	Objects   []pages.Object `json:"objects,omitempty"`  // with SubscribeOptions.Values: what the change wrote
}

// Event is one committed transaction, with the changes that matched the subscription's filter
// (in log order).
type Event struct {
	TSN pages.TSN `json:"tsn"`
	// Process is the committing handle's id (txtdb.DB.ID: its entry in the process registry).
	Process string `json:"process,omitempty"`
	// Time is the committer's wall clock when it gave the commit its TSN (informational: wall
	// clocks of one host can step, so it does not order events; TSN does).
	Time    time.Time `json:"time,omitzero"`
	Changes []Change  `json:"changes"`
}

// filter is a namespace filter: a name matches itself and its children ("a" matches "a.b", not
// "ab"); no names match everything.
type filter []string

func (f filter) match(ns string) bool {
	if len(f) == 0 {
		return true
	}
	for _, p := range f {
		if ns == p || (strings.HasPrefix(ns, p) && len(ns) > len(p) && ns[len(p)] == '.') {
			return true
		}
	}
	return false
}

// eventOf returns the event a commit record makes for filter f, or false if no change matches.
// A rename matches on either name.
func eventOf(r *wal.Record, f filter, values bool) (Event, bool) {
	ev := Event{TSN: r.TSN, Process: r.Proc}
	if r.Time != 0 {
		ev.Time = time.Unix(0, r.Time)
	}
	for i := range r.Ops {
		o := &r.Ops[i]
		var c Change
		switch o.Kind {
		case wal.OpPut:
			c = Change{Kind: Update, Page: o.Page}
			if o.New {
				c.Kind = Insert
			}
		case wal.OpAppend:
			c = Change{Kind: Append, Page: o.Page}
		case wal.OpDel:
			c = Change{Kind: Delete, Page: o.Page}
		case wal.OpCreate:
			c = Change{Kind: NamespaceCreate}
		case wal.OpDrop:
			c = Change{Kind: NamespaceDelete}
		case wal.OpRename:
			c = Change{Kind: NamespaceRename, NewName: o.To}
		default:
			continue // reserve: no change
		}
		c.Namespace = o.NS
		if !f.match(o.NS) && (o.Kind != wal.OpRename || !f.match(o.To)) {
			continue
		}
		if values && (o.Kind == wal.OpPut || o.Kind == wal.OpAppend) {
			c.Objects = o.Objects
		}
		ev.Changes = append(ev.Changes, c)
	}
	return ev, len(ev.Changes) > 0
}
