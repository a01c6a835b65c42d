package txn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/txtdb/txtdb/lockfs"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// The request board (PART OF THE FORMAT) lets the commit lock holder commit the prepared
// transactions of other processes waiting for the lock, with its own, under one fsync
// (docs/PROTOCOL.md, "Commit requests of other processes"). In .txtdb/board/:
//
//   - slots: boardSlots announcements of annSize bytes; slot i is written only by its owner;
//   - <i>.lock: held exclusively by slot i's owner for its handle's life (its liveness);
//   - <i>.offer: taken by a holder while it takes slot i's request, and by the owner to withdraw it;
//   - <i>.wake: a page whose first 4 bytes a holder increments, and wakes as a futex, once the
//     outcome of slot i's offer is published; its owner sleeps on it (wakeWord);
//   - <i>.req: the outcome of the last request taken (offset 0, written only under the commit
//     lock), and the body of the request announced (from offset outcomeRegion, written only by
//     the owner while nothing of it is pending).
const (
	boardDirName  = "board"
	boardSlots    = 64
	annSize       = 128
	outcomeRegion = 64 << 10
	boardFile     = "slots"
)

// announcement is one decoded board slot: the owner offers request seq, whose body is n bytes with
// the given checksum (n = 0: nothing offered, or withdrawn).
type announcement struct {
	owner string
	seq   uint64
	n     uint32
	crc   uint32
}

// offerID names one offer: its owner and seq.
type offerID struct {
	owner string
	seq   uint64
}

func (a announcement) id() offerID { return offerID{a.owner, a.seq} }

func (a announcement) encode() []byte {
	return wal.SlotLine(fmt.Sprintf("txtdb-req %d owner=%s seq=%d len=%d body=%08x", layoutVersion, a.owner, a.seq, a.n, a.crc), annSize)
}

// decodeAnnouncement decodes a slot; ok is false for an empty, torn or foreign one.
func decodeAnnouncement(slot []byte) (announcement, bool) {
	var a announcement
	if len(slot) != annSize || slot[annSize-1] != '\n' {
		return a, false // never written (zeros: the unclaimed slots) or torn: SlotBody would say so
	}
	if bytes.Contains(slot, []byte(" len=0 ")) {
		return a, false // offers nothing (torn or not): the common case, decided without parsing
	}
	raw, ok := wal.SlotBody(slot, annSize)
	if !ok {
		return a, false
	}
	body := string(raw)
	f := strings.Fields(body)
	if len(f) != 6 || f[0] != "txtdb-req" || f[1] != strconv.Itoa(layoutVersion) {
		return a, false
	}
	var vals [3]uint64
	owner, ok := strings.CutPrefix(f[2], "owner=")
	if !ok {
		return a, false
	}
	for j, k := range []string{"seq=", "len=", "body="} {
		v, ok := strings.CutPrefix(f[3+j], k)
		if !ok {
			return a, false
		}
		base := 10
		if k == "body=" {
			base = 16
		}
		n, err := strconv.ParseUint(v, base, 64)
		if err != nil {
			return a, false
		}
		vals[j] = n
	}
	if vals[1] > 1<<31 || vals[2] > 1<<32-1 {
		return a, false
	}
	return announcement{owner: owner, seq: vals[0], n: uint32(vals[1]), crc: uint32(vals[2])}, true
}

// outcome is what a commit lock holder decided for a request it took (offset 0 of <i>.req).
type offerOutcome struct {
	Owner string `json:"owner"`
	Seq   uint64 `json:"seq"`
	// Local: the owner took the commit lock and committed (or failed) the request itself.
	Local   bool          `json:"local,omitempty"`
	Lineage string        `json:"lineage,omitempty"` // the history the TSNs below belong to
	Res     []offerResult `json:"res,omitempty"`     // one per transaction of the request, in order
}

