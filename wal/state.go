package wal

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/txtdb/txtdb/pages"
)

// The state file holds the lock-protected metadata: the committed TSN and where the log ends. It is
// two fixed-size text slots; a writer (only ever the commit lock holder) overwrites the slot its
// previous write did not use, so a reader that catches a slot half-written (a torn read) still finds
// the other, older slot intact and checksummed. PART OF THE FORMAT: slot size, layout and fields.
// The slot's magic carries the layout version: "txtdb-state <Version>".
const StateSlotSize = 256

var CRCTable = crc32.MakeTable(crc32.Castagnoli)

// Pos names a byte position in the log: the segment (by its first TSN), an offset in it, and
// the chained crc of the line that ends there (the next record's crc starts from it).
type Pos struct {
	Seg   pages.TSN // first TSN of the segment (its file name)
	Off   int64     // byte offset just past the last whole record
	Chain uint32    // crc of the line ending at Off
}

// State is one decoded state slot.
type State struct {
	Seq     uint64    // write counter; Seq%2 is the slot it lives in
	TSN     pages.TSN // committed TSN: readers never look past it
	Pos     Pos       // end of the record that committed TSN (or of a reservation record after it)
	Lineage string    // history id: changes only when a NoSync store lost its tail in a power cut
	Boot    string    // boot id of the host when written
	NoSync  bool      // written by a commit that did not fsync the log
}

// Encode returns the slot holding s.
func (s State) Encode() []byte { return s.AppendSlot(make([]byte, 0, StateSlotSize)) }

// AppendSlot appends the slot Encode returns to dst.
func (s State) AppendSlot(dst []byte) []byte {
	start := len(dst)
	b := append(dst, stateMagic...)
	b = append(b, "seq="...)
	b = strconv.AppendUint(b, s.Seq, 10)
	b = append(b, " tsn="...)
	b = strconv.AppendUint(b, uint64(s.TSN), 10)
	b = append(b, " seg="...)
	b = strconv.AppendUint(b, uint64(s.Pos.Seg), 10)
	b = append(b, " off="...)
	b = strconv.AppendInt(b, s.Pos.Off, 10)
	b = append(b, " chain="...)
	b = appendHex32(b, s.Pos.Chain)
	b = append(b, " lineage="...)
	b = append(b, s.Lineage...)
	b = append(b, " boot="...)
	b = append(b, s.Boot...)
	b = append(b, " nosync="...)
	if s.NoSync {
		b = append(b, '1')
	} else {
		b = append(b, '0')
	}
	return finishSlot(b, start, StateSlotSize)
}

var ErrBadSlot = errors.New("bad state slot")

// decodeState is DecodeState with a fast path for the canonical slot Encode writes (fields in
// their order, single spaces, tokens of plain characters): no allocation, and the lineage and
// boot strings of prev reused when they are unchanged. Anything else goes to DecodeState, so it
// is a shortcut, never a second grammar (FuzzDecodeState holds the two to the same result).
func decodeState(slot []byte, prev *State) (State, error) {
	if s, ok := decodeStateFast(slot, prev); ok {
		return s, nil
	}
	return DecodeState(slot)
}

// stateMagic is how a slot of this layout version begins.
var stateMagic = []byte("txtdb-state " + strconv.Itoa(Version) + " ")

func decodeStateFast(slot []byte, prev *State) (State, bool) {
	var s State
	body, ok := SlotBody(slot, StateSlotSize)
	if !ok || !bytes.HasPrefix(body, stateMagic) {
		return s, false
	}
	p := body[len(stateMagic):]
	field := func(key string) []byte {
		if !ok || len(p) < len(key)+1 || string(p[:len(key)]) != key || p[len(key)] != '=' {
			ok = false
			return nil
		}
		p = p[len(key)+1:]
		i := bytes.IndexByte(p, ' ')
		if i < 0 {
			i = len(p)
		}
		v := p[:i]
		if p = p[i:]; len(p) > 0 {
			p = p[1:]
		}
		if len(v) == 0 {
			ok = false
		}
		return v
	}
	num := func(key string) uint64 {
		v := field(key)
		var n uint64
		for _, c := range v {
			if c < '0' || c > '9' || n > (1<<64-1-9)/10 {
				ok = false
				return 0
			}
			n = n*10 + uint64(c-'0')
		}
		return n
	}
	token := func(key string, prev string) string {
		v := field(key)
		for _, c := range v {
			if !plainByte(c) {
				ok = false
				return ""
			}
		}
		if string(v) == prev {
			return prev
		}
		return string(v)
	}
	s.Seq = num("seq")
	s.TSN = pages.TSN(num("tsn"))
	s.Pos.Seg = pages.TSN(num("seg"))
	s.Pos.Off = int64(num("off"))
	if chain := field("chain"); ok && len(chain) == 8 {
		s.Pos.Chain, ok = hex32(chain)
	} else {
		ok = false
	}
	s.Lineage = token("lineage", prev.Lineage)
	s.Boot = token("boot", prev.Boot)
	nosync := field("nosync")
	if !ok || len(p) != 0 || len(nosync) != 1 || (nosync[0] != '0' && nosync[0] != '1') || s.Pos.Off < 0 {
		return State{}, false
	}
	s.NoSync = nosync[0] == '1'
	return s, true
}

