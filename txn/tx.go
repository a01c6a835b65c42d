package txn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

type pageKey struct {
	inc  string
	page uint64
}

type readInfo struct {
	ns     string
	exists bool
	// keys: the page was read only with ReadPageKey, under these keys; nil for a read of the
	// whole page (ReadPage, Match, an Insert's append), which a later keyed read never narrows.
	keys []string
}

type pageWrite struct {
	ns      string
	objs    []pages.Object
	deleted bool
	fresh   bool // a page number nobody committed before this transaction
	// appends: objs[base:] were appended to the committed version read (objs[:base], or prefix)
	// by inserts; the log then carries only them. Validation guarantees that version is still the latest.
	// (base also serves keyed, below.)
	appends bool
	base    int
	// prefix, for an insert's append to a committed version: that version's objects, shared with
	// the index and never written (capped, so an append copies). The page as this transaction
	// sees it is then prefix followed by objs, and objs (base 0) holds only the appended objects:
	// an insert into a page of many objects copies none of them. Set only with appends.
	prefix []pages.Object
	// keyed: a keyed append (AppendPage) to a page this transaction did not otherwise write.
	// objs is the page as this transaction sees it (the snapshot's contents, objs[:base], then
	// the appended objects); the log carries only objs[base:], which go at the end of the page as
	// it is at commit.
	keyed bool
	keys  []string
}

// Tx is a transaction. It reads exactly its snapshot plus its own writes. A Tx is used by one
// goroutine at a time; different transactions may run concurrently.
type Tx struct {
	db       *DB
	idx      *index // the index of the snapshot's history
	ctx      context.Context
	snap     pages.TSN
	writable bool
	iso      Isolation
	done     bool
	commit   pages.TSN // the TSN this transaction committed as (0 if none)

	// Writable transactions only.
	rs  readSet
	ws  writeSet
	ins insertState
}

// readSet is what a writable transaction depends on: validation checks each against what
// committed after the snapshot.
type readSet struct {
	nsDeps   smallMap[string, bool]      // namespace name -> written into (else only read)
	prefixes map[string]bool             // subtrees deleted or renamed
	listed   bool                        // Namespaces was called: any create, delete or rename conflicts
	reads    smallMap[pageKey, readInfo] // pages read, also those found missing
	scans    map[string]string           // incarnation -> name, for Match (the page set)
}

// writeSet is what a writable transaction changes, in order.
type writeSet struct {
	writes  smallMap[pageKey, *pageWrite]
	order   []pageKey
	nsOps   []op
	names   map[string]string // this transaction's namespace changes: name -> incarnation ("" = gone)
	created map[string]uint64 // incarnations created here -> next page number
}

// insertState is where a transaction's inserts go.
type insertState struct {
	fill     smallMap[string, uint64]  // incarnation -> page this transaction is filling with inserts
	fresh    map[string][]uint64       // incarnation -> fresh page numbers taken from this process's blocks
	hotTaken smallMap[string, hotPage] // incarnation -> this process's hot page it took
}

// A transaction's sets start empty: their smallMaps hold nothing yet, their maps are nil and
// setKey makes one at its first entry (most transactions use a few of the ten, and a writable
// Begin made all of them).
func newReadSet() readSet { return readSet{} }

func newWriteSet() writeSet { return writeSet{} }

func newInsertState() insertState { return insertState{} }

// setKey sets (*m)[k] = v, making the map first if it is nil.
func setKey[K comparable, V any](m *map[K]V, k K, v V) {
	if *m == nil {
		*m = map[K]V{}
	}
	(*m)[k] = v
}