// result is one transaction's outcome. An accepted one has TSN: it committed exactly if state
// (in the same lineage) reaches that TSN, as the holder wrote this before its log write, and every
// holder after it rewrites the outcomes it finds past state before it commits anything.
type offerResult struct {
	TSN      pages.TSN      `json:"tsn,omitempty"`
	Conflict *ConflictError `json:"conflict,omitempty"`
	Err      string         `json:"err,omitempty"`
}

// foreignTx is one transaction of a request, as its owner encodes it: what validation needs of
// it (readSet and the writes its ops make) and its ops, exactly as they go into the record.
type foreignTx struct {
	Snap    pages.TSN         `json:"snap"`
	Lineage string            `json:"lineage"`
	Ser     bool              `json:"ser,omitempty"`
	Deps    map[string]bool   `json:"deps,omitempty"`
	Pre     []string          `json:"pre,omitempty"`
	Listed  bool              `json:"listed,omitempty"`
	Reads   []foreignRead     `json:"reads,omitempty"`
	Scans   map[string]string `json:"scans,omitempty"`
	Ops     json.RawMessage   `json:"ops"`
}

type foreignRead struct {
	Inc    string   `json:"inc"`
	Page   uint64   `json:"page"`
	NS     string   `json:"ns"`
	Exists bool     `json:"exists,omitempty"`
	Keys   []string `json:"keys,omitempty"`
}

