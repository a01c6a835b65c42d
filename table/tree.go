package table

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/pages"
)

// A tree is a B+ tree of pages in the table's namespace. Every page starts with a header object;
// a leaf then holds entries (written by keyed appends, so a key may appear several times: the
// last one counts, and a "del" entry removes the key), an inner node holds its children in key
// order. A leaf's range [lo, hi) changes only when the leaf itself is rewritten (a split), so a
// reader or writer of one key depends on the leaf alone: inner nodes are routing, peeked without
// a read dependency.
type tree struct {
	ns    string
	root  string
	kt    keyType // the type of an entry's "key"
	pkt   keyType // index trees: the type of an entry's "pk"
	multi bool    // non-unique index: entries are (key, pk) pairs, ordered by both
	limit int     // a node is split (or compacted) once its text exceeds this many bytes
}

// header is a page's first object (PART OF THE FORMAT). Bounds and separators are encoded keys
// (see encPart); "" is unbounded.
type header struct {
	Node string `json:"node" yaml:"node"` // "leaf" or "inner"
	Lo   string `json:"lo,omitempty" yaml:"lo,omitempty"`
	Hi   string `json:"hi,omitempty" yaml:"hi,omitempty"`
	Next string `json:"next,omitempty" yaml:"next,omitempty"` // leaf: the leaf holding hi onwards
}

// child is an inner node's entry: the subtree from sep on (the first child has no sep).
type child struct {
	Sep   string `json:"sep,omitempty" yaml:"sep,omitempty"`
	Child string `json:"child" yaml:"child"`
}

// rawEntry is a leaf entry as decoded; the row of a primary entry is decoded only when asked for.
type rawEntry struct {
	Key any            `json:"key" yaml:"key"`
	PK  any            `json:"pk,omitempty" yaml:"pk,omitempty"`
	IX  map[string]any `json:"ix,omitempty" yaml:"ix,omitempty"`
	Del bool           `json:"del,omitempty" yaml:"del,omitempty"`
}

// ent is one live leaf entry, or one child of an inner node.
type ent struct {
	enc    string
	key    any            // dynamic
	pk     any            // dynamic (index trees)
	ix     map[string]any // a row entry's index values, unless ixLazy
	ixLazy bool           // ix not decoded yet (the entry is shared: indexValues decodes it each time)
	// where the "row" member's text is in obj's (both 0: not known; decode the entry)
	rowFrom, rowTo int32
	obj            pages.Object
	child          string
}

// indexValues returns a row entry's recorded index values ("ix").
func (e *ent) indexValues() (map[string]any, error) {
	if !e.ixLazy {
		return e.ix, nil
	}
	var r rawEntry
	if err := e.obj.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: row %s: %v", ErrInconsistent, e.enc, err)
	}
	return r.IX, nil
}

type node struct {
	id   string
	hdr  header
	ents []ent  // leaf: live entries sorted by enc; inner: children in order
	size int    // text bytes of every object in the page
	last string // leaf: enc of the last object in the page (the newest append)
	f    pages.Format
}

func objSize(o pages.Object) int { return o.Size() + pages.ObjectOverhead }

func (t *tree) corrupt(id, format string, args ...any) error {
	return fmt.Errorf("%w: %s/%s: %s", ErrSchema, t.ns, id, fmt.Sprintf(format, args...))
}

func decodeHeader(t *tree, id string, objs []pages.Object) (header, error) {
	var h header
	if len(objs) == 0 {
		return h, t.corrupt(id, "empty node page")
	}
	if err := objs[0].Decode(&h); err != nil || (h.Node != "leaf" && h.Node != "inner") {
		return h, t.corrupt(id, "no node header")
	}
	return h, nil
}

