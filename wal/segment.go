package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/txtdb/txtdb/lockfs"
	"github.com/txtdb/txtdb/pages"
)

// Log segments live in .txtdb/log/, named by the first TSN they may hold, zero-padded so that
// names sort in TSN order (PART OF THE FORMAT): 00000000000000000001.log.
const SegmentSuffix = ".log"

func SegName(first pages.TSN) string { return fmt.Sprintf("%020d%s", uint64(first), SegmentSuffix) }

func ParseSegName(name string) (pages.TSN, bool) {
	s, ok := strings.CutSuffix(name, SegmentSuffix)
	if !ok || len(s) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return pages.TSN(n), true
}

// ListSegments returns the segments in dir in TSN order.
func ListSegments(dir string) ([]pages.TSN, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list log: %w", err)
	}
	var segs []pages.TSN
	for _, e := range ents {
		if n, ok := ParseSegName(e.Name()); ok && e.Type().IsRegular() {
			segs = append(segs, n)
		}
	}
	slices.Sort(segs)
	return segs, nil
}

// NextSegment returns the first segment after seg, or 0 if there is none.
func NextSegment(dir string, seg pages.TSN) (pages.TSN, error) {
	segs, err := ListSegments(dir)
	if err != nil {
		return 0, err
	}
	for _, s := range segs {
		if s > seg {
			return s, nil
		}
	}
	return 0, nil
}

// ReadHeader reads and checks a segment's header line; it returns the position of the first
// Record (just past the header, chained to the header's crc). A valid header of another layout
// version is an error matching ErrVersion (not ErrBadRecord).
func ReadHeader(f *os.File, seg pages.TSN) (Header, Pos, error) {
	buf := make([]byte, 512)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return Header{}, Pos{}, err
	}
	i := bytes.IndexByte(buf[:n], '\n')
	if i < 0 {
		return Header{}, Pos{}, fmt.Errorf("%w: segment header missing", ErrBadRecord)
	}
	var h Header
	sum, err := Unframe(buf[:i+1], &h, 0)
	if err != nil {
		return h, Pos{}, err
	}
	if h.Version != Version && h.Version > 0 {
		return h, Pos{}, fmt.Errorf("%w: log segment %s names layout version %d, this build reads %d",
			ErrVersion, SegName(seg), h.Version, Version)
	}
	if h.Version != Version || h.First != seg {
		return h, Pos{}, fmt.Errorf("%w: segment header version %d first %d", ErrBadRecord, h.Version, h.First)
	}
	return h, Pos{Seg: seg, Off: int64(i + 1), Chain: sum}, nil
}

// Scanned is one Record read back from the log, with the position just past it.
type Scanned struct {
	Rec   Record
	Start Pos // where the record's line starts (and the chain it continues)
	End   Pos
}

// ScanRecords decodes the records in data, which starts at file offset base. It stops at the end
// of data, at a NUL byte where a Record would start (the zero-filled space a segment is
// preallocated with: the end of the log), or at the first line that is not a whole, valid record.
// It returns what it read before; bad reports why it stopped early (nil at the end of the log).
// data starts at position from, whose chain the first Record must continue.
func ScanRecords(f pages.Format, data []byte, from Pos) (recs []Scanned, bad error) {
	return ScanRecordsLazy(f, data, from, nil)
}

// ScanRecordsLazy is ScanRecords, except that the objects of a put or an append of a page that
// skip names (if skip is set) are checked for form but not decoded: the op is Lazy, and its
// text, at its Span, holds them. skip is called as the records are read, in order.
func ScanRecordsLazy(f pages.Format, data []byte, from Pos, skip func(inc string, page uint64) bool) (recs []Scanned, bad error) {
	base, chain := from.Off, from.Chain
	off := 0
	ar := scanArena{skip: skip, strs: f != pages.JSON} // the records' ops and object texts, a few arrays for all of them
	if end := bytes.IndexByte(data, 0); end != 0 && len(data) > 0 {
		if end < 0 {
			end = len(data)
		}
		recs = make([]Scanned, 0, bytes.Count(data[:end], []byte{'\n'}))
	}
	for off < len(data) && data[off] != 0 {
		// The line end first, then a NUL only inside the line: looking for a NUL from here would
		// run over every later Record (up to the zeros behind the last), for every record.
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 || bytes.IndexByte(data[off:off+i], 0) >= 0 {
			// No newline, or a NUL before it (records never hold a NUL byte): a torn write.
			return recs, fmt.Errorf("%w: torn record at offset %d", ErrBadRecord, base+int64(off))
		}
		line := data[off : off+i+1]
		start := Pos{Seg: from.Seg, Off: base + int64(off), Chain: chain}
		recs = append(recs, Scanned{Start: start}) // decoded in place: a Record on the stack would escape
		r := &recs[len(recs)-1].Rec
		sum, err := unframe(line, r, chain, &ar)
		if err == nil {
			err = DecodeOps(f, r)
		}
		if err != nil {
			return recs[:len(recs)-1], fmt.Errorf("record at offset %d: %w", base+int64(off), err)
		}
		chain = sum
		off += i + 1
		recs[len(recs)-1].End = Pos{Seg: from.Seg, Off: base + int64(off), Chain: chain}
	}
	return recs, nil
}