// encodeForeign encodes a batch of this handle's requests as a request body.
func encodeForeign(reqs []*request) ([]byte, error) {
	txs := make([]foreignTx, len(reqs))
	for i, r := range reqs {
		tx := r.tx
		ft := foreignTx{Snap: tx.snap, Lineage: tx.idx.lineageOf(), Ser: tx.iso == Serializable,
			Deps: tx.rs.nsDeps.goMap(), Listed: tx.rs.listed, Scans: tx.rs.scans, Ops: r.opsJSON}
		for p := range tx.rs.prefixes {
			ft.Pre = append(ft.Pre, p)
		}
		for k, ri := range tx.rs.reads.all() {
			ft.Reads = append(ft.Reads, foreignRead{Inc: k.inc, Page: k.page, NS: ri.ns, Exists: ri.exists, Keys: ri.keys})
		}
		txs[i] = ft
	}
	n := 2
	for i := range txs {
		n += 128 + len(txs[i].Ops) + 128*len(txs[i].Reads)
	}
	if b, ok := appendForeign(make([]byte, 0, n), txs); ok {
		return b, nil
	}
	// Not json.Marshal: it would escape <, > and & (and U+2028, U+2029) in the ops, whose object
	// text must reach the record as it is (wal.EncodeObjs).
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(txs); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// decodeForeign turns a request body back into requests the holder validates like its own: each
// gets a Tx carrying the read set and the writes of its ops (idx nil unless the snapshot belongs to
// x's lineage, which fails validation with a lineage conflict).
func decodeForeign(db *DB, x *index, body []byte) ([]*request, error) {
	txs, ok := parseForeign(body)
	if !ok {
		txs = nil
		if err := json.Unmarshal(body, &txs); err != nil {
			return nil, err
		}
	}
	lineage := x.lineageOf()
	reqs := make([]*request, len(txs))
	for i, ft := range txs {
		ops, err := wal.ParseOps(db.format, ft.Ops)
		if err != nil {
			return nil, err
		}
		opsJSON := []byte(ft.Ops) // the body's own bytes: nothing rewrites them (reencode builds anew)
		if slices.ContainsFunc(ops, func(o op) bool { return o.Span.Len == 0 }) {
			// Decoded by encoding/json (not in the fast parser's shape: a key or a name that is
			// not ASCII, say), so without spans: encode them again, as their owner did, for
			// the spans a keyed append written whole (reencode) and the page cache need.
			if opsJSON, err = encodeOps(ops); err != nil {
				return nil, err
			}
		}
		tx := &Tx{db: db, snap: ft.Snap, writable: true, iso: Snapshot, rs: newReadSet(), ws: newWriteSet()}
		if ft.Ser {
			tx.iso = Serializable
		}
		if ft.Lineage == lineage {
			tx.idx = x
		}
		for k, w := range ft.Deps {
			tx.rs.nsDeps.set(k, w)
		}
		for _, p := range ft.Pre {
			setKey(&tx.rs.prefixes, p, true)
		}
		tx.rs.listed = ft.Listed
		for _, rd := range ft.Reads {
			tx.rs.reads.set(pageKey{inc: rd.Inc, page: rd.Page}, readInfo{ns: rd.NS, exists: rd.Exists, keys: rd.Keys})
		}
		for inc, ns := range ft.Scans {
			setKey(&tx.rs.scans, inc, ns)
		}
		for j := range ops {
			o := &ops[j]
			switch o.Kind {
			case opPut, opAppend, opDel:
				key := pageKey{inc: o.Inc, page: o.PageNo}
				tx.ws.writes.set(key, &pageWrite{ns: o.NS, keyed: o.Keys != nil, keys: o.Keys, deleted: o.Kind == opDel})
				tx.ws.order = append(tx.ws.order, key)
			}
		}
		reqs[i] = &request{tx: tx, ops: ops, opsJSON: opsJSON}
	}
	return reqs, nil
}

// boardSlot is this handle's own slot on the board.
type boardSlot struct {
	i       int
	lock    *os.File // holds the slot's flock for the handle's life
	offer   *os.File
	req     *os.File
	outcome *wal.MappedFile // how the outcome region of req is read
	seq     uint64          // of the last request announced
	// wake maps <i>.wake, which a holder rings once it has published the outcome of this
	// handle's offer (nil: the handle learns outcomes only under the commit lock)
	wake *wakeWord
}

// slotPeer is a holder's cached descriptors on another slot's files.
type slotPeer struct {
	lock, offer, req *os.File
	outcome          *wal.MappedFile // how the outcome region of req is read
	wake             *wakeWord       // mapped at the first ding
}

// board is a writable handle's view of .txtdb/board.
type board struct {
	dir     string
	perm    os.FileMode
	slots   *os.File
	m       *wal.MappedFile // how slots is read
	own     *boardSlot      // nil: every slot was taken; this handle commits only under the lock itself
	peers   map[int]*slotPeer
	buf     []byte          // the holder's read of the slots file
	scratch []byte          // reads of outcome lines
	done    map[int]offerID // slot -> the last offer this handle saw decided for good (or whose owner is dead)
}

// readSlots reads the slots file into b.buf, twice a commit: from the file's shared mapping once
// it holds all boardSlots slots (openBoard extends it), else with pread.
func (b *board) readSlots() (int, error) {
	n, err := b.m.Read(b.buf)
	if err != nil {
		return 0, fmt.Errorf("read commit board: %w", err)
	}
	return n, nil
}

// undecided yields the other slots whose announcements offer something this handle has not seen
// decided, as read now (a hint: collect decides). REQUIRES: commit lock held.
func (b *board) undecided() iter.Seq[int] {
	return func(yield func(int) bool) {
		n, _ := b.readSlots()
		for i := range n / annSize {
			if b.own != nil && i == b.own.i {
				continue
			}
			if a, ok := decodeAnnouncement(b.buf[i*annSize : (i+1)*annSize]); ok && a.n > 0 && b.done[i] != a.id() {
				if !yield(i) {
					return
				}
			}
		}
	}
}

// pending reports whether another slot may hold an offer this handle has not seen decided.
// REQUIRES: commit lock held.
func (b *board) pending() bool {
	for range b.undecided() {
		return true
	}
	return false
}

// pendingWakes returns the wake words of the slots pending would report, for a holder that
// releases the lock without taking their offers. REQUIRES: commit lock held.
func (b *board) pendingWakes() []*wakeWord {
	if b == nil {
		return nil
	}
	var ws []*wakeWord
	for i := range b.undecided() {
		if w := b.wakeOf(i); w != nil {
			ws = append(ws, w)
		}
	}
	return ws
}

// openBoard opens the board and claims a free slot for the handle. A slot whose lock is free
// belongs to nobody (its owner closed or died), so its announcement is stale and is cleared.
func openBoard(meta string, perm os.FileMode, owner string, watch bool) (*board, error) {
	dir := filepath.Join(meta, boardDirName)
	if err := lockfs.MkdirAll(dir, dirMode(perm)); err != nil {
		return nil, err
	}
	slots, err := os.OpenFile(filepath.Join(dir, boardFile), os.O_RDWR|os.O_CREATE, perm)
	if err != nil {
		return nil, err
	}
	// The file is extended with zeros (slots that decode as no announcement) to hold every slot,
	// so that it can be read from a mapping: a holder reads it twice a commit.
	// Best effort: where that fails, the file is read with pread.
	if fi, err := slots.Stat(); err == nil && fi.Size() < boardSlots*annSize {
		_ = slots.Truncate(boardSlots * annSize) // only ever grows it
	}
	b := &board{dir: dir, perm: perm, slots: slots, m: wal.NewMappedFile(slots, boardSlots*annSize), peers: map[int]*slotPeer{},
		done: map[int]offerID{}, buf: make([]byte, boardSlots*annSize)}
	for i := range boardSlots {
		own, err := b.claim(i, owner)
		if err != nil {
			b.close()
			return nil, err
		}
		if own == nil {
			continue
		}
		b.own = own
		if watch {
			own.wake = mapWakeWord(b.path(i, ".wake"), perm, false)
		}
		break
	}
	return b, nil
}

// claim claims slot i for owner if its lock is free (nil if it is taken), and writes an empty
// announcement there. It holds the slot's offer lock from before it takes the slot's lock until
// that announcement is written: a holder (which takes the offer lock before it looks whether the
// slot's lock is held) never sees the slot live with the announcement of its dead former owner.
func (b *board) claim(i int, owner string) (own *boardSlot, err error) {
	offer, err := os.OpenFile(b.path(i, ".offer"), os.O_RDWR|os.O_CREATE, b.perm)
	if err != nil {
		return nil, err
	}
	defer func() {
		if own == nil {
			_ = offer.Close()
		}
	}()
	if err := flockRetry(int(offer.Fd()), syscall.LOCK_EX); err != nil {
		return nil, err
	}
	defer func() { _ = syscall.Flock(int(offer.Fd()), syscall.LOCK_UN) }()
	f, err := os.OpenFile(b.path(i, ".lock"), os.O_RDWR|os.O_CREATE, b.perm)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, err
	}
	faults.didClaim(i)
	o := &boardSlot{i: i, lock: f, offer: offer}
	if o.req, err = os.OpenFile(b.path(i, ".req"), os.O_RDWR|os.O_CREATE, b.perm); err == nil {
		o.outcome = wal.NewMappedFile(o.req, outcomeRegion)
		_, err = b.slots.WriteAt(announcement{owner: owner}.encode(), int64(i*annSize))
	}
	if err != nil {
		if o.req != nil {
			_ = o.req.Close()
		}
		_ = f.Close()
		return nil, err
	}
	return o, nil
}

