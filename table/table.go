package table

import (
	"errors"
	"fmt"
	"iter"
	"reflect"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/pages"
)

// Table is a table of rows of type V with primary keys of type K, stored in the namespace it is
// named after. A Table value is a definition: it holds no data and may be shared between
// goroutines and used with any number of stores. Define every index (Unique, Index) before the
// first use.
type Table[K, V any] struct {
	ns      string
	key     func(*V) K
	kc      codec[K]
	err     error // the key type is not supported
	indexes []*indexDef[V]
}

// indexDef is one index as the code defines it.
type indexDef[V any] struct {
	name   string
	unique bool
	kt     keyType
	value  func(*V) any // the row's index value, dynamic
	err    error
}

// New defines a table named ns (a namespace name, such as "app.users") whose primary key is
// key(row). K must be a string, an integer type, uuid.UUID, time.Time, or a Key2 or Key3 of
// those; any other type makes every method fail with ErrKeyType.
func New[K, V any](ns string, key func(*V) K) *Table[K, V] {
	kc, err := newCodec[K]()
	return &Table[K, V]{ns: ns, key: key, kc: kc, err: err}
}

// Name returns the table's namespace.
func (t *Table[K, V]) Name() string { return t.ns }

func addIndex[K, V, X any](t *Table[K, V], name string, unique bool, fn func(*V) X) *indexDef[V] {
	xc, err := newCodec[X]()
	d := &indexDef[V]{name: name, unique: unique, kt: xc.kt, err: err}
	d.value = func(v *V) any { return xc.toDyn(fn(v)) }
	if name == "" {
		d.err = fmt.Errorf("%w: an index needs a name", ErrSchemaMismatch)
	}
	for _, o := range t.indexes {
		if o.name == name {
			d.err = fmt.Errorf("%w: index %q defined twice", ErrSchemaMismatch, name)
		}
	}
	t.indexes = append(t.indexes, d)
	return d
}

// UniqueIndex is a unique index: no two rows have the same value.
type UniqueIndex[K, V, X any] struct {
	t  *Table[K, V]
	d  *indexDef[V]
	xc codec[X]
}

// Unique defines a unique index named name on value(row). X is restricted like a key type.
func Unique[K, V, X any](t *Table[K, V], name string, value func(*V) X) *UniqueIndex[K, V, X] {
	xc, _ := newCodec[X]()
	return &UniqueIndex[K, V, X]{t: t, d: addIndex(t, name, true, value), xc: xc}
}

// SecondaryIndex is a non-unique index: any number of rows may share a value.
type SecondaryIndex[K, V, X any] struct {
	t  *Table[K, V]
	d  *indexDef[V]
	xc codec[X]
}

// Index defines a secondary (non-unique) index named name on value(row).
func Index[K, V, X any](t *Table[K, V], name string, value func(*V) X) *SecondaryIndex[K, V, X] {
	xc, _ := newCodec[X]()
	return &SecondaryIndex[K, V, X]{t: t, d: addIndex(t, name, false, value), xc: xc}
}

func (t *Table[K, V]) defErr() error {
	if t.err != nil {
		return fmt.Errorf("table %s: %w", t.ns, t.err)
	}
	for _, d := range t.indexes {
		if d.err != nil {
			return fmt.Errorf("table %s, index %s: %w", t.ns, d.name, d.err)
		}
	}
	return nil
}

// Create creates the table with the indexes defined so far. ErrNamespaceExists if the namespace
// exists (whether or not it holds this table); ErrUnsupported in an XML store (tables need JSON
// or YAML).
func (t *Table[K, V]) Create(tx *txtdb.Tx) error {
	if err := t.defErr(); err != nil {
		return err
	}
	if err := tx.CreateNamespace(t.ns); err != nil {
		return err
	}
	id, err := tx.NewPage(t.ns, schemaDoc{Table: schemaVersion})
	if err != nil {
		return err
	}
	if id != schemaPage {
		return fmt.Errorf("%w: the schema of new table %s landed in page %s", ErrSchema, t.ns, id)
	}
	if objs, err := tx.PeekPage(t.ns, id); err != nil {
		return err
	} else if objs[0].Format() == txtdb.XML {
		// Entries hold a row and its index values as nested values, which XML cannot express.
		return fmt.Errorf("%w: table %s: tables need a JSON or YAML store", txtdb.ErrUnsupported, t.ns)
	}
	doc := schemaDoc{Table: schemaVersion, Key: t.kc.kt.String(), NodeBytes: defaultNodeBytes, Indexes: []indexDoc{}}
	if doc.Root, err = tx.NewPage(t.ns, header{Node: "leaf"}); err != nil {
		return err
	}
	for _, d := range t.indexes {
		root, err := tx.NewPage(t.ns, header{Node: "leaf"})
		if err != nil {
			return err
		}
		doc.Indexes = append(doc.Indexes, indexDoc{Name: d.name, Unique: d.unique, Key: d.kt.String(), Root: root})
	}
	return tx.UpdatePage(t.ns, schemaPage, doc)
}