// entEnc returns the encoded key of a decoded leaf entry.
func (t *tree) entEnc(r *rawEntry) (key, pk any, enc string, err error) {
	if key, err = t.kt.fromStored(r.Key); err != nil {
		return nil, nil, "", err
	}
	if enc, err = t.kt.enc(key); err != nil {
		return nil, nil, "", err
	}
	if t.pkt != nil {
		if pk, err = t.pkt.fromStored(r.PK); err != nil {
			return nil, nil, "", err
		}
		if t.multi {
			pe, err := t.pkt.enc(pk)
			if err != nil {
				return nil, nil, "", err
			}
			enc += pe
		}
	}
	return key, pk, enc, nil
}

// decode parses a node page. A leaf's entries are folded: the last entry of each key wins, and
// deleted keys are dropped. The node may be shared (see nodeCache): callers never change it.
func (t *tree) decode(id string, objs []pages.Object) (*node, error) {
	c, err := t.version(id, objs)
	if err != nil {
		return nil, err
	}
	return c.node(), nil
}

// decodeEnt decodes the leaf entry at position i of a page (its index values only when they are
// asked for: see indexValues).
func (t *tree) decodeEnt(id string, i int, o pages.Object) (ent, bool, error) {
	sc, lazy := scanEntry(o)
	r := rawEntry{Key: sc.key, PK: sc.pk, Del: sc.del}
	if !lazy {
		r = rawEntry{}
		if err := o.Decode(&r); err != nil {
			return ent{}, false, t.corrupt(id, "entry %d: %v", i, err)
		}
	}
	key, pk, enc, err := t.entEnc(&r)
	if err != nil {
		return ent{}, false, t.corrupt(id, "entry %d: %v", i, err)
	}
	e := ent{enc: enc, key: key, pk: pk, ix: r.IX, ixLazy: lazy, obj: o}
	if sc.rowTo > sc.rowFrom && int64(sc.rowTo) <= math.MaxInt32 {
		e.rowFrom, e.rowTo = int32(sc.rowFrom), int32(sc.rowTo)
	}
	if r.Del {
		e.obj = pages.Object{}
	}
	return e, r.Del, nil
}

func (t *tree) decodeAll(id string, objs []pages.Object) (*node, error) {
	h, err := decodeHeader(t, id, objs)
	if err != nil {
		return nil, err
	}
	n := &node{id: id, hdr: h, f: objs[0].Format()}
	for _, o := range objs {
		n.size += objSize(o)
	}
	if h.Node == "inner" {
		for i, o := range objs[1:] {
			var c child
			if err := o.Decode(&c); err != nil || c.Child == "" || (i > 0) != (c.Sep != "") {
				return nil, t.corrupt(id, "bad child entry %d", i+1)
			}
			if i > 1 && c.Sep <= n.ents[i-1].enc {
				return nil, t.corrupt(id, "children out of order")
			}
			n.ents = append(n.ents, ent{enc: c.Sep, child: c.Child})
		}
		if len(n.ents) == 0 {
			return nil, t.corrupt(id, "inner node without children")
		}
		return n, nil
	}
	at := map[string]int{}
	var dead int
	for i, o := range objs[1:] {
		e, del, err := t.decodeEnt(id, i+1, o)
		if err != nil {
			return nil, err
		}
		n.last = e.enc
		if j, ok := at[e.enc]; ok {
			if n.ents[j].obj.IsZero() {
				dead--
			}
			n.ents[j] = e
		} else {
			at[e.enc] = len(n.ents)
			n.ents = append(n.ents, e)
		}
		if del {
			dead++
		}
	}
	if dead > 0 {
		n.ents = slices.DeleteFunc(n.ents, func(e ent) bool { return e.obj.IsZero() })
	}
	slices.SortFunc(n.ents, func(a, b ent) int {
		switch {
		case a.enc < b.enc:
			return -1
		case a.enc > b.enc:
			return 1
		}
		return 0
	})
	return n, nil
}