// ding wakes slot i's owner: the outcome of its offer is published.
func (b *board) ding(i int) {
	if w := b.wakeOf(i); w != nil {
		w.ring()
	} // else it learns the outcome when it polls, or under the lock
}

// wakeOf returns slot i's wake word, mapped at the first call (nil if it cannot be).
func (b *board) wakeOf(i int) *wakeWord {
	p, err := b.peer(i)
	if err != nil {
		return nil
	}
	if p.wake == nil {
		p.wake = mapWakeWord(b.path(i, ".wake"), b.perm, true)
	}
	return p.wake
}

func (b *board) path(i int, ext string) string {
	return filepath.Join(b.dir, strconv.Itoa(i)+ext)
}

func (b *board) close() {
	if b == nil {
		return
	}
	if o := b.own; o != nil {
		o.wake.close()
		if o.outcome != nil {
			o.outcome.Unmap()
		}
		for _, f := range []*os.File{o.req, o.offer, o.lock} {
			if f != nil {
				_ = f.Close()
			}
		}
	}
	for _, p := range b.peers {
		if p.outcome != nil {
			p.outcome.Unmap()
		}
		p.wake.close()
		for _, f := range []*os.File{p.req, p.offer, p.lock} {
			if f != nil {
				_ = f.Close()
			}
		}
	}
	b.m.Unmap()
	_ = b.slots.Close()
}

