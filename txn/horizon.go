package txn

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// The horizon file, .txtdb/horizon (PART OF THE FORMAT), publishes the cleanup horizon: versions
// that only snapshots older than it could read may be deleted. Cleanup (under the checkpoint lock)
// writes it before it deletes anything; within one lineage it only ever grows. It names the
// lineage it belongs to: after a NoSync power cut rewinds history, a horizon of the old lineage
// says nothing about the new one's TSNs. Two checksummed 128-byte slots, like state, so a
// lock-free reader never sees a torn value. Begin reads it after state and retries a snapshot
// below a horizon of the same lineage.
const (
	horizonName     = "horizon"
	horizonSlotSize = 128
)

type horizonFile struct {
	f *os.File
	m *wal.MappedFile // how it is read

	memo struct { // per slot, the last bytes decoded: Begin reads the file, which rarely changes
		sync.Mutex
		raw [2][horizonSlotSize]byte
		seq [2]uint64
		h   [2]pages.TSN
		lin [2]string
		ok  [2]bool                   // the slot decoded
		set [2]bool                   // raw holds bytes read
		buf [2 * horizonSlotSize]byte // the file read (in the struct: on the stack it escaped, 1 allocation per Begin)
	}
}

func openHorizon(path string, perm os.FileMode, readOnly bool) (*horizonFile, error) {
	flag := os.O_RDWR | os.O_CREATE
	if readOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, perm)
	if readOnly && errors.Is(err, os.ErrNotExist) {
		return &horizonFile{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open horizon: %w", err)
	}
	return &horizonFile{f: f, m: wal.NewMappedFile(f, 2*horizonSlotSize)}, nil
}

func encodeHorizon(seq uint64, h pages.TSN, lineage string) []byte {
	return wal.SlotLine(fmt.Sprintf("txtdb-horizon seq=%d h=%d lineage=%s", seq, h, lineage), horizonSlotSize)
}

func decodeHorizon(slot []byte) (seq uint64, h pages.TSN, lineage string, ok bool) {
	raw, ok := wal.SlotBody(slot, horizonSlotSize)
	if !ok {
		return 0, 0, "", false
	}
	body := string(raw)
	var s, v uint64
	var lin string
	if _, err := fmt.Sscanf(body, "txtdb-horizon seq=%d h=%d lineage=%s", &s, &v, &lin); err != nil {
		return 0, 0, "", false
	}
	return s, pages.TSN(v), lin, true
}

// read returns the published horizon and its lineage (0, "" if none).
func (hf *horizonFile) read() (pages.TSN, string, error) {
	h, lin, _, err := hf.readSlot()
	return h, lin, err
}

// at returns the horizon that applies to lineage: 0 if the published one belongs to another.
func (hf *horizonFile) at(lineage string) (pages.TSN, error) {
	h, lin, err := hf.read()
	if err != nil || lin != lineage {
		return 0, err
	}
	return h, nil
}

func (hf *horizonFile) readSlot() (pages.TSN, string, uint64, error) {
	if hf.f == nil {
		return 0, "", 0, nil
	}
	m := &hf.memo
	m.Lock()
	defer m.Unlock()
	buf := &m.buf
	n, err := hf.m.Read(buf[:])
	if err != nil {
		return 0, "", 0, fmt.Errorf("read horizon: %w", err)
	}
	var (
		best    pages.TSN
		lineage string
		bestSeq uint64
	)
	for i := 0; i < 2 && (i+1)*horizonSlotSize <= n; i++ {
		slot := (*[horizonSlotSize]byte)(buf[i*horizonSlotSize : (i+1)*horizonSlotSize])
		if !m.set[i] || *slot != m.raw[i] {
			m.raw[i], m.set[i] = *slot, true
			m.seq[i], m.h[i], m.lin[i], m.ok[i] = decodeHorizon(slot[:])
		}
		if s := m.seq[i]; m.ok[i] && s%2 == uint64(i) && s >= bestSeq {
			best, lineage, bestSeq = m.h[i], m.lin[i], s
		}
	}
	return best, lineage, bestSeq, nil
}

// publish raises the horizon of lineage to h; a horizon of another lineage is replaced.
// REQUIRES: checkpoint lock held.
func (hf *horizonFile) publish(h pages.TSN, lineage string) error {
	cur, lin, seq, err := hf.readSlot()
	if err != nil {
		return err
	}
	if lin == lineage && h <= cur {
		return nil
	}
	seq++
	if _, err := hf.f.WriteAt(encodeHorizon(seq, h, lineage), int64(seq%2)*horizonSlotSize); err != nil {
		return fmt.Errorf("publish horizon: %w", err)
	}
	return nil
}

func (hf *horizonFile) close() error {
	if hf.f == nil {
		return nil
	}
	hf.m.Unmap()
	return hf.f.Close()
}