// find returns the live entry with this encoded key.
func (n *node) find(enc string) (*ent, bool) {
	i := sort.Search(len(n.ents), func(i int) bool { return n.ents[i].enc >= enc })
	if i < len(n.ents) && n.ents[i].enc == enc {
		return &n.ents[i], true
	}
	return nil, false
}

// childFor returns the index of the child whose subtree holds enc.
func (n *node) childFor(enc string) int {
	return sort.Search(len(n.ents)-1, func(i int) bool { return n.ents[i+1].enc > enc })
}

// descend returns the leaf whose range holds enc and the inner nodes above it, root first,
// peeked without a read dependency.
func (t *tree) descend(tx *txtdb.Tx, enc string) (leaf string, path []string, err error) {
	leaf, path, _, err = t.descendObjs(tx, enc)
	return leaf, path, err
}

// descendObjs is descend that also returns the leaf's objects, as peeked.
func (t *tree) descendObjs(tx *txtdb.Tx, enc string) (leaf string, path []string, objs []pages.Object, err error) {
	id := t.root
	for depth := 0; ; depth++ {
		if depth > 64 {
			return "", nil, nil, t.corrupt(id, "tree deeper than 64 levels (a cycle?)")
		}
		objs, err := tx.PeekPage(t.ns, id)
		if err != nil {
			return "", nil, nil, t.nodeErr(id, err)
		}
		if c := nodes.get(t.ns, id, objs); c != nil && len(c.objs) == len(objs) {
			if c.n.hdr.Node == "leaf" {
				return id, path, objs, nil
			}
			path = append(path, id)
			id = c.n.ents[c.n.childFor(enc)].child
			continue
		}
		if len(objs) > 0 && nodes.leafHeader(t.ns, id, objs[0]) {
			return id, path, objs, nil
		}
		h, err := decodeHeader(t, id, objs)
		if err != nil {
			return "", nil, nil, err
		}
		if h.Node == "leaf" {
			return id, path, objs, nil
		}
		n, err := t.decode(id, objs)
		if err != nil {
			return "", nil, nil, err
		}
		path = append(path, id)
		id = n.ents[n.childFor(enc)].child
	}
}

// nodeErr explains a node page that cannot be read: a missing node is a broken tree.
func (t *tree) nodeErr(id string, err error) error {
	if errors.Is(err, txtdb.ErrNotFound) {
		return t.corrupt(id, "node page missing")
	}
	return err
}

// lookup finds the leaf for enc and reads it depending only on enc.
func (t *tree) lookup(tx *txtdb.Tx, enc string) (*node, []string, *ent, error) {
	id, path, err := t.descend(tx, enc)
	if err != nil {
		return nil, nil, nil, err
	}
	objs, err := tx.ReadPageKey(t.ns, id, enc)
	if err != nil {
		return nil, nil, nil, t.nodeErr(id, err)
	}
	c, err := t.version(id, objs)
	if err != nil {
		return nil, nil, nil, err
	}
	if c.n.hdr.Node != "leaf" {
		return nil, nil, nil, t.corrupt(id, "a leaf's range leads to an inner node")
	}
	// The node as put and split use it: its id, header, format and size.
	n := &node{id: id, hdr: c.n.hdr, size: c.size, f: c.n.f}
	return n, path, c.find(enc), nil
}

// put appends an entry for enc to the leaf that holds it, and splits the leaf if it grew past
// the limit. n is the leaf as this transaction last saw it (nil: find and peek it).
func (t *tree) put(tx *txtdb.Tx, n *node, path []string, enc string, v any) error {
	if n == nil {
		id, p, objs, err := t.descendObjs(tx, enc)
		if err != nil {
			return err
		}
		c, err := t.version(id, objs)
		if err != nil {
			return err
		}
		n, path = &node{id: id, hdr: c.n.hdr, size: c.size, f: c.n.f}, p
	}
	o, err := pages.Encode(n.f, v)
	if err != nil {
		return err
	}
	if err := tx.AppendPage(t.ns, n.id, enc, o); err != nil {
		return t.nodeErr(n.id, err)
	}
	limit := t.limit
	if n.hdr.Hi == "" {
		// The tree's right edge, where keys arriving in order (time stamps, sequence numbers)
		// all go: it may grow to twice the limit and is then cut into full leaves and a short
		// last one (see split), so it splits half as often. Every split rewrites the leaf,
		// and every insert into it that is under way then conflicts with the split.
		limit *= 2
	}
	if n.size+objSize(o) > limit {
		return t.split(tx, n.id, path)
	}
	return nil
}