// announce offers reqs (this handle's members, in order) on its slot: the body first, then the
// announcement naming it.
func (b *board) announce(owner string, reqs []*request) error {
	body, err := encodeForeign(reqs)
	if err != nil {
		return err
	}
	o := b.own
	if _, err := o.req.WriteAt(body, outcomeRegion); err != nil {
		return err
	}
	a := announcement{owner: owner, seq: o.seq + 1, n: uint32(len(body)), crc: crc32.Checksum(body, wal.CRCTable)}
	_, err = b.slots.WriteAt(a.encode(), int64(o.i*annSize))
	if err == nil {
		err = faults.hit(faultAnnounced)
	}
	if err != nil {
		// A write that failed may still show in a holder's mapping of the slots (on FUSE the
		// kernel copies the bytes into the page cache before the file server refuses them): the
		// offer is withdrawn as any other, and if a holder took it meanwhile, the caller must
		// learn its outcome rather than commit it again.
		o.seq++
		took, werr := b.withdraw(owner)
		switch {
		case werr != nil:
			return &UnknownError{Err: errors.Join(err, fmt.Errorf("withdraw a commit request whose announcement failed: %w", werr))}
		case took:
			return errAnnouncedTaken
		}
		return err
	}
	o.seq++
	return nil
}

// errAnnouncedTaken: an announcement whose write failed showed anyway, and a holder took the
// offer (announce).
var errAnnouncedTaken = errors.New("txtdb: a commit request whose announcement failed was taken")

// withdraw takes this handle's offer back unless a holder took it already (taken: its outcome is
// on the way). It waits for a holder that is taking it right now.
func (b *board) withdraw(owner string) (taken bool, err error) {
	o := b.own
	fd := int(o.offer.Fd())
	if err := flockRetry(fd, syscall.LOCK_EX); err != nil {
		return false, err
	}
	defer func() { _ = syscall.Flock(fd, syscall.LOCK_UN) }()
	out, ok, err := b.readOutcome(o.outcome)
	if err != nil {
		return false, err
	}
	if ok && out.Owner == owner && out.Seq == o.seq {
		return true, nil
	}
	if _, err := b.slots.WriteAt(announcement{owner: owner, seq: o.seq}.encode(), int64(o.i*annSize)); err != nil {
		return false, err
	}
	return false, nil
}

