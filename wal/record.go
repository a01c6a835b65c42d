package wal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strconv"
	"unsafe"

	"github.com/txtdb/txtdb/pages"
)

// A log record is one JSON line per committed transaction (PART OF THE FORMAT):
//
//	{"tsn":42,"time":1796000000000000000,"proc":"<handle id>","ops":[...],"crc":"1a2b3c4d"}\n
//
// time is the wall-clock time (Unix nanoseconds) at which the committer gave the record its TSN,
// proc the identity of the committing handle (its registry id); both are informational (the
// change feed reports them), never used for ordering, and absent from reservation records.
//
// The crc (CRC-32C, 8 lowercase hex digits) covers every byte before `,"crc":` and is chained:
// it starts from the previous line's crc (the segment header's starts from 0), so a record is
// valid only right after the record it was written after. A stale record from a failed batch
// that survives past zeros or past a newer record can therefore never be adopted. The suffix has
// a fixed length, so a reader finds it without parsing. A segment starts with a header line in the
// same framing: {"txtdb_log":<Version>,"first":<tsn>,"lineage":"<id>","crc":"..."}.
const CRCSuffixLen = len(`,"crc":"00000000"}` + "\n")

// Op kinds (PART OF THE FORMAT).
const (
	OpPut     = "put"     // whole-page contents of ns/page ("new":true when the transaction created the page; "keys": a keyed append written whole)
	OpAppend  = "append"  // objects appended to the page's latest version (inserts; "keys": a keyed append)
	OpDel     = "del"     // page deleted
	OpCreate  = "create"  // namespace ns created as incarnation inc
	OpDrop    = "drop"    // namespace ns (incarnation inc) deleted
	OpRename  = "rename"  // namespace ns (incarnation inc) renamed to `to`
	OpReserve = "reserve" // page IDs [from, upto) of incarnation inc reserved for one process
)

// Op is one change inside a record.
type Op struct {
	Kind string `json:"op"`
	NS   string `json:"ns"`
	Inc  string `json:"inc"`
	To   string `json:"to,omitempty"`
	Page string `json:"page,omitempty"`
	New  bool   `json:"new,omitempty"` // put: the page did not exist before this record
	// Keys makes a put or append a keyed change (AppendPage): it appended objs to the page's
	// latest version and conflicts only with changes that are not keyed or share a key. Never
	// empty when present; each key is non-empty.
	Keys []string          `json:"keys,omitempty"`
	Objs []json.RawMessage `json:"objs,omitempty"` // put: JSON stores objects as they are; YAML and XML as JSON strings
	From uint64            `json:"from,omitempty"`
	Upto uint64            `json:"upto,omitempty"`

	// decoded, not serialized
	Objects []pages.Object `json:"-"` // decoded from Objs
	PageNo  uint64         `json:"-"` // decoded from Page
	Span    Span           `json:"-"` // where the op's text is in its line (zero: not known)
	// Compact says every one of Objs is a compact, valid JSON value (EncodeObjs wrote them from
	// Objects): AppendOp copies them as they are instead of compacting and checking them.
	Compact bool `json:"-"`
	// Lazy says the op's objects were skipped, not decoded (ScanRecordsLazy): Objs and Objects
	// are empty, and the op's text at Span holds them.
	Lazy bool `json:"-"`
	// shared says Objs lie in a copy of a small record's text that nothing else uses, so the
	// decoded Objects may share those bytes (DecodeOps): a page version cached from them keeps
	// at most smallRecord bytes of other text alive.
	shared bool
}

// smallRecord is the largest record text whose objects DecodeOps lets share the parser's copy.
const smallRecord = 2048

// Span is where an op's text lies in its record's line, with the checksum of that text, so that
// one page's change can be read again without reading (and decoding) the whole record: a commit
// of a thousand inserts holds hundreds of pages.
type Span struct {
	Off, Len uint32 // from the line's first byte; Len 0: not known
	CRC      uint32 // of the text, with CRCTable
}

// MakeSpan returns the span of line[from:to] (zero if it does not fit a Span).
func MakeSpan(line []byte, from, to int) Span {
	if from < 0 || to <= from || to > len(line) || int64(to) > math.MaxUint32 {
		return Span{}
	}
	return Span{Off: uint32(from), Len: uint32(to - from), CRC: crc32.Checksum(line[from:to], CRCTable)}
}