// Drop deletes the table, its rows and its indexes (the namespace). Cleanup removes the files.
func (t *Table[K, V]) Drop(tx *txtdb.Tx) error {
	if _, err := readSchema(tx, t.ns); err != nil {
		return err
	}
	return tx.DeleteNamespace(t.ns)
}

// schema reads the stored schema and checks it against the code: the key type always; for writes
// (all true) every index, so that no write leaves an index of the store stale or fills one the
// store does not have.
func (t *Table[K, V]) schema(tx *txtdb.Tx, all bool) (*schema, error) {
	if err := t.defErr(); err != nil {
		return nil, err
	}
	s, err := readSchema(tx, t.ns)
	if err != nil {
		return nil, err
	}
	if s.doc.Key != t.kc.kt.String() {
		return nil, fmt.Errorf("%w: table %s has %s keys, the code %s (%s)", ErrSchemaMismatch, t.ns, s.doc.Key, t.kc.kt, reflect.TypeFor[K]())
	}
	if !all {
		return s, nil
	}
	if len(s.doc.Indexes) != len(t.indexes) {
		return nil, t.mismatch(s)
	}
	for _, d := range t.indexes {
		if !d.matches(s) {
			return nil, t.mismatch(s)
		}
	}
	return s, nil
}

func (d *indexDef[V]) matches(s *schema) bool {
	ix, ok := s.index(d.name)
	return ok && ix.Unique == d.unique && ix.Key == d.kt.String()
}

func (t *Table[K, V]) mismatch(s *schema) error {
	var store, code []string
	for _, ix := range s.doc.Indexes {
		store = append(store, describe(ix.Name, ix.Unique, ix.Key))
	}
	for _, d := range t.indexes {
		code = append(code, describe(d.name, d.unique, d.kt.String()))
	}
	return fmt.Errorf("%w: table %s has indexes %v, the code defines %v (Migrate adds missing ones, DropIndex removes others)", ErrSchemaMismatch, t.ns, store, code)
}

func describe(name string, unique bool, key string) string {
	if unique {
		return fmt.Sprintf("%s(unique %s)", name, key)
	}
	return fmt.Sprintf("%s(%s)", name, key)
}

// enc returns a key's dynamic value and encoding.
func (t *Table[K, V]) enc(k K) (any, string, error) {
	d := t.kc.toDyn(k)
	e, err := t.kc.kt.enc(d)
	return d, e, err
}

// rowEntry is a primary leaf entry (PART OF THE FORMAT): the key, the row as it encodes, and the
// row's index values (so deletes and Check need no index function).
type rowEntry[V any] struct {
	Key any            `json:"key" yaml:"key"`
	Row *V             `json:"row,omitempty" yaml:"row,omitempty"`
	IX  map[string]any `json:"ix,omitempty" yaml:"ix,omitempty"`
	Del bool           `json:"del,omitempty" yaml:"del,omitempty"`
}

// indexEntry is an index leaf entry (PART OF THE FORMAT): the value and the row's key.
type indexEntry struct {
	Key any  `json:"key" yaml:"key"`
	PK  any  `json:"pk" yaml:"pk"`
	Del bool `json:"del,omitempty" yaml:"del,omitempty"`
}

// idxVal is one index's value for one row.
type idxVal struct {
	tree   *tree
	name   string
	unique bool
	dyn    any
	enc    string // the value's encoding (a unique tree's key)
	entry  string // the entry's key in its tree: enc, plus the row key's for a non-unique index
}

func (t *Table[K, V]) values(s *schema, row *V, pkEnc string) ([]idxVal, error) {
	out := make([]idxVal, 0, len(t.indexes))
	for _, d := range t.indexes {
		v := d.value(row)
		e, err := d.kt.enc(v)
		if err != nil {
			return nil, fmt.Errorf("table %s, index %s: %w", t.ns, d.name, err)
		}
		iv := idxVal{tree: s.indexes[d.name], name: d.name, unique: d.unique, dyn: v, enc: e, entry: e}
		if !d.unique {
			iv.entry += pkEnc
		}
		out = append(out, iv)
	}
	return out, nil
}