// split rewrites an overfull leaf: compacted in place if its live entries fill at most half of
// it, else cut in two (the upper part into a new leaf, its separator into the parent). A leaf
// that grows at its upper end (keys arriving in order) is cut near the end, so the lower part
// stays nearly full.
func (t *tree) split(tx *txtdb.Tx, id string, path []string) error {
	n, err := t.readNode(tx, id, "leaf")
	if err != nil {
		return err
	}
	live := 0
	for _, e := range n.ents {
		live += objSize(e.obj)
	}
	if live <= t.limit/2 || len(n.ents) < 2 {
		return tx.UpdatePage(t.ns, id, n.leafObjs(n.hdr, n.ents)...)
	}
	if n.hdr.Hi == "" && live > t.limit {
		// The right edge (see put): keys arrive in order here, more or less, and the parts
		// below the last one will get few of them, so they are cut full.
		// Each part's header (lo, hi, next) comes out of its room: two keys about as long as
		// the longest here.
		long := ""
		for _, e := range n.ents {
			if len(e.enc) > len(long) {
				long = e.enc
			}
		}
		h, err := pages.Encode(n.f, header{Node: "leaf", Lo: long, Hi: long, Next: n.id})
		if err != nil {
			return err
		}
		if cuts := fullCuts(n.ents, t.limit, objSize(h)); len(cuts) > 0 {
			return t.splitAt(tx, n, path, cuts)
		}
	}
	m := cut(n.ents, func(e ent) int { return objSize(e.obj) }, live)
	if n.last == n.ents[len(n.ents)-1].enc {
		// The newest entry is the leaf's last key: keys arrive in order here (one value's rows
		// in a secondary index, say), and the lower part will get no more of them.
		m = min(max(m, len(n.ents)*9/10, 1), len(n.ents)-1)
	}
	sep := n.ents[m].enc
	upper := header{Node: "leaf", Lo: sep, Hi: n.hdr.Hi, Next: n.hdr.Next}
	if len(path) == 0 { // the root: its page stays the root, as an inner node over two new leaves
		rid, err := tx.NewPage(t.ns, n.leafObjs(upper, n.ents[m:])...)
		if err != nil {
			return err
		}
		lid, err := tx.NewPage(t.ns, n.leafObjs(header{Node: "leaf", Hi: sep, Next: rid}, n.ents[:m])...)
		if err != nil {
			return err
		}
		return tx.UpdatePage(t.ns, id, header{Node: "inner"}, child{Child: lid}, child{Sep: sep, Child: rid})
	}
	rid, err := tx.NewPage(t.ns, n.leafObjs(upper, n.ents[m:])...)
	if err != nil {
		return err
	}
	lower := header{Node: "leaf", Lo: n.hdr.Lo, Hi: sep, Next: rid}
	if err := tx.UpdatePage(t.ns, id, n.leafObjs(lower, n.ents[:m])...); err != nil {
		return err
	}
	return t.addChild(tx, path, sep, rid)
}

// fullCuts returns where to cut entries into parts that each fill a node to about the limit with
// a header of hdr bytes (the last part holds the rest), as indexes of the first entry of each part
// after the first; none if one part holds them all.
func fullCuts(ents []ent, limit, hdr int) []int {
	var cuts []int
	room := limit*15/16 - hdr // slack for a rewrite in place
	acc := 0
	for i, e := range ents {
		sz := objSize(e.obj)
		if acc+sz > room && i > 0 {
			cuts = append(cuts, i)
			acc = 0
		}
		acc += sz
	}
	return cuts
}

