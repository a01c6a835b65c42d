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
	pages    map[pageKey]pages.TSN            // any change of the page
	whole    map[pageKey]pages.TSN            // a change of the page that is not keyed
	keyed    map[pageKey]map[string]pages.TSN // keyed changes of the page, by key
	runs     map[pageKey]int                  // the page's run of appends after the members' changes
	changes  map[pageKey][]*op                // the members' changes of the page, in order
	names    map[string]pages.TSN
	sets     map[string]pages.TSN // incarnation -> page set changed
	reserved map[string]uint64
}

func newOverlay() *overlay {
	return &overlay{
		pages:    map[pageKey]pages.TSN{},
		whole:    map[pageKey]pages.TSN{},
		keyed:    map[pageKey]map[string]pages.TSN{},
		runs:     map[pageKey]int{},
		changes:  map[pageKey][]*op{},
		names:    map[string]pages.TSN{},
		sets:     map[string]pages.TSN{},
		reserved: map[string]uint64{},
	}
}

// conversion is a keyed append that is to be written whole: it would make the page's run of
// appends longer than maxAppends. prior are the changes of the page by members accepted before
// it in the group (keyed ones: anything else makes the keyed append conflict), in order.
type conversion struct {
	req   *request
	i     int // the op's index in req.ops
	prior []*op
}

// add records an accepted member's changes and returns its keyed appends that must be written
// whole (their run of appends would pass maxAppends). REQUIRES: idx.mu held (read); r.Ops is
// req.ops.
func (ov *overlay) add(idx *index, req *request, r *record) []conversion {
	var convs []conversion
	for i := range r.Ops {
		o := &r.Ops[i]
		switch o.Kind {
		case opPut, opAppend, opDel:
			key := pageKey{inc: o.Inc, page: o.PageNo}
			if o.Kind == opDel || (idx.pageTSN(o.Inc, o.PageNo) == 0 && ov.pages[key] == 0) {
				ov.sets[o.Inc] = r.TSN
			}
			ov.pages[key] = r.TSN
			if o.Keys == nil {
				ov.whole[key] = r.TSN
			} else {
				m := ov.keyed[key]
				if m == nil {
					m = map[string]pages.TSN{}
					ov.keyed[key] = m
				}
				for _, k := range o.Keys {
					m[k] = r.TSN
				}
			}
			run := 0
			if o.Kind == opAppend {
				run = ov.run(idx, key) + 1
			}
			// Insert's appends are bounded when they are made (the page cannot change before
			// they commit); a keyed append's run is known only now.
			if run > maxAppends && o.Keys != nil {
				convs = append(convs, conversion{req: req, i: i, prior: slices.Clone(ov.changes[key])})
				run = 0
			}
			ov.runs[key] = run
			ov.changes[key] = append(ov.changes[key], o)
		case opCreate, opDrop:
			ov.names[o.NS] = r.TSN
		case opRename:
			ov.names[o.NS] = r.TSN
			ov.names[o.To] = r.TSN
		}
	}
	return convs
}

// run returns the page's run of appends after the members' changes.
// REQUIRES: idx.mu held (read).
func (ov *overlay) run(idx *index, key pageKey) int {
	if n, ok := ov.runs[key]; ok {
		return n
	}
	if in := idx.incs[key.inc]; in != nil {
		if h := in.pages[key.page]; h != nil {
			return h.latest().appends
		}
	}
	return 0
}

// keyedChange returns the newest change after snap, committed or by a member accepted earlier in
// the group, that a keyed change or read of the page under keys depends on, and the key it
// shares ("" if it is not keyed); 0 if none. REQUIRES: idx.mu held (read); the page existed at snap.
func (ov *overlay) keyedChange(idx *index, key pageKey, snap pages.TSN, keys []string) (pages.TSN, string) {
	if t, k := idx.keyedTSN(key.inc, key.page, snap, keys); t > snap {
		return t, k
	}
	if t := ov.whole[key]; t != 0 {
		return t, ""
	}
	for _, k := range keys {
		if t := ov.keyed[key][k]; t != 0 {
			return t, k
		}
	}
	return 0, ""
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
	keyConflict := func(ns, page string, t pages.TSN, reason, key string) error {
		return &ConflictError{Namespace: ns, Page: page, Snapshot: snap, Committed: t, Reason: reason, Key: key}
	}
	if tx.idx != idx {
		// The snapshot belongs to a history that was rebuilt or rewound since: its TSNs mean
		// something else now.
		return conflict("", "", idx.applied, "lineage")
	}
	// Namespaces written into, created, renamed or deleted must still be what the snapshot saw
	// (under both levels: nothing lands in a dead or moved namespace); namespaces only read
	// matter under Serializable.
	for name, written := range tx.rs.nsDeps.all() {
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
	// A keyed append (under both levels: it is a write) depends only on changes that are not keyed
	// and on keyed ones that share a key; any other write on every change of the page.
	for key, w := range tx.ws.writes.all() {
		if w.keyed {
			if t, k := ov.keyedChange(idx, key, snap, w.keys); t > snap {
				return keyConflict(w.ns, pages.PageID(key.page), t, "write", k)
			}
			continue
		}
		if t := max(idx.pageTSN(key.inc, key.page), ov.pages[key]); t > snap {
			return conflict(w.ns, pages.PageID(key.page), t, "write")
		}
	}
	if !ser {
		return nil
	}
	for key, r := range tx.rs.reads.all() {
		if r.exists && r.keys != nil { // only keyed reads (ReadPageKey) of a page that existed
			if t, k := ov.keyedChange(idx, key, snap, r.keys); t > snap {
				return keyConflict(r.ns, pages.PageID(key.page), t, "read", k)
			}
			continue
		}
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