// storedValues reads a row entry's recorded index values.
func storedValues(s *schema, e *ent, pkEnc string) (map[string]idxVal, error) {
	out := map[string]idxVal{}
	stored, err := e.indexValues()
	if err != nil {
		return nil, err
	}
	for _, ix := range s.doc.Indexes {
		tr := s.indexes[ix.Name]
		raw, ok := stored[ix.Name]
		if !ok {
			return nil, fmt.Errorf("%w: %s: row %s has no value for index %s", ErrInconsistent, s.ns, pkEnc, ix.Name)
		}
		v, err := tr.kt.fromStored(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: row %s, index %s: %v", ErrInconsistent, s.ns, pkEnc, ix.Name, err)
		}
		enc, err := tr.kt.enc(v)
		if err != nil {
			return nil, err
		}
		iv := idxVal{tree: tr, name: ix.Name, unique: ix.Unique, dyn: v, enc: enc, entry: enc}
		if !ix.Unique {
			iv.entry += pkEnc
		}
		out[ix.Name] = iv
	}
	return out, nil
}

func ixMap(s *schema, vals []idxVal) map[string]any {
	if len(vals) == 0 {
		return nil
	}
	m := make(map[string]any, len(vals))
	for _, v := range vals {
		m[v.name] = v.tree.kt.stored(v.dyn)
	}
	return m
}

// claim checks that a unique value is free (or held by the row pkEnc already), depending only
// on that value.
func (t *Table[K, V]) claim(tx *txtdb.Tx, v idxVal, pkEnc string, key any) (*node, []string, error) {
	n, path, e, err := v.tree.lookup(tx, v.entry)
	if err != nil {
		return nil, nil, err
	}
	if e != nil {
		if pe, err := v.tree.pkt.enc(e.pk); err != nil || pe != pkEnc {
			return nil, nil, &DuplicateKeyError{Table: t.ns, Index: v.name, Key: key}
		}
	}
	return n, path, nil
}

// Insert adds a row. ErrDuplicateKey (a *DuplicateKeyError) if its key, or a unique index value,
// is taken; nothing is written then.
func (t *Table[K, V]) Insert(tx *txtdb.Tx, row *V) error {
	return t.write(tx, row, true)
}

// Put inserts a row, or replaces the row with its key. ErrDuplicateKey if a unique index value
// is taken by another row.
func (t *Table[K, V]) Put(tx *txtdb.Tx, row *V) error {
	return t.write(tx, row, false)
}

func (t *Table[K, V]) write(tx *txtdb.Tx, row *V, insert bool) error {
	if row == nil {
		return fmt.Errorf("%w: nil row", ErrInvalidKey)
	}
	s, err := t.schema(tx, true)
	if err != nil {
		return err
	}
	k := t.key(row)
	kd, ke, err := t.enc(k)
	if err != nil {
		return fmt.Errorf("table %s: %w", t.ns, err)
	}
	leaf, path, old, err := s.primary.lookup(tx, ke)
	if err != nil {
		return err
	}
	if old != nil && insert {
		return &DuplicateKeyError{Table: t.ns, Key: k}
	}
	vals, err := t.values(s, row, ke)
	if err != nil {
		return err
	}
	var prev map[string]idxVal
	if old != nil {
		if prev, err = storedValues(s, old, ke); err != nil {
			return err
		}
	}
	// Every check before the first write, so a failed Insert or Put changes nothing.
	type claimed struct {
		n    *node
		path []string
	}
	claims := make([]claimed, len(vals))
	for i, v := range vals {
		if p, ok := prev[v.name]; ok && p.entry == v.entry {
			continue
		}
		if v.unique {
			n, p, err := t.claim(tx, v, ke, v.dyn)
			if err != nil {
				return err
			}
			claims[i] = claimed{n, p}
		}
	}
	for i, v := range vals {
		p, had := prev[v.name]
		if had && p.entry == v.entry {
			continue
		}
		// The new entry first: the leaf the claim read is current until a split in this tree.
		if err := v.tree.put(tx, claims[i].n, claims[i].path, v.entry, indexEntry{Key: v.tree.kt.stored(v.dyn), PK: s.kt.stored(kd)}); err != nil {
			return err
		}
		if had {
			if err := p.tree.put(tx, nil, nil, p.entry, indexEntry{Key: p.tree.kt.stored(p.dyn), PK: s.kt.stored(kd), Del: true}); err != nil {
				return err
			}
		}
	}
	return s.primary.put(tx, leaf, path, ke, rowEntry[V]{Key: s.kt.stored(kd), Row: row, IX: ixMap(s, vals)})
}