// splitAt cuts leaf n into parts at cuts (indexes into n.ents, ascending, each > 0 and < the
// number of entries): the first part stays in n's page, each other one gets a new page, chained
// in key order, and the parent (or the root, which stays the root) gets their separators.
func (t *tree) splitAt(tx *txtdb.Tx, n *node, path []string, cuts []int) error {
	type part struct {
		ents []ent
		sep  string
		id   string
	}
	parts := []part{{ents: n.ents[:cuts[0]]}}
	for i, c := range cuts {
		end := len(n.ents)
		if i+1 < len(cuts) {
			end = cuts[i+1]
		}
		parts = append(parts, part{ents: n.ents[c:end], sep: n.ents[c].enc})
	}
	root := len(path) == 0
	// New pages from the last one down, so that each knows the id of the next.
	next := n.hdr.Next
	for i := len(parts) - 1; i >= 0; i-- {
		if i == 0 && !root {
			break // the first part stays in n's page
		}
		hi := n.hdr.Hi
		if i+1 < len(parts) {
			hi = parts[i+1].sep
		}
		lo := parts[i].sep
		if i == 0 {
			lo = n.hdr.Lo
		}
		id, err := tx.NewPage(t.ns, n.leafObjs(header{Node: "leaf", Lo: lo, Hi: hi, Next: next}, parts[i].ents)...)
		if err != nil {
			return err
		}
		parts[i].id, next = id, id
	}
	if root { // the root's page stays the root, as an inner node over the parts
		objs := []any{header{Node: "inner"}}
		for i, p := range parts {
			c := child{Child: p.id}
			if i > 0 {
				c.Sep = p.sep
			}
			objs = append(objs, c)
		}
		return tx.UpdatePage(t.ns, n.id, objs...)
	}
	first := header{Node: "leaf", Lo: n.hdr.Lo, Hi: parts[1].sep, Next: parts[1].id}
	if err := tx.UpdatePage(t.ns, n.id, n.leafObjs(first, parts[0].ents)...); err != nil {
		return err
	}
	for i, p := range parts[1:] {
		if i > 0 { // an earlier separator may have split the parent: route this one afresh
			var err error
			if _, path, err = t.descend(tx, p.sep); err != nil {
				return err
			}
		}
		if err := t.addChild(tx, path, p.sep, p.id); err != nil {
			return err
		}
	}
	return nil
}

// readNode reads a node whole (a dependency on all of it) for rewriting it; it must be of kind.
func (t *tree) readNode(tx *txtdb.Tx, id, kind string) (*node, error) {
	objs, err := tx.ReadPage(t.ns, id)
	if err != nil {
		return nil, t.nodeErr(id, err)
	}
	n, err := t.decode(id, objs)
	if err != nil {
		return nil, err
	}
	if n.hdr.Node != kind {
		return nil, t.corrupt(id, "a %s node where the tree needs a %s", n.hdr.Node, kind)
	}
	return n, nil
}

// cut returns where to cut entries so that each part holds about half of total.
func cut(ents []ent, size func(ent) int, total int) int {
	acc := 0
	for i, e := range ents {
		if acc += size(e); acc*2 >= total {
			return min(max(i, 1), len(ents)-1)
		}
	}
	return len(ents) - 1
}

func (n *node) leafObjs(h header, ents []ent) []any {
	out := make([]any, 0, len(ents)+1)
	out = append(out, h)
	for _, e := range ents {
		out = append(out, e.obj)
	}
	return out
}

