package txn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"

	"github.com/txtdb/txtdb/pages"
)

// A log record is one JSON line per committed transaction (PART OF THE FORMAT):
//
//	{"tsn":42,"ops":[...],"crc":"1a2b3c4d"}\n
//
// The crc (CRC-32C, 8 lowercase hex digits) covers every byte before `,"crc":` and is chained:
// it starts from the previous line's crc (the segment header's starts from 0), so a record is
// valid only right after the record it was written after. A stale record from a failed batch
// that survives past zeros or past a newer record can therefore never be adopted. The suffix has
// a fixed length, so a reader finds it without parsing. A segment starts with a header line in the
// same framing: {"txtdb_log":<layoutVersion>,"first":<tsn>,"lineage":"<id>","crc":"..."}.
const crcSuffixLen = len(`,"crc":"00000000"}` + "\n")

// Op kinds (PART OF THE FORMAT).
const (
	opPut     = "put"     // whole-page contents of ns/page
	opAppend  = "append"  // objects appended to the page's latest version (inserts)
	opDel     = "del"     // page deleted
	opCreate  = "create"  // namespace ns created as incarnation inc
	opDrop    = "drop"    // namespace ns (incarnation inc) deleted
	opRename  = "rename"  // namespace ns (incarnation inc) renamed to `to`
	opReserve = "reserve" // page IDs [from, upto) of incarnation inc reserved for one process
)

// op is one change inside a record.
type op struct {
	Op   string            `json:"op"`
	NS   string            `json:"ns"`
	Inc  string            `json:"inc"`
	To   string            `json:"to,omitempty"`
	Page string            `json:"page,omitempty"`
	Objs []json.RawMessage `json:"objs,omitempty"` // put: JSON stores objects as they are; YAML and XML as JSON strings
	From uint64            `json:"from,omitempty"`
	Upto uint64            `json:"upto,omitempty"`

	// decoded, not serialized
	objs   []pages.Object
	pageNo uint64
}

// record is one log line. A commit record has TSN = previous + 1; a reservation record (only
// reserve ops) keeps the previous TSN: it uses no TSN.
type record struct {
	TSN pages.TSN `json:"tsn"`
	Ops []op      `json:"ops"`
}

func (r *record) isReservation() bool {
	return len(r.Ops) > 0 && r.Ops[0].Op == opReserve
}

type segHeader struct {
	Version int       `json:"txtdb_log"`
	First   pages.TSN `json:"first"`
	Lineage string    `json:"lineage"`
}

var errBadRecord = errors.New("bad log record")

// frame appends v as one checksummed line chained to prev to buf and returns its crc.
func frame(buf *bytes.Buffer, v any, prev uint32) (uint32, error) {
	start := buf.Len()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false) // object text is stored as it is
	if err := enc.Encode(v); err != nil {
		buf.Truncate(start)
		return 0, err
	}
	// Encode wrote `{...}\n`: drop "}\n", checksum the body, add the suffix.
	buf.Truncate(buf.Len() - 2)
	return appendCRC(buf, start, prev), nil
}

// appendCRC closes the line that starts at start with its checksum suffix, chained to prev.
func appendCRC(buf *bytes.Buffer, start int, prev uint32) uint32 {
	sum := crc32.Update(prev, crcTable, buf.Bytes()[start:])
	fmt.Fprintf(buf, `,"crc":"%08x"}`+"\n", sum)
	return sum
}

// unframe checks one line (with its trailing newline) chained to prev, decodes it into v, and
// returns its crc.
func unframe(line []byte, v any, prev uint32) (uint32, error) {
	n := len(line)
	if n < crcSuffixLen+2 || line[n-1] != '\n' || line[0] != '{' {
		return 0, errBadRecord
	}
	suf := line[n-crcSuffixLen:]
	if !bytes.HasPrefix(suf, []byte(`,"crc":"`)) || !bytes.HasSuffix(suf, []byte("\"}\n")) {
		return 0, errBadRecord
	}
	want, err := strconv.ParseUint(string(suf[8:16]), 16, 32)
	if err != nil {
		return 0, errBadRecord
	}
	body := line[:n-crcSuffixLen]
	if crc32.Update(prev, crcTable, body) != uint32(want) {
		return 0, fmt.Errorf("%w: checksum (or chain) mismatch", errBadRecord)
	}
	js := make([]byte, 0, len(body)+1)
	js = append(append(js, body...), '}')
	if err := json.Unmarshal(js, v); err != nil {
		return 0, fmt.Errorf("%w: %v", errBadRecord, err)
	}
	return uint32(want), nil
}

// encodeObjs turns page contents into their log form.
func encodeObjs(f pages.Format, objs []pages.Object) ([]json.RawMessage, error) {
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

// decodeOps fills the decoded fields of r's ops and checks them.
func decodeOps(f pages.Format, r *record) error {
	for i := range r.Ops {
		o := &r.Ops[i]
		switch o.Op {
		case opPut, opAppend, opDel:
			n, err := pages.ParsePageID(o.Page)
			if err != nil {
				return fmt.Errorf("%w: %v", errBadRecord, err)
			}
			o.pageNo = n
			if o.Op == opDel {
				continue
			}
			// The record passed its checksum, and its objects were valid Objects when written:
			// they are not parsed again (for YAML and XML that would dominate catching up).
			o.objs = make([]pages.Object, len(o.Objs))
			for j, raw := range o.Objs {
				text := string(raw)
				if f != pages.JSON {
					if err := json.Unmarshal(raw, &text); err != nil {
						return fmt.Errorf("%w: %v", errBadRecord, err)
					}
				}
				o.objs[j] = pages.ObjectFromTrusted(f, text)
			}
		case opCreate, opDrop, opReserve:
		case opRename:
			if o.To == "" {
				return errBadRecord
			}
		default:
			return fmt.Errorf("%w: unknown op %q", errBadRecord, o.Op)
		}
		if o.Inc == "" {
			return errBadRecord
		}
	}
	return nil
}