// Begin starts a transaction at the last committed TSN. It takes no file lock.
// ctx bounds everything the transaction does, its Commit included.
func (db *DB) Begin(ctx context.Context, writable bool) (*Tx, error) {
	if err := db.usable(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if writable && db.cfg.ReadOnly {
		return nil, ErrReadOnlyDB
	}
	// The published floor goes down (if it was idle) before state is read: cleanup never deletes
	// what the snapshot this Begin gets can read.
	if err := db.floor.enter(); err != nil {
		return nil, fmt.Errorf("txtdb: begin: %w", err)
	}
	st, y, err := db.current(ctx, true) // pins st.tsn in y
	if fn := faults.begin.Load(); fn != nil {
		(*fn)()
	}
	db.floor.pinned(st.TSN, err == nil)
	if err != nil {
		if db.closed.Load() {
			return nil, ErrClosed // closed under us: its files went away mid-read
		}
		return nil, fmt.Errorf("txtdb: begin: %w", err)
	}
	tx := &Tx{db: db, idx: y, ctx: ctx, snap: st.TSN, writable: writable, iso: db.cfg.Isolation}
	if writable {
		tx.rs, tx.ws, tx.ins = newReadSet(), newWriteSet(), newInsertState()
	}
	return tx, nil
}

// readState reads state without a lock. A torn slot falls back to the other one; if both fail
// (a brand-new file being written), it retries a few times.
func (db *DB) readState() (state, error) {
	var err error
	for range 100 {
		var st state
		if st, err = db.state.Read(); err == nil || errors.Is(err, ErrVersion) {
			return st, err
		}
	}
	return state{}, err
}

// Snapshot returns the TSN this transaction reads at.
func (tx *Tx) Snapshot() pages.TSN { return tx.snap }

// CommitTSN returns the TSN the transaction committed as: 0 before a successful Commit and for
// a transaction that changed nothing.
func (tx *Tx) CommitTSN() pages.TSN { return tx.commit }

// Writable reports whether the transaction may write.
func (tx *Tx) Writable() bool { return tx.writable }

func (tx *Tx) check(write bool) error {
	if tx.done {
		return ErrTxClosed
	}
	if write && !tx.writable {
		return ErrReadOnly
	}
	if err := tx.db.usable(); err != nil {
		return err
	}
	return tx.ctx.Err()
}

// resolve returns the incarnation ns names for this transaction and records the dependency.
func (tx *Tx) resolve(ns string, write bool) (string, error) {
	if err := pages.ValidateNamespace(ns); err != nil {
		return "", err
	}
	inc, mine := "", false
	if tx.writable {
		inc, mine = tx.ws.names[ns]
		tx.rs.nsDeps.set(ns, tx.rs.nsDeps.at(ns) || write)
	}
	if !mine {
		tx.idx.mu.RLock()
		inc = tx.idx.incAt(ns, tx.snap)
		tx.idx.mu.RUnlock()
	}
	if inc == "" {
		return "", fmt.Errorf("%w: %q", ErrNamespaceNotFound, ns)
	}
	return inc, nil
}

// visibleUnder lists the namespaces equal to or below prefix that this transaction sees.
func (tx *Tx) visibleUnder(prefix string) []string {
	tx.idx.mu.RLock()
	names := tx.idx.namesUnder(prefix, tx.snap)
	tx.idx.mu.RUnlock()
	set := map[string]bool{}
	for _, n := range names {
		set[n] = true
	}
	for n, inc := range tx.ws.names {
		if under(n, prefix) {
			set[n] = inc != ""
		}
	}
	var out []string
	for n, ok := range set {
		if ok {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// Namespaces lists the namespaces this transaction sees, sorted. Under Serializable, the list
// counts as read: a concurrent create, delete or rename makes this transaction's commit fail.
func (tx *Tx) Namespaces() ([]string, error) {
	if err := tx.check(false); err != nil {
		return nil, err
	}
	if tx.writable {
		tx.rs.listed = true
	}
	return tx.visibleUnder(""), nil // every name lies below ""
}

// CreateNamespace creates ns ("a.b.c" needs no "a" or "a.b" first). ErrNamespaceExists if it exists.
func (tx *Tx) CreateNamespace(ns string) error {
	if err := tx.check(true); err != nil {
		return err
	}
	if _, err := tx.resolve(ns, true); err == nil {
		return fmt.Errorf("%w: %q", ErrNamespaceExists, ns)
	} else if !isNoNamespace(err) {
		return err
	}
	inc := uuid.NewString()
	setKey(&tx.ws.names, ns, inc)
	setKey(&tx.ws.created, inc, 1)
	tx.ws.nsOps = append(tx.ws.nsOps, op{Kind: opCreate, NS: ns, Inc: inc})
	return nil
}

// DeleteNamespace deletes ns and every namespace below it, with their pages.
func (tx *Tx) DeleteNamespace(ns string) error {
	if err := tx.check(true); err != nil {
		return err
	}
	if _, err := tx.resolve(ns, true); err != nil {
		return err
	}
	setKey(&tx.rs.prefixes, ns, true)
	for _, n := range tx.visibleUnder(ns) {
		inc, _ := tx.resolve(n, true)
		setKey(&tx.ws.names, n, "")
		tx.ws.nsOps = append(tx.ws.nsOps, op{Kind: opDrop, NS: n, Inc: inc})
	}
	return nil
}

// RenameNamespace renames oldNS to newNS, carrying the namespaces below it along.
func (tx *Tx) RenameNamespace(oldNS, newNS string) error {
	if err := tx.check(true); err != nil {
		return err
	}
	if err := pages.ValidateNamespace(newNS); err != nil {
		return err
	}
	if _, err := tx.resolve(oldNS, true); err != nil {
		return err
	}
	if under(newNS, oldNS) {
		return &pages.NameError{Kind: "namespace", Name: newNS, Reason: "rename target lies inside " + oldNS}
	}
	moves := tx.visibleUnder(oldNS)
	for _, n := range moves {
		to := newNS + n[len(oldNS):]
		if _, err := tx.resolve(to, true); err == nil {
			return fmt.Errorf("%w: %q", ErrNamespaceExists, to)
		} else if !isNoNamespace(err) {
			return err
		}
	}
	setKey(&tx.rs.prefixes, oldNS, true)
	for _, n := range moves {
		to := newNS + n[len(oldNS):]
		inc, _ := tx.resolve(n, true)
		setKey(&tx.ws.names, n, "")
		setKey(&tx.ws.names, to, inc)
		tx.ws.nsOps = append(tx.ws.nsOps, op{Kind: opRename, NS: n, To: to, Inc: inc})
	}
	return nil
}

// read returns a page as this transaction sees it and records the read of the whole page.
func (tx *Tx) read(ns, inc string, n uint64) ([]pages.Object, error) {
	return tx.readAs(ns, inc, n, "")
}

// readAs returns a page as this transaction sees it and records the read: of the whole page, or,
// with a key, of what a change under that key could alter (ReadPageKey).
func (tx *Tx) readAs(ns, inc string, n uint64, key string) ([]pages.Object, error) {
	k := pageKey{inc, n}
	if tx.writable {
		if w := tx.ws.writes.at(k); w != nil {
			if w.deleted {
				return nil, notFound(ns, n)
			}
			if w.keyed { // the snapshot's contents are read (the page existed: AppendPage checked)
				tx.noteRead(k, ns, true, key)
			}
			return w.view(), nil
		}
	}
	tx.idx.mu.RLock()
	v, ok := tx.idx.get(inc, n, tx.snap)
	tx.idx.mu.RUnlock()
	if tx.writable {
		tx.noteRead(k, ns, ok, key)
	}
	if !ok {
		return nil, notFound(ns, n)
	}
	objs, err := tx.db.contents(tx.idx, inc, n, v)
	if err != nil {
		return nil, fmt.Errorf("txtdb: read %s/%s: %w", ns, pages.PageID(n), tx.db.tooOld(tx.idx, tx.snap, err))
	}
	return slices.Clone(objs), nil
}

// noteRead records a read of a page: of the whole page (key ""), or keyed. A whole-page read
// is never narrowed by a keyed one; keyed reads add up their keys.
func (tx *Tx) noteRead(k pageKey, ns string, exists bool, key string) {
	r, seen := tx.rs.reads.get(k)
	switch {
	case key == "" || (seen && r.keys == nil):
		r = readInfo{ns: ns, exists: exists}
	case !seen:
		r = readInfo{ns: ns, exists: exists, keys: []string{key}}
	case !slices.Contains(r.keys, key):
		r.keys = append(r.keys, key)
	}
	tx.rs.reads.set(k, r)
}

func notFound(ns string, n uint64) error {
	return fmt.Errorf("%w: %s/%s", ErrNotFound, ns, pages.PageID(n))
}

func isNoNamespace(err error) bool { return errors.Is(err, ErrNamespaceNotFound) }

// ReadPage returns the objects of a page. ErrNotFound if the page does not exist at the snapshot
// (that, too, is recorded as a read).
func (tx *Tx) ReadPage(ns, pageID string) ([]pages.Object, error) {
	inc, n, err := tx.page(ns, pageID)
	if err != nil {
		return nil, err
	}
	return tx.read(ns, inc, n)
}

// page resolves a page for reading: the transaction is open, ns exists at the snapshot, pageID
// is a page ID.
func (tx *Tx) page(ns, pageID string) (inc string, n uint64, err error) {
	if err := tx.check(false); err != nil {
		return "", 0, err
	}
	if inc, err = tx.resolve(ns, false); err != nil {
		return "", 0, err
	}
	n, err = pages.ParsePageID(pageID)
	return inc, n, err
}

// Match returns the pages of ns whose IDs match pattern ('*' any run, '?' one character). Under
// Serializable the namespace's page set counts as read: a concurrent insert or delete conflicts.
func (tx *Tx) Match(ns, pattern string) (map[string][]pages.Object, error) {
	if err := tx.check(false); err != nil {
		return nil, err
	}
	inc, err := tx.resolve(ns, false)
	if err != nil {
		return nil, err
	}
	tx.idx.mu.RLock()
	nums := tx.idx.pagesAt(inc, tx.snap)
	tx.idx.mu.RUnlock()
	if tx.writable {
		setKey(&tx.rs.scans, inc, ns)
		for _, k := range tx.ws.order {
			if k.inc == inc && tx.ws.writes.at(k).fresh && !tx.ws.writes.at(k).deleted {
				nums = append(nums, k.page)
			}
		}
	}
	out := map[string][]pages.Object{}
	for _, n := range nums {
		id := pages.PageID(n)
		if !globMatch(pattern, id) {
			continue
		}
		objs, err := tx.read(ns, inc, n)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				continue // deleted by this transaction
			}
			return nil, err
		}
		out[id] = objs
	}
	return out, nil
}

// globMatch matches '*' (any run, also empty) and '?' (one byte); everything else literally.
func globMatch(pattern, s string) bool {
	px, sx := 0, 0
	nextPx, nextSx := -1, -1
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				nextPx, nextSx = px, sx+1
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if nextSx > 0 && nextSx <= len(s) {
			px, sx = nextPx, nextSx
			continue
		}
		return false
	}
	return true
}

// view returns a copy of the page as the transaction that wrote w sees it.
func (w *pageWrite) view() []pages.Object {
	if w.prefix != nil {
		return slices.Concat(w.prefix, w.objs)
	}
	return slices.Clone(w.objs)
}

func (tx *Tx) putWrite(key pageKey, w *pageWrite) {
	if !tx.ws.writes.has(key) {
		tx.ws.order = append(tx.ws.order, key)
	}
	tx.ws.writes.set(key, w)
}

func (tx *Tx) encode(vs []any) ([]pages.Object, error) {
	objs := make([]pages.Object, len(vs))
	for i, v := range vs {
		o, err := pages.Encode(tx.db.format, v)
		if err != nil {
			return nil, err
		}
		objs[i] = o
	}
	return objs, nil
}

// Insert adds obj to namespace ns and returns the ID of the page it landed in. Concurrent inserts
// into one namespace, from any process, never conflict with each other.
func (tx *Tx) Insert(ns string, obj any) (string, error) {
	if err := tx.check(true); err != nil {
		return "", err
	}
	objs, err := tx.encode([]any{obj})
	if err != nil {
		return "", err
	}
	o := objs[0]
	inc, err := tx.resolve(ns, true)
	if err != nil {
		return "", err
	}
	layout := tx.db.layout
	if n, ok := tx.ins.fill.get(inc); ok {
		if w := tx.ws.writes.at(pageKey{inc, n}); w != nil && !w.deleted && layout.FitsAfter(w.prefix, w.objs, o) {
			w.objs = append(w.objs, o)
			return pages.PageID(n), nil
		}
	}
	next, created := tx.ws.created[inc]
	if !created {
		if !tx.ins.hotTaken.has(inc) {
			if h, ok := tx.db.alloc.takeHot(inc, tx.snap); ok {
				n := h.n
				tx.ins.hotTaken.set(inc, h)
				key := pageKey{inc, n}
				tx.idx.mu.RLock()
				v, exists := tx.idx.get(inc, n, tx.snap)
				latest := tx.idx.pageTSN(inc, n)
				tx.idx.mu.RUnlock()
				var cur []pages.Object
				if exists {
					if cur, err = tx.db.contents(tx.idx, inc, n, v); err != nil {
						return "", fmt.Errorf("txtdb: insert into %s: %w", ns, err)
					}
				}
				if mine := tx.ws.writes.has(key); !mine && exists && latest <= tx.snap && layout.Fits(cur, o) {
					tx.rs.reads.set(key, readInfo{ns: ns, exists: true})
					w := &pageWrite{ns: ns, appends: v.appends < maxAppends}
					if w.appends {
						w.prefix, w.objs = slices.Clip(cur), []pages.Object{o}
					} else {
						// After maxAppends appends in a row the page is written whole again: one
						// copy of it, with room for the transaction's next inserts.
						objs := make([]pages.Object, len(cur), len(cur)+1+len(cur)/4)
						copy(objs, cur)
						w.objs, w.base = append(objs, o), len(cur)
					}
					tx.putWrite(key, w)
					tx.ins.fill.set(inc, n)
					return pages.PageID(n), nil
				}
			}
		}
	}
	var n uint64
	if created {
		n = next
		setKey(&tx.ws.created, inc, next+1)
	} else {
		if n, err = tx.db.freshPage(tx.ctx, inc, ns); err != nil {
			return "", fmt.Errorf("txtdb: insert into %s: %w", ns, err)
		}
		setKey(&tx.ins.fresh, inc, append(tx.ins.fresh[inc], n))
	}
	tx.putWrite(pageKey{inc, n}, &pageWrite{ns: ns, objs: []pages.Object{o}, fresh: true})
	tx.ins.fill.set(inc, n)
	return pages.PageID(n), nil
}

// writable page lookup shared by UpdatePage and DeletePage.
func (tx *Tx) mustHaveRead(ns, pageID string) (pageKey, error) {
	inc, err := tx.resolve(ns, true)
	if err != nil {
		return pageKey{}, err
	}
	n, err := pages.ParsePageID(pageID)
	if err != nil {
		return pageKey{}, err
	}
	key := pageKey{inc, n}
	if w := tx.ws.writes.at(key); w != nil && !w.keyed { // a keyed append alone is no read
		if w.deleted {
			return key, notFound(ns, n)
		}
		return key, nil
	}
	r, ok := tx.rs.reads.get(key)
	if !ok {
		return key, fmt.Errorf("%w: %s/%s", ErrNotRead, ns, pageID)
	}
	if !r.exists {
		return key, notFound(ns, n)
	}
	return key, nil
}

// UpdatePage replaces a page's objects. The page must have been read by this transaction
// (ReadPage or ReadPageKey). It replaces this transaction's own appends to the page too.
func (tx *Tx) UpdatePage(ns, pageID string, objs ...any) error {
	if err := tx.check(true); err != nil {
		return err
	}
	key, err := tx.mustHaveRead(ns, pageID)
	if err != nil {
		return err
	}
	encoded, err := tx.encode(objs)
	if err != nil {
		return err
	}
	w := &pageWrite{ns: ns, objs: encoded}
	if old := tx.ws.writes.at(key); old != nil {
		w.fresh = old.fresh
	}
	tx.putWrite(key, w)
	return nil
}

// DeletePage deletes a page. The page must have been read by this transaction (ReadPage or
// ReadPageKey).
func (tx *Tx) DeletePage(ns, pageID string) error {
	if err := tx.check(true); err != nil {
		return err
	}
	key, err := tx.mustHaveRead(ns, pageID)
	if err != nil {
		return err
	}
	w := &pageWrite{ns: ns, deleted: true}
	if old := tx.ws.writes.at(key); old != nil {
		w.fresh = old.fresh
	}
	tx.putWrite(key, w)
	if n, ok := tx.ins.fill.get(key.inc); ok && n == key.page {
		tx.ins.fill.del(key.inc)
	}
	return nil
}

// prepare turns the write set into log ops, encoded outside the commit lock: the JSON array of the
// ops, each op's Span naming its text in it (so one op can be encoded again: see reencode).
func (tx *Tx) prepare() ([]op, []byte, error) {
	ops := slices.Clone(tx.ws.nsOps)
	for _, key := range tx.ws.order {
		w := tx.ws.writes.at(key)
		id := pages.PageID(key.page)
		if w.deleted {
			if !w.fresh {
				ops = append(ops, op{Kind: opDel, NS: w.ns, Inc: key.inc, Page: id, PageNo: key.page})
			}
			continue
		}
		kind, objs := opPut, w.objs
		var keys []string
		switch {
		case w.keyed:
			kind, objs, keys = opAppend, w.objs[w.base:], slices.Clone(w.keys)
		case w.appends:
			kind, objs = opAppend, w.objs[w.base:]
		}
		raw, err := wal.EncodeObjs(tx.db.format, objs)
		if err != nil {
			return nil, nil, err
		}
		ops = append(ops, op{Kind: kind, NS: w.ns, Inc: key.inc, Page: id, New: w.fresh && kind == opPut,
			Keys: keys, Objs: raw, Compact: true, Objects: objs, PageNo: key.page})
	}
	opsJSON, err := encodeOps(ops)
	if err != nil {
		return nil, nil, err
	}
	return ops, opsJSON, nil
}

// encodeOps encodes ops as the ops array of a record and sets each op's Span to its text there.
// The array encoded element by element is what encoding/json writes for the whole array. Each
// op's Span names its text in that array (and its checksum, computed here rather than under the
// commit lock); framing moves it to the record's line.
func encodeOps(ops []op) ([]byte, error) {
	var b bytes.Buffer
	n := 2
	for i := range ops {
		n += 160 + len(ops[i].NS) // the op's names and punctuation, about
		for _, raw := range ops[i].Objs {
			n += len(raw) + 1
		}
	}
	b.Grow(n)
	b.WriteByte('[')
	for i := range ops {
		if i > 0 {
			b.WriteByte(',')
		}
		from := b.Len()
		if err := wal.AppendOp(&b, &ops[i]); err != nil {
			return nil, err
		}
		ops[i].Span = wal.MakeSpan(b.Bytes(), from, b.Len())
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}

// Commit makes the transaction's changes durable and visible to every process, or fails with
// ErrConflict (nothing of it visible). Read-only transactions always commit. The transaction is
// closed afterwards, whatever the outcome.
func (tx *Tx) Commit() error {
	if tx.done {
		return ErrTxClosed
	}
	committed := false
	defer func() { tx.finish(committed) }()
	if err := tx.db.usable(); err != nil {
		return err
	}
	if !tx.writable || (tx.ws.writes.len() == 0 && len(tx.ws.nsOps) == 0) {
		committed = true
		return nil
	}
	if err := tx.ctx.Err(); err != nil {
		return fmt.Errorf("txtdb: commit not started: %w", err)
	}
	ops, opsJSON, err := tx.prepare()
	if err != nil {
		return fmt.Errorf("txtdb: commit: %w", err)
	}
	if len(ops) == 0 {
		committed = true
		return nil
	}
	req := &request{tx: tx, ops: ops, opsJSON: opsJSON}
	err = tx.db.submit(tx.ctx, req)
	committed = err == nil
	if committed {
		tx.commit = req.tsn
	}
	return err
}

// Rollback discards the transaction. ErrTxClosed if it already ended.
func (tx *Tx) Rollback() error {
	if tx.done {
		return ErrTxClosed
	}
	tx.finish(false)
	return nil
}

// finish closes the transaction: releases its snapshot and hands its insert pages back.
func (tx *Tx) finish(committed bool) {
	tx.done = true
	db := tx.db
	tx.idx.unpin(tx.snap)
	db.floor.unpin(tx.snap)
	if !tx.writable {
		return
	}
	for inc, h := range tx.ins.hotTaken.all() {
		if n, ok := tx.ins.fill.get(inc); !committed && ok && n == h.n {
			db.alloc.putHot(inc, h) // unchanged: still a good page to append to
		}
	}
	if committed {
		for inc, n := range tx.ins.fill.all() {
			if _, created := tx.ws.created[inc]; !created {
				db.alloc.putHot(inc, hotPage{n: n, tsn: tx.commit})
			}
		}
		return
	}
	for inc, ns := range tx.ins.fresh {
		db.alloc.giveBack(inc, ns)
	}
}

// tooOld turns a failed load of a read-only handle's snapshot, after cleanup passed it, into
// ErrSnapshotTooOld: a read-only handle publishes no floor, so it pins nothing.
func (db *DB) tooOld(x *index, snap pages.TSN, err error) error {
	if !db.cfg.ReadOnly || !errors.Is(err, pages.ErrCorrupt) {
		return err
	}
	x.mu.RLock()
	lineage := x.lineage
	x.mu.RUnlock()
	if h, herr := db.horizon.at(lineage); herr == nil && h > snap {
		return fmt.Errorf("%w: snapshot %d, cleanup horizon %d (%w)", ErrSnapshotTooOld, snap, h, err)
	}
	return err
}
