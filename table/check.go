package table

import (
	"context"
	"errors"
	"fmt"

	"github.com/txtdb/txtdb"
)

// Check verifies every table of the store at one snapshot: each tree is well formed (keys
// inside their leaves' bounds and in order, leaves chained in order, every node reachable once),
// every row records a value for each index, and every index holds exactly one entry per row,
// with that value, naming a row that exists. It needs no Go types: it works from the schemas.
// Problems name the page ("app/users" namespace folder and page ID) and match ErrInconsistent
// or ErrSchema; the error is for a store that could not be read at all.
func Check(ctx context.Context, db *txtdb.DB) ([]txtdb.Problem, error) {
	var probs []txtdb.Problem
	err := db.View(ctx, func(tx *txtdb.Tx) error {
		probs = nil
		nss, err := tx.Namespaces()
		if err != nil {
			return err
		}
		for _, ns := range nss {
			objs, err := tx.ReadPage(ns, schemaPage)
			if errors.Is(err, txtdb.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if !isSchema(objs) {
				continue
			}
			s, err := parseSchema(ns, objs)
			if err != nil {
				probs = append(probs, problem(ns, schemaPage, err))
				continue
			}
			probs = append(probs, checkTable(tx, s)...)
		}
		return nil
	})
	return probs, err
}

// isSchema reports whether a namespace's first page is a table schema (other namespaces are no
// tables, and Check leaves them alone).
func isSchema(objs []txtdb.Object) bool {
	var probe struct {
		Table int `json:"txtdb_table" yaml:"txtdb_table"`
	}
	return len(objs) == 1 && objs[0].Decode(&probe) == nil && probe.Table != 0
}

func problem(ns, page string, err error) txtdb.Problem {
	return txtdb.Problem{Path: nsPath(ns) + "/" + page, Err: err}
}

func nsPath(ns string) string {
	b := []byte(ns)
	for i, c := range b {
		if c == '.' {
			b[i] = '/'
		}
	}
	return string(b)
}

// checkTable checks one table.
func checkTable(tx *txtdb.Tx, s *schema) []txtdb.Problem {
	var probs []txtdb.Problem
	report := func(page string, err error) {
		if !errors.Is(err, ErrInconsistent) && !errors.Is(err, ErrSchema) {
			err = fmt.Errorf("%w: %v", ErrInconsistent, err)
		}
		probs = append(probs, problem(s.ns, page, err))
	}
	bad := func(page string, format string, args ...any) {
		report(page, fmt.Errorf("%w: %s", ErrInconsistent, fmt.Sprintf(format, args...)))
	}
	// want[index][entry key] = row key encoding, from the rows.
	want := map[string]map[string]string{}
	for _, ix := range s.doc.Indexes {
		want[ix.Name] = map[string]string{}
	}
	rows := map[string]bool{}
	ok := checkTree(tx, s.primary, report, func(n *node, e *ent) {
		rows[e.enc] = true
		vals, err := storedValues(s, e, e.enc)
		if err != nil {
			report(n.id, err)
			return
		}
		for name, v := range vals {
			if prev, dup := want[name][v.entry]; dup {
				bad(n.id, "rows %s and %s have the same value of unique index %s", prev, e.enc, name)
			}
			want[name][v.entry] = e.enc
		}
		stored, _ := e.indexValues() // INVARIANT: storedValues decoded it
		for name := range stored {
			if _, known := want[name]; !known {
				bad(n.id, "row %s has a value for index %s, which the schema does not have", e.enc, name)
			}
		}
	})
	if !ok {
		return probs
	}
	for _, ix := range s.doc.Indexes {
		tr := s.indexes[ix.Name]
		seen := 0
		checkTree(tx, tr, report, func(n *node, e *ent) {
			pe, err := tr.pkt.enc(e.pk)
			if err != nil {
				bad(n.id, "index %s: %v", ix.Name, err)
				return
			}
			row, ok := want[ix.Name][e.enc]
			switch {
			case !ok && rows[pe]:
				bad(n.id, "index %s: entry %s names row %s, whose value differs", ix.Name, e.enc, pe)
			case !ok:
				bad(n.id, "index %s: entry %s names row %s, which does not exist", ix.Name, e.enc, pe)
			case row != pe:
				bad(n.id, "index %s: entry %s names row %s, the value is row %s's", ix.Name, e.enc, pe, row)
			default:
				seen++
			}
		})
		if seen != len(want[ix.Name]) {
			bad(tr.root, "index %s has %d entries for %d rows", ix.Name, seen, len(want[ix.Name]))
		}
	}
	return probs
}

// checkTree walks a tree, checking its structure, and calls fn for every live leaf entry. It
// reports whether the tree could be walked. A node that cannot be read or decoded is reported
// with its own error (ErrSchema), a broken structure as ErrInconsistent.
func checkTree(tx *txtdb.Tx, t *tree, report func(page string, err error), fn func(*node, *ent)) bool {
	bad := func(page string, format string, args ...any) {
		report(page, fmt.Errorf("%w: %s", ErrInconsistent, fmt.Sprintf(format, args...)))
	}
	seen := map[string]bool{}
	var leaves []*node
	// bounds: the range a node's parent gives it.
	type bounds struct{ lo, hi string }
	var visit func(id string, b bounds, depth int, leafDepth *int) bool
	visit = func(id string, b bounds, depth int, leafDepth *int) bool {
		if seen[id] {
			bad(id, "node reached twice")
			return false
		}
		seen[id] = true
		objs, err := tx.ReadPage(t.ns, id)
		if err != nil {
			report(id, t.nodeErr(id, err))
			return false
		}
		n, err := t.decode(id, objs)
		if err != nil {
			report(id, err)
			return false
		}
		if n.hdr.Node == "leaf" {
			if *leafDepth < 0 {
				*leafDepth = depth
			} else if *leafDepth != depth {
				bad(id, "leaf at depth %d, others at %d", depth, *leafDepth)
			}
			if n.hdr.Lo != b.lo || n.hdr.Hi != b.hi {
				bad(id, "leaf bounds [%q, %q), its parent gives [%q, %q)", n.hdr.Lo, n.hdr.Hi, b.lo, b.hi)
			}
			for i := range n.ents {
				e := &n.ents[i]
				if e.enc < b.lo || (b.hi != "" && e.enc >= b.hi) {
					bad(id, "key %s outside the leaf's range [%q, %q)", e.enc, b.lo, b.hi)
				}
				fn(n, e)
			}
			leaves = append(leaves, n)
			return true
		}
		for i, c := range n.ents {
			cb := bounds{lo: b.lo, hi: b.hi}
			if i > 0 {
				cb.lo = c.enc
				if c.enc <= b.lo || (b.hi != "" && c.enc >= b.hi) {
					bad(id, "separator %s outside the node's range [%q, %q)", c.enc, b.lo, b.hi)
				}
			}
			if i+1 < len(n.ents) {
				cb.hi = n.ents[i+1].enc
			}
			if !visit(c.child, cb, depth+1, leafDepth) {
				return false
			}
		}
		return true
	}
	leafDepth := -1
	if !visit(t.root, bounds{}, 0, &leafDepth) {
		return false
	}
	for i, n := range leaves {
		next := ""
		if i+1 < len(leaves) {
			next = leaves[i+1].id
		}
		if n.hdr.Next != next {
			bad(n.id, "next leaf %q, the tree's order gives %q", n.hdr.Next, next)
		}
	}
	return true
}