// Get returns the row with key k; ErrNotFound if there is none. Under Serializable the
// transaction depends on that key alone.
func (t *Table[K, V]) Get(tx *txtdb.Tx, k K) (*V, error) {
	s, err := t.schema(tx, false)
	if err != nil {
		return nil, err
	}
	_, ke, err := t.enc(k)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t.ns, err)
	}
	return t.getEnc(tx, s, ke, k)
}

func (t *Table[K, V]) getEnc(tx *txtdb.Tx, s *schema, ke string, k any) (*V, error) {
	_, _, e, err := s.primary.lookup(tx, ke)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, fmt.Errorf("%w: table %s, key %v", txtdb.ErrNotFound, t.ns, k)
	}
	return decodeRow[V](t.ns, e)
}

func decodeRow[V any](ns string, e *ent) (*V, error) {
	if e.rowTo > 0 { // the row's own text: the key and index values are not decoded again
		var row *V
		text := e.obj.Text()[e.rowFrom:e.rowTo]
		if err := pages.ObjectFromTrusted(e.obj.Format(), text).Decode(&row); err != nil {
			return nil, fmt.Errorf("%w: %s: row %s: %v", ErrSchema, ns, e.enc, err)
		}
		if row == nil {
			row = new(V)
		}
		return row, nil
	}
	var r struct {
		Row *V `json:"row" yaml:"row"`
	}
	if err := e.obj.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %s: row %s: %v", ErrSchema, ns, e.enc, err)
	}
	if r.Row == nil {
		r.Row = new(V)
	}
	return r.Row, nil
}

// Delete deletes the row with key k and its index entries; ErrNotFound if there is none.
func (t *Table[K, V]) Delete(tx *txtdb.Tx, k K) error {
	s, err := t.schema(tx, true)
	if err != nil {
		return err
	}
	kd, ke, err := t.enc(k)
	if err != nil {
		return fmt.Errorf("table %s: %w", t.ns, err)
	}
	leaf, path, old, err := s.primary.lookup(tx, ke)
	if err != nil {
		return err
	}
	if old == nil {
		return fmt.Errorf("%w: table %s, key %v", txtdb.ErrNotFound, t.ns, k)
	}
	prev, err := storedValues(s, old, ke)
	if err != nil {
		return err
	}
	for _, ix := range s.doc.Indexes {
		p := prev[ix.Name]
		if err := p.tree.put(tx, nil, nil, p.entry, indexEntry{Key: p.tree.kt.stored(p.dyn), PK: s.kt.stored(kd), Del: true}); err != nil {
			return err
		}
	}
	return s.primary.put(tx, leaf, path, ke, rowEntry[V]{Key: s.kt.stored(kd), Del: true})
}

// Rows is the result of a range scan or an index lookup, walked by All. Errors end the walk and
// are reported by Err.
type Rows[K, V any] struct {
	run func(yield func(K, *V) bool) error
	err error
}

// All yields the rows in key order (index order for Find). It may be called more than once; each
// call walks again.
func (r *Rows[K, V]) All() iter.Seq2[K, *V] {
	return func(yield func(K, *V) bool) {
		r.err = r.run(yield)
	}
}

// Err returns the error that ended the last walk, if any.
func (r *Rows[K, V]) Err() error { return r.err }

// Collect walks the rows into a slice of keys and a slice of rows.
func (r *Rows[K, V]) Collect() ([]K, []*V, error) {
	var ks []K
	var vs []*V
	for k, v := range r.All() {
		ks = append(ks, k)
		vs = append(vs, v)
	}
	return ks, vs, r.Err()
}

func errRows[K, V any](err error) *Rows[K, V] {
	return &Rows[K, V]{run: func(func(K, *V) bool) error { return err }}
}

// Range returns the rows with lo <= key < hi, in key order. Under Serializable a row inserted
// into or deleted from the range by another transaction makes this one conflict.
func (t *Table[K, V]) Range(tx *txtdb.Tx, lo, hi K) *Rows[K, V] {
	_, le, err := t.enc(lo)
	if err != nil {
		return errRows[K, V](err)
	}
	_, he, err := t.enc(hi)
	if err != nil {
		return errRows[K, V](err)
	}
	if he <= le { // no rows, but the schema still decides whether the code may read the table
		return &Rows[K, V]{run: func(func(K, *V) bool) error { _, err := t.schema(tx, false); return err }}
	}
	return t.scan(tx, le, he)
}

