package txn

import (
	"fmt"
	"slices"
	"sync"

	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// version is one committed version of a page. Its contents are in memory (loaded: on the page
// cache's list, evicted when the cache is full), or in its page file (onDisk), or in the log
// record at loc: a put holds the whole page, an append the objects added to its base. A
// version's fields change only under its index's mu (lru under the cache's).
type version struct {
	tsn     pages.TSN
	deleted bool
	append  bool           // the record at loc appended delta to base
	loaded  bool           // objs holds the contents
	objs    []pages.Object // valid if loaded
	onDisk  bool           // the page file <inc dir>/<page>.<ext>.v<tsn> holds the contents
	loc     recLoc         // the log record that wrote it (zero for versions from the catalog)
	span    wal.Span       // where in that record's line its op is (zero: not known)
	base    *version       // append: the version the objects were appended to
	delta   []pages.Object // append: the objects appended, while in memory
	appends int            // appends since the page was last written whole (bounded by maxAppends)
	keys    []string       // a keyed change (AppendPage): its keys; nil for any other change
	lru     lruLink        // guarded by the cache's mu: its place on the LRU list
}

// recLoc is where a record's line is in the log: its start, its length and the chain value it
// continues (so it can be checked alone).
type recLoc struct {
	seg  pages.TSN
	off  int64
	n    int64
	prev uint32
}

// reloadable reports whether the contents can be dropped and loaded again.
func (v *version) reloadable() bool { return v.onDisk || v.loc.seg != 0 }

// maxAppends bounds a page's run of append records: the next insert writes the page whole, and
// the commit lock holder writes the next keyed append whole (a put that keeps its keys), so
// rebuilding any version from the log reads at most this many records after a whole page.
const maxAppends = 64

// pageHist holds a page's versions that some reader may still need, oldest first.
type pageHist struct {
	vs []*version
}

func (h *pageHist) latest() *version { return h.vs[len(h.vs)-1] }

// at returns the newest version with tsn <= snap.
func (h *pageHist) at(snap pages.TSN) (*version, bool) {
	for i := len(h.vs) - 1; i >= 0; i-- {
		if h.vs[i].tsn <= snap {
			return h.vs[i], true
		}
	}
	return nil, false
}

// incarnation is one life of a namespace: created once, possibly renamed, dropped at most once.
// Deleting and re-creating a name makes a new incarnation, so old pages never come back.
type incarnation struct {
	id       string
	pages    map[uint64]*pageHist
	setTSN   pages.TSN // last TSN that added or removed a page (the page set changed)
	reserved uint64    // page numbers below this are committed or reserved by some process
}

// nameVer says which incarnation a name denotes from tsn on ("" = none).
type nameVer struct {
	tsn pages.TSN
	inc string
}

// index is a process's in-memory view of the committed history: every record up to applied,
// each applied whole and only after it was durable and named by state.
type index struct {
	mu      sync.RWMutex
	applied pages.TSN // guarded by mu
	pos     logPos    // guarded by mu: end of the last applied record
	seq     uint64    // guarded by mu: seq of the newest state slot the index reflects
	lineage string    // guarded by mu
	incs    map[string]*incarnation
	names   map[string][]nameVer // oldest first
	snaps   map[pages.TSN]int    // active snapshots in this process (multiset); guarded by mu
	dead    []pageKeyTSN         // deleted pages, removed once no snapshot can read them
	gone    []incTSN             // dropped incarnations and names, forgotten once no snapshot can read them
	base    pages.TSN            // the checkpoint TSN the index was built from (0 = the whole log)
	// exact: history after this TSN is whole (apply and sweep forgot nothing newer), so a
	// transaction of another process with a snapshot at or above it validates against this index
	// exactly as against its own; guarded by mu
	exact pages.TSN
	cache *pageCache // the handle's page cache (nil in tests of the index alone)
}

type incTSN struct {
	inc, name string
	tsn       pages.TSN
}

type pageKeyTSN struct {
	key pageKey
	tsn pages.TSN
}

func (x *index) seqSeen() uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.seq
}

// pin registers a snapshot so pruning keeps what it reads; unpin releases it.
func (x *index) pin(snap pages.TSN) {
	x.mu.Lock()
	x.snaps[snap]++
	x.mu.Unlock()
}

