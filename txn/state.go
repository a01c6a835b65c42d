package txn

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
// The slot's magic carries the layout version: "txtdb-state <layoutVersion>".
const stateSlotSize = 256

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// logPos names a byte position in the log: the segment (by its first TSN), an offset in it, and
// the chained crc of the line that ends there (the next record's crc starts from it).
type logPos struct {
	seg   pages.TSN // first TSN of the segment (its file name)
	off   int64     // byte offset just past the last whole record
	chain uint32    // crc of the line ending at off
}

// state is one decoded state slot.
type state struct {
	seq     uint64    // write counter; seq%2 is the slot it lives in
	tsn     pages.TSN // committed TSN: readers never look past it
	pos     logPos    // end of the record that committed tsn (or of a reservation record after it)
	lineage string    // history id: changes only when a NoSync store lost its tail in a power cut
	boot    string    // boot id of the host when written
	noSync  bool      // written by a commit that did not fsync the log
}

func (s state) encode() []byte {
	ns := 0
	if s.noSync {
		ns = 1
	}
	body := fmt.Sprintf("txtdb-state %d seq=%d tsn=%d seg=%d off=%d chain=%08x lineage=%s boot=%s nosync=%d",
		layoutVersion, s.seq, s.tsn, s.pos.seg, s.pos.off, s.pos.chain, s.lineage, s.boot, ns)
	line := fmt.Sprintf("%s crc=%08x", body, crc32.Checksum([]byte(body), crcTable))
	if len(line) > stateSlotSize-1 {
		panic("txn: state slot overflow") // INVARIANT: fields are bounded (uuid-sized strings)
	}
	buf := bytes.Repeat([]byte{' '}, stateSlotSize)
	copy(buf, line)
	buf[stateSlotSize-1] = '\n'
	return buf
}

var errBadSlot = errors.New("bad state slot")

func decodeState(slot []byte) (state, error) {
	var s state
	if len(slot) != stateSlotSize || slot[stateSlotSize-1] != '\n' {
		return s, errBadSlot
	}
	line := strings.TrimRight(string(slot[:stateSlotSize-1]), " ")
	i := strings.LastIndex(line, " crc=")
	if i < 0 {
		return s, errBadSlot
	}
	body := line[:i]
	want, err := strconv.ParseUint(line[i+5:], 16, 32)
	if err != nil || uint32(want) != crc32.Checksum([]byte(body), crcTable) {
		return s, errBadSlot
	}
	fields := strings.Fields(body)
	if len(fields) < 2 || fields[0] != "txtdb-state" {
		return s, errBadSlot
	}
	// A whole, checksummed slot of another layout version is not a torn one: it must not be
	// mistaken for "no readable state" (and rebuilt).
	v, verr := strconv.Atoi(fields[1])
	if verr != nil || v <= 0 || strconv.Itoa(v) != fields[1] {
		return s, errBadSlot
	}
	if v != layoutVersion {
		return s, fmt.Errorf("%w: state slot names layout version %d, this build reads %d", ErrVersion, v, layoutVersion)
	}
	if len(fields) != 10 {
		return s, errBadSlot
	}
	kv := map[string]string{}
	for _, f := range fields[2:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return s, errBadSlot
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
	s.seq = num("seq")
	s.tsn = pages.TSN(num("tsn"))
	s.pos.seg = pages.TSN(num("seg"))
	s.pos.off = int64(num("off"))
	chain, cerr := strconv.ParseUint(kv["chain"], 16, 32)
	if cerr != nil || len(kv["chain"]) != 8 {
		return s, errBadSlot
	}
	s.pos.chain = uint32(chain)
	s.noSync = num("nosync") == 1
	s.lineage = kv["lineage"]
	s.boot = kv["boot"]
	if err != nil || s.lineage == "" {
		return s, errBadSlot
	}
	return s, nil
}

// stateFile reads and writes the two-slot state file. Reads take no lock; writes happen only
// under the commit lock (REQUIRES: commit lock held for write).
type stateFile struct {
	f    *os.File
	path string

	memo struct { // the last slots decoded, so an unchanged file is not parsed again
		sync.Mutex
		raw [2 * stateSlotSize]byte
		n   int
		st  state
		ok  bool
	}
}

func openStateFile(path string, perm os.FileMode, readOnly bool) (*stateFile, error) {
	flag := os.O_RDWR | os.O_CREATE
	if readOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, perm)
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	return &stateFile{f: f, path: path}, nil
}

// errNoState means the file holds no valid slot: a brand-new store, or both slots destroyed.
var errNoState = errors.New("no valid state slot")

// read returns the newest valid slot. A torn slot (another process mid-write) fails its checksum
// and the other slot is used; the writer never touches both at once.
func (sf *stateFile) read() (state, error) {
	var buf [2 * stateSlotSize]byte
	n, err := sf.f.ReadAt(buf[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return state{}, fmt.Errorf("read state: %w", err)
	}
	sf.memo.Lock()
	if sf.memo.ok && n == sf.memo.n && buf == sf.memo.raw {
		st := sf.memo.st
		sf.memo.Unlock()
		return st, nil
	}
	sf.memo.Unlock()
	var best state
	found := false
	for i := 0; i < 2; i++ {
		if n < (i+1)*stateSlotSize {
			break
		}
		s, err := decodeState(buf[i*stateSlotSize : (i+1)*stateSlotSize])
		if errors.Is(err, ErrVersion) {
			return state{}, fmt.Errorf("read state %s: %w", sf.path, err)
		}
		if err != nil || s.seq%2 != uint64(i) {
			continue
		}
		if !found || s.seq > best.seq {
			best, found = s, true
		}
	}
	if !found {
		return state{}, errNoState
	}
	sf.memo.Lock()
	sf.memo.raw, sf.memo.n, sf.memo.st, sf.memo.ok = buf, n, best, true
	sf.memo.Unlock()
	return best, nil
}

// write stores s (with s.seq already advanced) in slot s.seq%2. It fsyncs only when asked: state
// is rebuildable from the log, whose fsync is the commit point. REQUIRES: commit lock held.
func (sf *stateFile) write(s state, sync bool) error {
	off := int64(s.seq%2) * stateSlotSize
	if err := faults.hit(faultStateWrite); err != nil {
		return err
	}
	if _, err := sf.f.WriteAt(s.encode(), off); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if sync {
		if err := sf.f.Sync(); err != nil {
			return fmt.Errorf("fsync state: %w", err)
		}
	}
	return nil
}

// sync makes the state file durable. REQUIRES: commit lock held.
func (sf *stateFile) sync() error {
	if err := faults.hit(faultStateSync); err != nil {
		return err
	}
	return sf.f.Sync()
}

func (sf *stateFile) close() error { return sf.f.Close() }