// ReadRange reads bytes [from, to) of f; to < 0 means to the end of the file.
func ReadRange(f *os.File, from, to int64) ([]byte, error) { return ReadRangeInto(f, from, to, nil) }

// ReadRangeInto is ReadRange into buf's array when it has room (the result then shares it).
func ReadRangeInto(f *os.File, from, to int64, buf []byte) ([]byte, error) {
	if to < 0 {
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		to = st.Size()
	}
	if to <= from {
		return nil, nil
	}
	if int64(cap(buf)) >= to-from {
		buf = buf[:to-from]
	} else {
		buf = make([]byte, to-from)
	}
	n, err := f.ReadAt(buf, from)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if int64(n) != to-from {
		return buf[:n], fmt.Errorf("%w: log ends at %d, expected %d", ErrBadRecord, from+int64(n), to)
	}
	return buf, nil
}

// CreateSegment publishes a new, empty segment (header only, then prealloc zero bytes) named
// first, fsynced and with its directory fsynced, so that it is announced to readers (through
// state) only once durable. It returns the header's length: where the first Record goes.
//
// Segments are preallocated with real zeros (not fallocate, whose unwritten extents turn the
// first write into a metadata change): an fdatasync of a Record written over them flushes data
// only, while one of an append must also journal the file's new size.
func CreateSegment(dir string, first pages.TSN, lineage string, perm os.FileMode, prealloc int64) (Pos, error) {
	var buf bytes.Buffer
	sum, err := Frame(&buf, Header{Version: Version, First: first, Lineage: lineage}, 0)
	if err != nil {
		return Pos{}, err
	}
	hdr := Pos{Seg: first, Off: int64(buf.Len()), Chain: sum}
	buf.Write(make([]byte, prealloc))
	path := filepath.Join(dir, SegName(first))
	// Never replace a segment: recovery removed any unused one with this name before the
	// rotation, so one that exists now holds history.
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		return Pos{}, fmt.Errorf("create log segment %s: exists (%v)", SegName(first), err)
	}
	if err := lockfs.WriteFile(path, buf.Bytes(), perm); err != nil {
		return Pos{}, fmt.Errorf("create log segment: %w", err)
	}
	return hdr, nil
}

// CheckVersions returns an error matching ErrVersion if any segment in dir has a valid header of
// another layout version. Recovery's slow path calls it before it changes anything. Other header
// problems are left to the caller.
func CheckVersions(dir string) error {
	segs, err := ListSegments(dir)
	if err != nil {
		return err
	}
	for _, seg := range segs {
		f, err := os.Open(filepath.Join(dir, SegName(seg)))
		if err != nil {
			return fmt.Errorf("open log segment: %w", err)
		}
		_, _, err = ReadHeader(f, seg)
		_ = f.Close()
		if errors.Is(err, ErrVersion) {
			return err
		}
	}
	return nil
}

// RemoveTemps removes the temporary files that a process killed while publishing a segment left in
// the log directory (lockfs.WriteFile's, see lockfs.IsTempName), then fsyncs the directory if
// it removed any. Rotation, the slow recovery path and store creation call it.
// REQUIRES: commit lock held: only its holder publishes segments, so no temporary file in the
// log directory belongs to a live writer.
func RemoveTemps(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list log: %w", err)
	}
	removed := false
	for _, e := range ents {
		if !lockfs.IsTempName(e.Name()) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove temporary log file: %w", err)
		}
		removed = true
	}
	if removed {
		return lockfs.SyncDir(dir)
	}
	return nil
}

// NulAt returns the index of the first NUL byte in data at or after i, or len(data).
func NulAt(data []byte, i int) int {
	if z := bytes.IndexByte(data[i:], 0); z >= 0 {
		return i + z
	}
	return len(data)
}

// DataEnd returns the index just past the last non-NUL byte of data (0 if all are NUL).
func DataEnd(data []byte) int {
	for i := len(data) - 1; i >= 0; i-- {
		if data[i] != 0 {
			return i + 1
		}
	}
	return 0
}

// EraseSync overwrites [from, to) of a segment with zeros, last bytes first, and fdatasyncs it:
// the log ends at from again. Used to take back a failed batch and to remove a torn tail.
// Back to front, so that an erase cut short by a crash leaves a prefix of the old bytes (which
// recovery reads, whole records and torn tail alike) and never zeros in front of stale records.
func EraseSync(f *os.File, from, to int64) error {
	zeros := zeroBlock[:]
	for end := to; end > from; {
		n := min(int64(len(zeros)), end-from)
		if _, err := f.WriteAt(zeros[:n], end-n); err != nil {
			return err
		}
		end -= n
	}
	return Datasync(f)
}

// WriteZeros writes zero bytes over [from, to) of f.
func WriteZeros(f *os.File, from, to int64) error {
	zeros := zeroBlock[:]
	for off := from; off < to; {
		n := min(int64(len(zeros)), to-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// zeroBlock is what WriteZeros and EraseSync write from: never written itself, so shared by every
// caller (a segment grows often, and each growth allocated its own buffer of zeros).
var zeroBlock [256 << 10]byte