func (x *index) unpin(snap pages.TSN) {
	x.mu.Lock()
	if x.snaps[snap]--; x.snaps[snap] <= 0 {
		delete(x.snaps, snap)
	}
	x.mu.Unlock()
}

func newIndex() *index {
	return &index{
		incs:  map[string]*incarnation{},
		names: map[string][]nameVer{},
		snaps: map[pages.TSN]int{},
	}
}

// REQUIRES: mu held (read).
func (x *index) incAt(name string, snap pages.TSN) string {
	vs := x.names[name]
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].tsn <= snap {
			return vs[i].inc
		}
	}
	return ""
}

// REQUIRES: mu held (read).
func (x *index) nameTSN(name string) pages.TSN {
	vs := x.names[name]
	if len(vs) == 0 {
		return 0
	}
	return vs[len(vs)-1].tsn
}

// namesUnder returns the names equal to prefix or below it ("a" covers "a.b") that exist at snap.
// REQUIRES: mu held (read).
func (x *index) namesUnder(prefix string, snap pages.TSN) []string {
	var out []string
	for name := range x.names {
		if under(name, prefix) && x.incAt(name, snap) != "" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// prefixTSN returns the newest change to any name equal to or below prefix.
// REQUIRES: mu held (read).
func (x *index) prefixTSN(prefix string) (string, pages.TSN) {
	var (
		worst string
		max   pages.TSN
	)
	for name, vs := range x.names {
		if under(name, prefix) {
			if t := vs[len(vs)-1].tsn; t > max {
				worst, max = name, t
			}
		}
	}
	return worst, max
}

// REQUIRES: mu held (read).
func (x *index) get(inc string, page uint64, snap pages.TSN) (*version, bool) {
	in := x.incs[inc]
	if in == nil {
		return nil, false
	}
	h := in.pages[page]
	if h == nil {
		return nil, false
	}
	v, ok := h.at(snap)
	if !ok || v.deleted {
		return nil, false
	}
	return v, true
}

// pageTSN returns the TSN of the newest version of a page (0 if none).
// REQUIRES: mu held (read).
func (x *index) pageTSN(inc string, page uint64) pages.TSN {
	if in := x.incs[inc]; in != nil {
		if h := in.pages[page]; h != nil {
			return h.latest().tsn
		}
	}
	return 0
}

// keyedTSN returns the TSN of the newest change to a page after snap that a keyed change or read
// under keys depends on: a change that is not keyed, or a keyed one that shares a key (returned
// too; "" for a change that is not keyed). 0 if there is none. REQUIRES: the page existed at snap.
// Its history is then still here (the version at snap and everything newer are kept while snap is
// pinned); if it were not, the page counts as changed, never as unchanged.
// REQUIRES: mu held (read); snap pinned in this index.
func (x *index) keyedTSN(inc string, page uint64, snap pages.TSN, keys []string) (pages.TSN, string) {
	var h *pageHist
	if in := x.incs[inc]; in != nil {
		h = in.pages[page]
	}
	if h == nil {
		return max(x.applied, snap+1), "" // unreachable (see above); a conflict, to be safe
	}
	for i := len(h.vs) - 1; i >= 0 && h.vs[i].tsn > snap; i-- {
		v := h.vs[i]
		if v.keys == nil {
			return v.tsn, ""
		}
		if k, ok := sharedKey(v.keys, keys); ok {
			return v.tsn, k
		}
	}
	return 0, ""
}

// sharedKey returns a key that a and b both hold.
func sharedKey(a, b []string) (string, bool) {
	for _, k := range a {
		if slices.Contains(b, k) {
			return k, true
		}
	}
	return "", false
}

// pagesAt returns the page numbers of inc that exist at snap, ascending.
// REQUIRES: mu held (read).
func (x *index) pagesAt(inc string, snap pages.TSN) []uint64 {
	in := x.incs[inc]
	if in == nil {
		return nil
	}
	var out []uint64
	for n, h := range in.pages {
		if v, ok := h.at(snap); ok && !v.deleted {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// floor is the oldest snapshot any transaction of this process may still read at.
// REQUIRES: mu held.
func (x *index) floor() pages.TSN {
	f := x.applied
	for s := range x.snaps {
		if s < f {
			f = s
		}
	}
	return f
}

// foreignLag is how far behind the newest TSN this process keeps history that its own snapshots
// no longer need: the commit lock holder validates requests of other processes (board.go) whose
// snapshot is at least that recent.
const foreignLag = 256

// pruneFloor returns the snapshot below which apply and sweep may forget history (the oldest of
// this process's snapshots, at most foreignLag behind the newest TSN), and local, the oldest of
// this process's snapshots (floor). It moves exact up to the first. REQUIRES: mu held (write).
func (x *index) pruneFloor() (f, local pages.TSN) {
	local = x.floor()
	f = min(local, x.applied-min(x.applied, foreignLag))
	x.exact = max(x.exact, f)
	return f, local
}

// exactSince returns exact (see index). REQUIRES: mu held (read).
func (x *index) exactSince() pages.TSN { return max(x.exact, x.base) }

// lineageOf returns the history the index belongs to.
func (x *index) lineageOf() string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.lineage
}

// apply adds one whole, durable record to the index.
// REQUIRES: mu held (write); r follows the last applied record.
func (x *index) apply(r *record, start, end logPos) error {
	if r.IsReservation() {
		if r.TSN != x.applied {
			return fmt.Errorf("%w: reservation at tsn %d after %d", wal.ErrBadRecord, r.TSN, x.applied)
		}
	} else if r.TSN != x.applied+1 {
		return fmt.Errorf("%w: tsn %d after %d", wal.ErrBadRecord, r.TSN, x.applied)
	}
	if err := x.check(r); err != nil {
		return err
	}
	floor, local := x.pruneFloor()
	for i := range r.Ops {
		o := &r.Ops[i]
		in := x.incs[o.Inc]
		switch o.Kind {
		case opCreate:
			x.incs[o.Inc] = &incarnation{id: o.Inc, pages: map[uint64]*pageHist{}, reserved: 1}
			x.names[o.NS] = append(x.names[o.NS], nameVer{tsn: r.TSN, inc: o.Inc})
		case opDrop:
			x.names[o.NS] = append(x.names[o.NS], nameVer{tsn: r.TSN})
			x.gone = append(x.gone, incTSN{inc: o.Inc, name: o.NS, tsn: r.TSN})
		case opRename:
			x.names[o.NS] = append(x.names[o.NS], nameVer{tsn: r.TSN})
			x.names[o.To] = append(x.names[o.To], nameVer{tsn: r.TSN, inc: o.Inc})
			x.gone = append(x.gone, incTSN{name: o.NS, tsn: r.TSN})
		case opReserve:
			if in != nil { // a reservation for an incarnation dropped meanwhile is moot
				in.reserved = max(in.reserved, o.Upto)
			}
		case opPut, opAppend, opDel:
			h := in.pages[o.PageNo]
			existed := h != nil && !h.latest().deleted
			if h == nil {
				h = &pageHist{}
				in.pages[o.PageNo] = h
			}
			v := &version{tsn: r.TSN, deleted: o.Kind == opDel, loaded: o.Kind == opPut && !o.Lazy, objs: o.Objects, keys: o.Keys,
				loc: recLoc{seg: start.Seg, off: start.Off, n: end.Off - start.Off, prev: start.Chain}, span: o.Span}
			if o.Kind == opAppend {
				b := h.latest()
				v.append, v.base, v.appends = true, b, b.appends+1
				if b.loaded && !o.Lazy {
					// Appended in place where the base's array has room: the base keeps its
					// prefix, and nothing else writes past a version's length (a version has
					// one successor; readers get copies or capped slices: ReadPage, PeekPage),
					// so an append costs the objects appended, not the page (inserts pack many
					// objects to a page).
					v.loaded, v.objs = true, append(b.objs, o.Objects...)
				}
				// Otherwise the appended objects are not kept (they would be memory outside the
				// cache's bound): the first read loads them from the record at loc.
			}
			if v.loaded && x.cache != nil {
				x.cache.add(x, v)
			}
			h.vs = append(h.vs, v)
			if existed != (o.Kind != opDel) {
				in.setTSN = r.TSN
			}
			in.reserved = max(in.reserved, o.PageNo+1)
			h.prune(floor, local, x.cache)
			if o.Kind == opDel {
				x.dead = append(x.dead, pageKeyTSN{pageKey{o.Inc, o.PageNo}, r.TSN})
			}
		}
	}
	x.applied = r.TSN
	x.pos = end
	x.sweep()
	return nil
}

// cold reports whether the latest version of page n of incarnation inc is not in memory (not
// loaded, or there is none): a change to it is applied without its objects (wal.Op.Lazy), which
// the first read of the page loads from the log. A process catching up on every other process's
// commits so decodes only the pages it reads. Safe for concurrent use.
func (x *index) cold(inc string, n uint64) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	in := x.incs[inc]
	if in == nil {
		return true
	}
	h := in.pages[n]
	return h == nil || !h.latest().loaded
}

// check verifies that a whole record applies, before any of it is applied.
// REQUIRES: mu held.
func (x *index) check(r *record) error {
	created := map[string]bool{}
	for i := range r.Ops {
		o := &r.Ops[i]
		in := x.incs[o.Inc]
		if o.Kind == opCreate {
			if in != nil || created[o.Inc] {
				return fmt.Errorf("%w: incarnation %s created twice", wal.ErrBadRecord, o.Inc)
			}
			created[o.Inc] = true
			continue
		}
		if in == nil && !created[o.Inc] && o.Kind != opReserve {
			return fmt.Errorf("%w: op %s on unknown namespace incarnation %s", wal.ErrBadRecord, o.Kind, o.Inc)
		}
		if o.Kind == opDel || o.Kind == opAppend {
			if in == nil || in.pages[o.PageNo] == nil || in.pages[o.PageNo].latest().deleted {
				return fmt.Errorf("%w: %s of missing page %s", wal.ErrBadRecord, o.Kind, o.Page)
			}
		}
	}
	return nil
}

// sweep forgets deleted pages, dropped incarnations and the old versions of names that no
// snapshot of this process can read any more (page numbers and incarnations are never reused, so
// validation needs no tombstone: nobody can have read them since).
// REQUIRES: mu held (write).
func (x *index) sweep() {
	if len(x.dead) == 0 && len(x.gone) == 0 {
		return
	}
	floor, _ := x.pruneFloor()
	g := 0 // x.gone is in TSN order
	for ; g < len(x.gone) && x.gone[g].tsn <= floor; g++ {
		d := x.gone[g]
		if in := x.incs[d.inc]; d.inc != "" && in != nil {
			for _, h := range in.pages {
				x.cache.drop(h.vs)
			}
			delete(x.incs, d.inc)
		}
		x.pruneName(d.name, floor)
	}
	x.gone = x.gone[g:]
	n := 0 // x.dead is in TSN order
	for ; n < len(x.dead) && x.dead[n].tsn <= floor; n++ {
		d := x.dead[n]
		if in := x.incs[d.key.inc]; in != nil {
			if h := in.pages[d.key.page]; h != nil && h.latest().deleted && h.latest().tsn == d.tsn {
				x.cache.drop(h.vs)
				delete(in.pages, d.key.page)
			}
		}
	}
	x.dead = x.dead[n:]
}

// pruneName drops the versions of a name that no snapshot at or above floor can see: all but the
// newest at or below floor, and that one too if it says the name does not exist.
// REQUIRES: mu held (write).
func (x *index) pruneName(name string, floor pages.TSN) {
	vs := x.names[name]
	keep := -1
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].tsn <= floor {
			keep = i
			break
		}
	}
	if keep < 0 {
		return
	}
	if vs[keep].inc == "" {
		keep++
	}
	if vs = vs[keep:]; len(vs) == 0 {
		delete(x.names, name)
		return
	}
	x.names[name] = slices.Clone(vs)
}

// prune drops the versions before the newest at or below floor, and the contents of those before
// the newest at or below local (no reader of this process can reach them; their TSNs and keys stay
// while another process's request may still be validated against them).
func (h *pageHist) prune(floor, local pages.TSN, c *pageCache) {
	for i := len(h.vs) - 1; i > 0; i-- {
		if h.vs[i].tsn <= local {
			// Most applies find these dropped by the apply before (a version on the cache's
			// list is loaded): skip the cache's lock then.
			if slices.ContainsFunc(h.vs[:i], func(v *version) bool { return v.loaded }) {
				c.drop(h.vs[:i])
			}
			break
		}
	}
	keep := 0
	for i := len(h.vs) - 1; i >= 0; i-- {
		if h.vs[i].tsn <= floor {
			keep = i
			break
		}
	}
	if keep > 0 {
		if slices.ContainsFunc(h.vs[:keep], func(v *version) bool { return v.loaded }) {
			c.drop(h.vs[:keep])
		}
		h.vs = slices.Delete(h.vs, 0, keep)
	}
}
