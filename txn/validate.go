package txn

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/txtdb/txtdb/pages"
)

// overlay holds what the members accepted earlier in the same commit group changed, with the TSNs
// they will get, so later members are validated against them too.
type overlay struct {
	pages    map[pageKey]pages.TSN
	names    map[string]pages.TSN
	sets     map[string]pages.TSN // incarnation -> page set changed
	reserved map[string]uint64
}

func newOverlay() *overlay {
	return &overlay{
		pages:    map[pageKey]pages.TSN{},
		names:    map[string]pages.TSN{},
		sets:     map[string]pages.TSN{},
		reserved: map[string]uint64{},
	}
}

// add records an accepted member's changes. REQUIRES: idx.mu held (read).
func (ov *overlay) add(idx *index, r *record) {
	for i := range r.Ops {
		o := &r.Ops[i]
		switch o.Kind {
		case opPut, opAppend, opDel:
			key := pageKey{inc: o.Inc, page: o.PageNo}
			if o.Kind == opDel || (idx.pageTSN(o.Inc, o.PageNo) == 0 && ov.pages[key] == 0) {
				ov.sets[o.Inc] = r.TSN
			}
			ov.pages[key] = r.TSN
		case opCreate, opDrop:
			ov.names[o.NS] = r.TSN
		case opRename:
			ov.names[o.NS] = r.TSN
			ov.names[o.To] = r.TSN
		}
	}
}

// under reports whether name is prefix or lies below it; every name lies below "".
func under(name, prefix string) bool {
	return prefix == "" || name == prefix || strings.HasPrefix(name, prefix+".")
}

// validate decides whether tx may commit after everything committed and everything accepted
// before it in this group. REQUIRES: commit lock held, index caught up to state, idx.mu held (read).
func (db *DB) validate(idx *index, tx *Tx, ov *overlay) error {
	snap := tx.snap
	ser := tx.iso == Serializable
	conflict := func(ns, page string, t pages.TSN, reason string) error {
		return &ConflictError{Namespace: ns, Page: page, Snapshot: snap, Committed: t, Reason: reason}
	}
	if tx.idx != idx {
		// The snapshot belongs to a history that was rebuilt or rewound since: its TSNs mean
		// something else now.
		return conflict("", "", idx.applied, "lineage")
	}
	// Namespaces written into, created, renamed or deleted must still be what the snapshot saw
	// (under both levels: nothing lands in a dead or moved namespace); namespaces only read
	// matter under Serializable.
	for name, written := range tx.rs.nsDeps {
		if !written && !ser {
			continue
		}
		if t := max(idx.nameTSN(name), ov.names[name]); t > snap {
			return conflict(name, "", t, "namespace")
		}
	}
	prefixes := slices.Collect(maps.Keys(tx.rs.prefixes))
	if tx.rs.listed && ser {
		prefixes = append(prefixes, "") // Namespaces read the whole set of names
	}
	for _, prefix := range prefixes {
		name, t := idx.prefixTSN(prefix)
		for n, ot := range ov.names {
			if ot > t && under(n, prefix) {
				name, t = n, ot
			}
		}
		if t > snap {
			return conflict(name, "", t, "namespace")
		}
	}
	for key, w := range tx.ws.writes {
		if t := max(idx.pageTSN(key.inc, key.page), ov.pages[key]); t > snap {
			return conflict(w.ns, pages.PageID(key.page), t, "write")
		}
	}
	if !ser {
		return nil
	}
	for key, r := range tx.rs.reads {
		if t := max(idx.pageTSN(key.inc, key.page), ov.pages[key]); t > snap {
			return conflict(r.ns, pages.PageID(key.page), t, "read")
		}
	}
	for inc, ns := range tx.rs.scans {
		var t pages.TSN
		if in := idx.incs[inc]; in != nil {
			t = in.setTSN
		}
		if t = max(t, ov.sets[inc]); t > snap {
			return conflict(ns, "", t, "scan")
		}
	}
	return nil
}

// reserveLocked hands out the next block of page IDs of an incarnation.
// REQUIRES: commit lock held, index caught up, idx.mu held (read).
func (db *DB) reserveLocked(idx *index, res *reservation, ov *overlay) error {
	in := idx.incs[res.inc]
	if in == nil {
		// Forgotten (dropped long ago): the inserting transaction cannot commit anyway.
		return fmt.Errorf("%w: %q", ErrNamespaceNotFound, res.ns)
	}
	res.from = max(in.reserved, ov.reserved[res.inc], 1)
	res.upto = res.from + res.n
	ov.reserved[res.inc] = res.upto
	return nil
}