func flockRetry(fd, how int) error {
	for {
		err := syscall.Flock(fd, how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// readOutcome reads the outcome at the start of a slot's req file; ok is false if there is none
// (or it is torn: a holder is writing it).
func (b *board) readOutcome(f io.ReaderAt) (offerOutcome, bool, error) {
	line, err := b.outcomeLine(f)
	if err != nil || line == nil {
		return offerOutcome{}, false, err
	}
	out, ok := decodeOutcome(line)
	return out, ok, nil
}

// outcomeLine reads the line at the start of a slot's req file into the board's scratch buffer
// (valid until the next read; nil if there is no whole line).
func (b *board) outcomeLine(f io.ReaderAt) ([]byte, error) {
	if b.scratch == nil {
		b.scratch = make([]byte, 512)
	}
	// Most outcomes are short: read 512 bytes first, whatever the longest one made scratch.
	for size := 512; ; size = min(4*size, outcomeRegion) {
		if len(b.scratch) < size {
			b.scratch = make([]byte, size)
		}
		buf := b.scratch[:size]
		n, err := f.ReadAt(buf, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			return buf[:i+1], nil
		}
		if n < size || size >= outcomeRegion {
			return nil, nil
		}
	}
}

// decodeOutcome decodes an outcome line; false if it fails its checksum or does not parse.
func decodeOutcome(line []byte) (offerOutcome, bool) {
	var out offerOutcome
	if _, err := wal.Unframe(line, &out, 0); err != nil {
		return offerOutcome{}, false
	}
	return out, true
}

// outcomeNames reports whether an outcome line begins as the outcome of owner's offer seq does
// (encoding/json writes owner and seq first, and a handle id needs no escaping): a line that does
// not cannot be that outcome, so it is not decoded.
func outcomeNames(line []byte, owner string, seq uint64) bool {
	prefix := `{"owner":"` + owner + `","seq":` + strconv.FormatUint(seq, 10)
	if len(line) <= len(prefix) || string(line[:len(prefix)]) != prefix {
		return false
	}
	c := line[len(prefix)]
	return c == ',' || c == '}'
}

// maxOfferTxs bounds the transactions of one request: their outcome, in its short form (see
// writeOutcome), always fits its region. A group with more members does not offer them; a
// holder leaves a request with more on the board (its owner commits it under the lock).
const maxOfferTxs = 256

// writeOutcome writes a slot's outcome. One that does not fit its region (conflicts naming long
// namespaces or keys) is written short: conflicts keep their reason and TSNs but not their names,
// errors a prefix of their text. With zeroOnFail (a holder's decision, where the region holds
// nothing anyone needs) a failed write is followed by zeros; a stale outcome being rewritten
// must keep its bytes instead, for its members whose TSNs landed. REQUIRES: commit lock held.
func writeOutcome(f *os.File, out offerOutcome, zeroOnFail bool) error {
	var buf bytes.Buffer
	if _, err := wal.Frame(&buf, out, 0); err != nil {
		return err
	}
	if buf.Len() > outcomeRegion {
		short := out
		short.Res = make([]offerResult, len(out.Res))
		for i, r := range out.Res {
			if r.Conflict != nil {
				r.Conflict = &ConflictError{Snapshot: r.Conflict.Snapshot, Committed: r.Conflict.Committed, Reason: r.Conflict.Reason}
			}
			if len(r.Err) > 64 {
				r.Err = strings.ToValidUTF8(r.Err[:64], "") + "..."
			}
			short.Res[i] = r
		}
		buf.Reset()
		if _, err := wal.Frame(&buf, short, 0); err != nil {
			return err
		}
	}
	if buf.Len() > outcomeRegion {
		return fmt.Errorf("outcome of %d bytes does not fit its region", buf.Len())
	}
	if zeroOnFail {
		// Zeroed if the write fails, the region reads as no outcome: what the failed group
		// leaves (it writes nothing to the log).
		return wal.WriteOrClear(f.WriteAt, buf.Bytes(), 0)
	}
	_, err := f.WriteAt(buf.Bytes(), 0)
	return err
}

// slotPeer returns the holder's descriptors on slot i's files.
func (b *board) peer(i int) (*slotPeer, error) {
	if p := b.peers[i]; p != nil {
		return p, nil
	}
	p := &slotPeer{}
	var err error
	if p.lock, err = os.OpenFile(b.path(i, ".lock"), os.O_RDWR|os.O_CREATE, b.perm); err == nil {
		if p.offer, err = os.OpenFile(b.path(i, ".offer"), os.O_RDWR|os.O_CREATE, b.perm); err == nil {
			if p.req, err = os.OpenFile(b.path(i, ".req"), os.O_RDWR|os.O_CREATE, b.perm); err == nil {
				p.outcome = wal.NewMappedFile(p.req, outcomeRegion)
			}
		}
	}
	if err != nil {
		for _, f := range []*os.File{p.req, p.offer, p.lock} {
			if f != nil {
				_ = f.Close()
			}
		}
		return nil, err
	}
	b.peers[i] = p
	return p, nil
}

// alive reports whether slot i's owner lives: its lock is held.
func (p *slotPeer) alive() (bool, error) {
	fd := int(p.lock.Fd())
	err := syscall.Flock(fd, syscall.LOCK_SH|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return false, syscall.Flock(fd, syscall.LOCK_UN)
}