// addChild inserts (sep, id) into the inner node at the end of path, splitting it (and so on
// upwards) when it grows past the limit.
func (t *tree) addChild(tx *txtdb.Tx, path []string, sep, id string) error {
	pid := path[len(path)-1]
	n, err := t.readNode(tx, pid, "inner")
	if err != nil {
		return err
	}
	i := n.childFor(sep) + 1
	n = &node{id: n.id, hdr: n.hdr, ents: slices.Insert(slices.Clone(n.ents), i, ent{enc: sep, child: id})} // n may be shared
	size := 0
	for _, e := range n.ents {
		size += len(e.enc) + len(e.child) + 24
	}
	if size <= t.limit || len(n.ents) < 4 {
		return tx.UpdatePage(t.ns, pid, innerObjs(n.ents)...)
	}
	m := len(n.ents) / 2
	up := n.ents[m].enc
	right := slices.Clone(n.ents[m:])
	right[0].enc = ""
	if len(path) == 1 { // the root stays the root
		lid, err := tx.NewPage(t.ns, innerObjs(n.ents[:m])...)
		if err != nil {
			return err
		}
		rid, err := tx.NewPage(t.ns, innerObjs(right)...)
		if err != nil {
			return err
		}
		return tx.UpdatePage(t.ns, pid, header{Node: "inner"}, child{Child: lid}, child{Sep: up, Child: rid})
	}
	rid, err := tx.NewPage(t.ns, innerObjs(right)...)
	if err != nil {
		return err
	}
	if err := tx.UpdatePage(t.ns, pid, innerObjs(n.ents[:m])...); err != nil {
		return err
	}
	return t.addChild(tx, path[:len(path)-1], up, rid)
}

func innerObjs(ents []ent) []any {
	out := make([]any, 0, len(ents)+1)
	out = append(out, header{Node: "inner"})
	for i, e := range ents {
		c := child{Child: e.child}
		if i > 0 {
			c.Sep = e.enc
		}
		out = append(out, c)
	}
	return out
}

// scan calls fn for every live entry with lo <= enc < hi ("" bounds are open), in key order,
// reading every leaf it visits whole (so under Serializable, a change anywhere in the range
// conflicts).
func (t *tree) scan(tx *txtdb.Tx, lo, hi string, fn func(e *ent) (bool, error)) error {
	id, _, err := t.descend(tx, lo)
	if err != nil {
		return err
	}
	for hops := 0; ; hops++ {
		objs, err := tx.ReadPage(t.ns, id)
		if err != nil {
			return t.nodeErr(id, err)
		}
		n, err := t.decode(id, objs)
		if err != nil {
			return err
		}
		if n.hdr.Node != "leaf" {
			return t.corrupt(id, "leaf chain reaches an inner node")
		}
		for i := range n.ents {
			e := &n.ents[i]
			if e.enc < lo {
				continue
			}
			if hi != "" && e.enc >= hi {
				return nil
			}
			if more, err := fn(e); err != nil || !more {
				return err
			}
		}
		if n.hdr.Hi == "" || (hi != "" && n.hdr.Hi >= hi) {
			return nil
		}
		if n.hdr.Next == "" {
			return t.corrupt(id, "leaf with an upper bound but no next leaf")
		}
		id = n.hdr.Next
	}
}

// pages returns every page of the tree, root first (for dropping an index and for Check).
func (t *tree) walk(tx *txtdb.Tx, fn func(n *node, depth int) error) error {
	var visit func(id string, depth int) error
	visit = func(id string, depth int) error {
		if depth > 64 {
			return t.corrupt(id, "tree deeper than 64 levels (a cycle?)")
		}
		objs, err := tx.ReadPage(t.ns, id)
		if err != nil {
			return t.nodeErr(id, err)
		}
		n, err := t.decode(id, objs)
		if err != nil {
			return err
		}
		if err := fn(n, depth); err != nil {
			return err
		}
		if n.hdr.Node == "inner" {
			for _, e := range n.ents {
				if err := visit(e.child, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return visit(t.root, 0)
}