// DecodeOp decodes the text of one op that s named in a line read again (text holds exactly
// s.Len bytes): it checks the text against the span's checksum, then decodes it as DecodeOps
// does the ops of a record.
func DecodeOp(f pages.Format, text []byte, s Span) (Op, error) {
	if s.Len == 0 || len(text) != int(s.Len) || crc32.Checksum(text, CRCTable) != s.CRC {
		return Op{}, fmt.Errorf("%w: op text does not match its checksum", ErrBadRecord)
	}
	var o Op
	p := parser{b: text}
	if !p.op(&o) || p.i != len(p.b) {
		o = Op{}
		if err := json.Unmarshal(text, &o); err != nil {
			return Op{}, fmt.Errorf("%w: %v", ErrBadRecord, err)
		}
	}
	r := Record{Ops: []Op{o}}
	if err := DecodeOps(f, &r); err != nil {
		return Op{}, err
	}
	return r.Ops[0], nil
}

// Record is one log line. A commit record has TSN = previous + 1; a reservation record (only
// reserve ops) keeps the previous TSN: it uses no TSN.
type Record struct {
	TSN  pages.TSN `json:"tsn"`
	Time int64     `json:"time,omitempty"` // commit time, Unix ns (informational)
	Proc string    `json:"proc,omitempty"` // committing handle's id (informational)
	Ops  []Op      `json:"ops"`
}

func (r *Record) IsReservation() bool {
	return len(r.Ops) > 0 && r.Ops[0].Kind == OpReserve
}

type Header struct {
	Version int       `json:"txtdb_log"`
	First   pages.TSN `json:"first"`
	Lineage string    `json:"lineage"`
}

var ErrBadRecord = errors.New("bad log record")

// Version is the layout version (PART OF THE FORMAT): in txtdb.json ("txtdb"), in every state
// slot ("txtdb-state N"), in every segment header ("txtdb_log"), in the checkpoint file and in
// registry slots. A file naming another version is refused with ErrVersion, never read or
// repaired.
const Version = 7

// ErrVersion: a file of the store names a layout version this build does not read.
var ErrVersion = errors.New("txtdb: unsupported layout version")

// Frame appends v as one checksummed line chained to prev to buf and returns its crc.
func Frame(buf *bytes.Buffer, v any, prev uint32) (uint32, error) {
	start := buf.Len()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false) // object text is stored as it is
	if err := enc.Encode(v); err != nil {
		buf.Truncate(start)
		return 0, err
	}
	// Encode wrote `{...}\n`: drop "}\n", checksum the body, add the suffix.
	buf.Truncate(buf.Len() - 2)
	return AppendCRC(buf, start, prev), nil
}

// AppendCRC closes the line that starts at start with its checksum suffix, chained to prev.
func AppendCRC(buf *bytes.Buffer, start int, prev uint32) uint32 {
	sum := crc32.Update(prev, CRCTable, buf.Bytes()[start:])
	var suffix [CRCSuffixLen]byte
	b := append(suffix[:0], `,"crc":"`...)
	b = appendHex32(b, sum)
	buf.Write(append(b, "\"}\n"...))
	return sum
}

// Unframe checks one line (with its trailing newline) chained to prev, decodes it into v, and
// returns its crc.
func Unframe(line []byte, v any, prev uint32) (uint32, error) { return unframe(line, v, prev, nil) }

// unframe is Unframe, a Record's ops and object texts taken from ar when it is set.
func unframe(line []byte, v any, prev uint32, ar *scanArena) (uint32, error) {
	n := len(line)
	if n < CRCSuffixLen+2 || line[n-1] != '\n' || line[0] != '{' {
		return 0, ErrBadRecord
	}
	suf := line[n-CRCSuffixLen:]
	if !bytes.HasPrefix(suf, []byte(`,"crc":"`)) || !bytes.HasSuffix(suf, []byte("\"}\n")) {
		return 0, ErrBadRecord
	}
	want, err := strconv.ParseUint(string(suf[8:16]), 16, 32)
	if err != nil {
		return 0, ErrBadRecord
	}
	body := line[:n-CRCSuffixLen]
	if crc32.Update(prev, CRCTable, body) != uint32(want) {
		return 0, fmt.Errorf("%w: checksum (or chain) mismatch", ErrBadRecord)
	}
	if r, ok := v.(*Record); ok {
		if parseRecord(body, r, ar) {
			return uint32(want), nil
		}
		*r = Record{} // what the fast path filled before it gave up must not mix into the decode
	} else if d, ok := v.(FastDecoder); ok && d.DecodeFast(body) {
		return uint32(want), nil
	}
	js := make([]byte, 0, len(body)+1)
	js = append(append(js, body...), '}')
	if err := json.Unmarshal(js, v); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	return uint32(want), nil
}

// sharedObjects counts the objects of the shared puts and appends among ops.
func sharedObjects(ops []Op) int {
	n := 0
	for i := range ops {
		if o := &ops[i]; o.shared && (o.Kind == OpPut || o.Kind == OpAppend) {
			n += len(o.Objs)
		}
	}
	return n
}

