package table

import (
	"fmt"
	"slices"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/pages"
)

// Migrate brings the stored schema up to the code: it adds every index the code defines and the
// store lacks, filled from the existing rows, all in this transaction. ErrSchemaMismatch if the
// store has an index the code does not define, or one of the same name defined differently
// (DropIndex it first); ErrDuplicateKey if the rows already break a new unique index.
//
// Every leaf of the table is rewritten (each row records its index values), so a writer that
// began before the migration and commits after it conflicts, under either isolation level, and
// no row escapes the new index.
func (t *Table[K, V]) Migrate(tx *txtdb.Tx) error {
	s, err := t.schema(tx, false)
	if err != nil {
		return err
	}
	var missing []*indexDef[V]
	for _, ix := range s.doc.Indexes {
		found := false
		for _, d := range t.indexes {
			found = found || d.name == ix.Name
		}
		if !found {
			return t.mismatch(s)
		}
	}
	for _, d := range t.indexes {
		if _, ok := s.index(d.name); !ok {
			missing = append(missing, d)
		} else if !d.matches(s) {
			return t.mismatch(s)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	s = s.clone()
	doc := s.doc
	doc.Indexes = slices.Clone(doc.Indexes)
	for _, d := range missing {
		root, err := tx.NewPage(t.ns, header{Node: "leaf"})
		if err != nil {
			return err
		}
		ix := indexDoc{Name: d.name, Unique: d.unique, Key: d.kt.String(), Root: root}
		doc.Indexes = append(doc.Indexes, ix)
		s.indexes[d.name] = &tree{ns: t.ns, root: root, kt: d.kt, pkt: s.kt, multi: !d.unique, limit: doc.NodeBytes}
	}
	// Fill the new indexes, then record the values in every row.
	err = t.rewriteRows(tx, s, func(e *ent, m map[string]any) error {
		row, err := decodeRow[V](t.ns, e)
		if err != nil {
			return err
		}
		for _, d := range missing {
			tr := s.indexes[d.name]
			v := d.value(row)
			ve, err := d.kt.enc(v)
			if err != nil {
				return fmt.Errorf("table %s, index %s: %w", t.ns, d.name, err)
			}
			entry := ve
			if !d.unique {
				entry += e.enc
			} else if _, _, held, err := tr.lookup(tx, ve); err != nil {
				return err
			} else if held != nil {
				return &DuplicateKeyError{Table: t.ns, Index: d.name, Key: v}
			}
			if err := tr.put(tx, nil, nil, entry, indexEntry{Key: d.kt.stored(v), PK: s.kt.stored(e.key)}); err != nil {
				return err
			}
			m[d.name] = d.kt.stored(v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tx.UpdatePage(t.ns, schemaPage, doc)
}

// DropIndex removes an index from the store: its pages, its definition and the rows' values for
// it, in this transaction (every leaf is rewritten, as for Migrate). ErrNoIndex if the store does
// not have it. Code that still defines the index gets ErrSchemaMismatch on writes afterwards.
func (t *Table[K, V]) DropIndex(tx *txtdb.Tx, name string) error {
	s, err := t.schema(tx, false)
	if err != nil {
		return err
	}
	tr, ok := s.indexes[name]
	if !ok {
		return fmt.Errorf("%w: table %s has no index %q", ErrNoIndex, t.ns, name)
	}
	var ids []string
	if err := tr.walk(tx, func(n *node, _ int) error { ids = append(ids, n.id); return nil }); err != nil {
		return err
	}
	for _, id := range ids {
		if err := tx.DeletePage(t.ns, id); err != nil {
			return err
		}
	}
	doc := s.doc
	doc.Indexes = slices.DeleteFunc(slices.Clone(doc.Indexes), func(ix indexDoc) bool { return ix.Name == name })
	if err := t.rewriteRows(tx, s, func(_ *ent, m map[string]any) error { delete(m, name); return nil }); err != nil {
		return err
	}
	return tx.UpdatePage(t.ns, schemaPage, doc)
}

// rewriteRows rewrites every primary leaf whole, letting edit change each row's recorded index
// values (m, from the entry's "ix").
func (t *Table[K, V]) rewriteRows(tx *txtdb.Tx, s *schema, edit func(e *ent, m map[string]any) error) error {
	var leaves []*node
	err := s.primary.walk(tx, func(n *node, _ int) error {
		if n.hdr.Node == "leaf" {
			leaves = append(leaves, n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, n := range leaves {
		objs := make([]any, 0, len(n.ents)+1)
		objs = append(objs, n.hdr)
		for i := range n.ents {
			e := &n.ents[i]
			var raw map[string]any
			if err := e.obj.Decode(&raw); err != nil {
				return fmt.Errorf("%w: %s/%s: row %s: %v", ErrSchema, t.ns, n.id, e.enc, err)
			}
			m := map[string]any{}
			if old, ok := raw["ix"].(map[string]any); ok {
				m = old
			}
			if err := edit(e, m); err != nil {
				return err
			}
			if len(m) == 0 {
				delete(raw, "ix")
			} else {
				raw["ix"] = m
			}
			o, err := pages.Encode(n.f, raw)
			if err != nil {
				return err
			}
			objs = append(objs, o)
		}
		if err := tx.UpdatePage(t.ns, n.id, objs...); err != nil {
			return err
		}
	}
	return nil
}