// From returns the rows with key >= lo, in key order.
func (t *Table[K, V]) From(tx *txtdb.Tx, lo K) *Rows[K, V] {
	_, le, err := t.enc(lo)
	if err != nil {
		return errRows[K, V](err)
	}
	return t.scan(tx, le, "")
}

// Scan returns every row, in key order.
func (t *Table[K, V]) Scan(tx *txtdb.Tx) *Rows[K, V] { return t.scan(tx, "", "") }

func (t *Table[K, V]) scan(tx *txtdb.Tx, lo, hi string) *Rows[K, V] {
	return &Rows[K, V]{run: func(yield func(K, *V) bool) error {
		s, err := t.schema(tx, false)
		if err != nil {
			return err
		}
		return s.primary.scan(tx, lo, hi, func(e *ent) (bool, error) {
			v, err := decodeRow[V](t.ns, e)
			if err != nil {
				return false, err
			}
			return yield(t.kc.fromDyn(e.key), v), nil
		})
	}}
}

// Count returns the number of rows. It reads every leaf of the table.
func (t *Table[K, V]) Count(tx *txtdb.Tx) (int, error) {
	s, err := t.schema(tx, false)
	if err != nil {
		return 0, err
	}
	n := 0
	err = s.primary.scan(tx, "", "", func(*ent) (bool, error) { n++; return true, nil })
	return n, err
}

// Get returns the row whose index value is x; ErrNotFound if there is none.
func (u *UniqueIndex[K, V, X]) Get(tx *txtdb.Tx, x X) (*V, error) {
	s, tr, err := u.t.indexTree(tx, u.d)
	if err != nil {
		return nil, err
	}
	xe, err := u.d.kt.enc(u.xc.toDyn(x))
	if err != nil {
		return nil, fmt.Errorf("table %s, index %s: %w", u.t.ns, u.d.name, err)
	}
	_, _, e, err := tr.lookup(tx, xe)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, fmt.Errorf("%w: table %s, index %s value %v", txtdb.ErrNotFound, u.t.ns, u.d.name, x)
	}
	pe, err := s.kt.enc(e.pk)
	if err != nil {
		return nil, err
	}
	v, err := u.t.getEnc(tx, s, pe, e.pk)
	if errors.Is(err, txtdb.ErrNotFound) {
		return nil, fmt.Errorf("%w: table %s, index %s value %v names row %v, which is missing", ErrInconsistent, u.t.ns, u.d.name, x, e.pk)
	}
	return v, err
}

func (t *Table[K, V]) indexTree(tx *txtdb.Tx, d *indexDef[V]) (*schema, *tree, error) {
	s, err := t.schema(tx, false)
	if err != nil {
		return nil, nil, err
	}
	if d.err != nil {
		return nil, nil, d.err
	}
	if !d.matches(s) {
		return nil, nil, t.mismatch(s)
	}
	return s, s.indexes[d.name], nil
}

// Find returns the rows whose index value is x, in key order.
func (ix *SecondaryIndex[K, V, X]) Find(tx *txtdb.Tx, x X) *Rows[K, V] {
	return find(ix.t, ix.d, tx, ix.xc.toDyn(x))
}

// Find returns the row whose index value is x, as Rows (none or one).
func (u *UniqueIndex[K, V, X]) Find(tx *txtdb.Tx, x X) *Rows[K, V] {
	return find(u.t, u.d, tx, u.xc.toDyn(x))
}

func find[K, V any](t *Table[K, V], d *indexDef[V], tx *txtdb.Tx, x any) *Rows[K, V] {
	return &Rows[K, V]{run: func(yield func(K, *V) bool) error {
		s, tr, err := t.indexTree(tx, d)
		if err != nil {
			return err
		}
		xe, err := d.kt.enc(x)
		if err != nil {
			return fmt.Errorf("table %s, index %s: %w", t.ns, d.name, err)
		}
		hi := xe + "g" // encodings use only hex digits and '.', so every (x, pk) lies below
		if d.unique {
			hi = xe + "\x00"
		}
		return tr.scan(tx, xe, hi, func(e *ent) (bool, error) {
			pe, err := s.kt.enc(e.pk)
			if err != nil {
				return false, err
			}
			v, err := t.getEnc(tx, s, pe, e.pk)
			if errors.Is(err, txtdb.ErrNotFound) {
				return false, fmt.Errorf("%w: table %s, index %s value %v names row %v, which is missing", ErrInconsistent, t.ns, d.name, x, e.pk)
			}
			if err != nil {
				return false, err
			}
			return yield(t.kc.fromDyn(e.pk), v), nil
		})
	}}
}