// EncodeObjs turns page contents into their log form: compact, valid JSON values (a JSON Object's
// text is compact JSON, FuzzObjectFromTextJSON; a YAML or XML one becomes a JSON string), so an
// op carrying them may say so (Op.Compact).
func EncodeObjs(f pages.Format, objs []pages.Object) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, len(objs))
	for i, o := range objs {
		if f == pages.JSON {
			out[i] = json.RawMessage(o.Text())
			continue
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(o.Text()); err != nil {
			return nil, err
		}
		out[i] = json.RawMessage(bytes.TrimRight(b.Bytes(), "\n"))
	}
	return out, nil
}

// DecodeOps fills the decoded fields of r's ops and checks them. The Objects of a small record
// this package parsed share their bytes with the ops' Objs (Op.shared: no copy per object, where
// catching up decodes the objects of every other process's changes to the pages it reads). A
// Lazy op gets no Objects.
func DecodeOps(f pages.Format, r *Record) error {
	var objects []pages.Object // what is left of the array the shared ops' Objects slice
	for i := range r.Ops {
		o := &r.Ops[i]
		switch o.Kind {
		case OpPut, OpAppend, OpDel:
			n, err := pages.ParsePageID(o.Page)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrBadRecord, err)
			}
			o.PageNo = n
			if o.Kind == OpDel {
				if o.Keys != nil {
					return fmt.Errorf("%w: keys on a del", ErrBadRecord)
				}
				continue
			}
			if o.Keys != nil && (len(o.Keys) == 0 || o.New) {
				return fmt.Errorf("%w: keys on a new page, or an empty list", ErrBadRecord)
			}
			for _, k := range o.Keys {
				if k == "" {
					return fmt.Errorf("%w: empty key", ErrBadRecord)
				}
			}
			if o.Lazy {
				continue
			}
			// The record passed its checksum, and its objects were valid Objects when written:
			// they are not parsed again (for YAML and XML that would dominate catching up).
			// A large record gets an array per op: a cached version holds its op's Objects, and
			// a slice of one array would keep every other op's objects alive with it. A small
			// record's ops share one array: their texts share one copy of the record already
			// (shared), so no op's version keeps more alive through it.
			if o.shared {
				if len(objects) < len(o.Objs) {
					objects = make([]pages.Object, sharedObjects(r.Ops[i:]))
				}
				o.Objects, objects = objects[:len(o.Objs):len(o.Objs)], objects[len(o.Objs):]
			} else {
				o.Objects = make([]pages.Object, len(o.Objs))
			}
			for j, raw := range o.Objs {
				var text string
				switch {
				case f != pages.JSON:
					var s string // its own variable: a pointer to text would move every text to the heap
					if err := json.Unmarshal(raw, &s); err != nil {
						return fmt.Errorf("%w: %v", ErrBadRecord, err)
					}
					text = s
				case o.shared:
					text = unsafe.String(unsafe.SliceData(raw), len(raw)) // never written again
				default:
					text = string(raw)
				}
				o.Objects[j] = pages.ObjectFromTrusted(f, text)
			}
		case OpCreate, OpDrop, OpReserve:
			if o.Keys != nil {
				return fmt.Errorf("%w: keys on a %s", ErrBadRecord, o.Kind)
			}
		case OpRename:
			if o.To == "" || o.Keys != nil {
				return ErrBadRecord
			}
		default:
			return fmt.Errorf("%w: unknown op %q", ErrBadRecord, o.Kind)
		}
		if o.Inc == "" {
			return ErrBadRecord
		}
	}
	return nil
}

// FrameOps appends a commit record with pre-encoded ops:
// {"tsn":N,"time":T,"proc":"P","ops":<ops>,"crc":"..."} (time and proc omitted when zero).
// proc must need no JSON escaping (a handle id is a UUID).
func FrameOps(buf *bytes.Buffer, tsn pages.TSN, time int64, proc string, opsJSON []byte, prev uint32) uint32 {
	start := buf.Len()
	buf.Grow(len(`{"tsn":,"time":,"proc":"","ops":`) + 40 + len(proc) + len(opsJSON) + CRCSuffixLen)
	var num [20]byte
	buf.WriteString(`{"tsn":`)
	buf.Write(strconv.AppendUint(num[:0], uint64(tsn), 10))
	if time != 0 {
		buf.WriteString(`,"time":`)
		buf.Write(strconv.AppendInt(num[:0], time, 10))
	}
	if proc != "" {
		buf.WriteString(`,"proc":"`)
		buf.WriteString(proc)
		buf.WriteByte('"')
	}
	buf.WriteString(`,"ops":`)
	buf.Write(opsJSON)
	return AppendCRC(buf, start, prev)
}