// hex32 parses exactly 8 lowercase hex digits.
func hex32(b []byte) (uint32, bool) {
	if len(b) != 8 {
		return 0, false
	}
	var n uint32
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | uint32(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | uint32(c-'a'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

// plainByte reports whether c may appear in a lineage or boot token on the fast path.
func plainByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

func DecodeState(slot []byte) (State, error) {
	var s State
	body, ok := SlotBody(slot, StateSlotSize)
	if !ok {
		return s, ErrBadSlot
	}
	fields := strings.Fields(string(body))
	var err error // the first field that does not parse
	if len(fields) < 2 || fields[0] != "txtdb-state" {
		return s, ErrBadSlot
	}
	// A whole, checksummed slot of another layout version is not a torn one: it must not be
	// mistaken for "no readable state" (and rebuilt).
	v, verr := strconv.Atoi(fields[1])
	if verr != nil || v <= 0 || strconv.Itoa(v) != fields[1] {
		return s, ErrBadSlot
	}
	if v != Version {
		return s, fmt.Errorf("%w: state slot names layout version %d, this build reads %d", ErrVersion, v, Version)
	}
	if len(fields) != 10 {
		return s, ErrBadSlot
	}
	kv := map[string]string{}
	for _, f := range fields[2:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return s, ErrBadSlot
		}
		kv[k] = v
	}
	num := func(k string) uint64 {
		if err != nil {
			return 0
		}
		var n uint64
		n, err = strconv.ParseUint(kv[k], 10, 64)
		return n
	}
	s.Seq = num("seq")
	s.TSN = pages.TSN(num("tsn"))
	s.Pos.Seg = pages.TSN(num("seg"))
	s.Pos.Off = int64(num("off"))
	chain, cerr := strconv.ParseUint(kv["chain"], 16, 32)
	if cerr != nil || len(kv["chain"]) != 8 {
		return s, ErrBadSlot
	}
	s.Pos.Chain = uint32(chain)
	s.NoSync = num("nosync") == 1
	s.Lineage = kv["lineage"]
	s.Boot = kv["boot"]
	if err != nil || s.Lineage == "" {
		return s, ErrBadSlot
	}
	return s, nil
}

// StateFile reads and writes the two-slot state file. Reads take no lock; writes happen only
// under the commit lock (REQUIRES: commit lock held for write).
type StateFile struct {
	f    *os.File
	m    *MappedFile // how it is read
	Path string      // the file's path

	// writeAt replaces f.WriteAt in tests: a write that fails after its bytes reached the page
	// cache, as on FUSE.
	writeAt func(b []byte, off int64) (int, error)
	// readAll replaces the read of both slots in tests: copies that catch writers mid-way.
	readAll func(buf []byte) (int, error)

	wbuf [StateSlotSize]byte // Write's encoding of a slot; under the commit lock, as Write

	memo struct { // per slot, the last bytes decoded, so an unchanged slot is not parsed again
		sync.Mutex
		raw [2][StateSlotSize]byte
		st  [2]State
		err [2]error
		ok  [2]bool
	}
}

func OpenStateFile(path string, perm os.FileMode, readOnly bool) (*StateFile, error) {
	flag := os.O_RDWR | os.O_CREATE
	if readOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, perm)
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	return &StateFile{f: f, m: NewMappedFile(f, 2*StateSlotSize), Path: path}, nil
}

// stateBufs holds the buffers Read reads both slots into (a local array would escape to the
// heap through the read: an allocation per Begin).
var stateBufs = sync.Pool{New: func() any { return new([2 * StateSlotSize]byte) }}

// ErrNoState means the file holds no valid slot: a brand-new store, or both slots destroyed.
var ErrNoState = errors.New("no valid state slot")

// Read returns the newest valid slot. A torn slot (another process mid-write) fails its checksum
// and the other slot is used; the writer never touches both at once. But a copy of both slots is
// not one instant: a reader delayed inside its copy (descheduled, on a busy host) can copy the
// older slot before one commit overwrites it and the newer one while the commit after that is
// being written, and then the only slot it finds valid is two commits old, older than states it
// may have read already. So while a slot fails its checksum, both are read again, until two
// copies agree (a slot that stays torn, as a failed write's zeros leave it, then counts as torn).
func (sf *StateFile) Read() (State, error) {
	bp := stateBufs.Get().(*[2 * StateSlotSize]byte)
	defer stateBufs.Put(bp)
	buf := bp
	var prev [2 * StateSlotSize]byte
	for try := 0; ; try++ {
		n, err := sf.readSlots(buf[:])
		if err != nil {
			return State{}, fmt.Errorf("read state: %w", err)
		}
		best, found, torn, err := sf.pick(buf, n)
		if err != nil {
			return State{}, err
		}
		if torn && n == len(buf) && try < maxStateRereads && (try == 0 || *buf != prev) {
			prev = *buf
			continue
		}
		if !found {
			return State{}, ErrNoState
		}
		return best, nil
	}
}

// ReadFresh reads the newest valid slot through a descriptor of its own, with pread, not
// through the mapping Read uses: a diagnosis of a state read that looks stale. (On a FUSE mount
// with FUSE's default cache invalidation, a page dropped and refilled while a write is on its
// way keeps the older bytes, and the mapping shows them; the new descriptor's open drops the
// page again.)
func (sf *StateFile) ReadFresh() (State, error) {
	f, err := os.Open(sf.Path)
	if err != nil {
		return State{}, fmt.Errorf("read state: %w", err)
	}
	defer f.Close()
	var buf [2 * StateSlotSize]byte
	n, err := f.ReadAt(buf[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return State{}, fmt.Errorf("read state: %w", err)
	}
	best, found, _, err := sf.pick(&buf, n)
	if err != nil {
		return State{}, err
	}
	if !found {
		return State{}, ErrNoState
	}
	return best, nil
}

// maxStateRereads bounds the copies Read makes while a slot fails its checksum.
const maxStateRereads = 8

// readSlots copies both slots into buf (readAll in tests).
func (sf *StateFile) readSlots(buf []byte) (int, error) {
	if sf.readAll != nil {
		return sf.readAll(buf)
	}
	return sf.m.Read(buf)
}

// pick returns the newest valid slot of the n bytes read into buf, and whether a slot failed to
// decode (torn).
func (sf *StateFile) pick(buf *[2 * StateSlotSize]byte, n int) (best State, found, torn bool, err error) {
	sf.memo.Lock()
	defer sf.memo.Unlock()
	for i := 0; i < 2; i++ {
		if n < (i+1)*StateSlotSize {
			break
		}
		slot := (*[StateSlotSize]byte)(buf[i*StateSlotSize : (i+1)*StateSlotSize])
		if !sf.memo.ok[i] || *slot != sf.memo.raw[i] {
			s, err := decodeState(slot[:], &sf.memo.st[i])
			sf.memo.raw[i], sf.memo.st[i], sf.memo.err[i], sf.memo.ok[i] = *slot, s, err, true
		}
		s, err := sf.memo.st[i], sf.memo.err[i]
		if errors.Is(err, ErrVersion) {
			return State{}, false, false, fmt.Errorf("read state %s: %w", sf.Path, err)
		}
		if err != nil || s.Seq%2 != uint64(i) {
			torn = true
			continue
		}
		if !found || s.Seq > best.Seq {
			best, found = s, true
		}
	}
	return best, found, torn, nil
}

// Write stores s (with s.Seq already advanced) in slot s.Seq%2. It fsyncs only when asked: state
// is rebuildable from the log, whose fsync is the commit point. REQUIRES: commit lock held.
func (sf *StateFile) Write(s State, sync bool) error {
	off := int64(s.Seq%2) * StateSlotSize
	writeAt := sf.f.WriteAt
	if sf.writeAt != nil {
		writeAt = sf.writeAt
	}
	// Zeroed if the write fails (WriteOrClear): readers then take the other slot, the current
	// state. (Both slots share a sector, so on the disk one stays valid.)
	if err := WriteOrClear(writeAt, s.AppendSlot(sf.wbuf[:0]), off); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if sync {
		if err := sf.f.Sync(); err != nil {
			return fmt.Errorf("fsync state: %w", err)
		}
	}
	return nil
}

// Sync makes the state file durable.
func (sf *StateFile) Sync() error {
	return sf.f.Sync()
}

// Close closes the file.
func (sf *StateFile) Close() error {
	sf.m.Unmap()
	return sf.f.Close()
}
