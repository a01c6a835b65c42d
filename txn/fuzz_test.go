package txn

import (
	"bytes"
	"testing"

	"github.com/txtdb/txtdb/pages"
)

// Garbage in a log segment is an error, never a panic; what decodes re-frames to the same bytes.
func FuzzScanRecords(f *testing.F) {
	var b bytes.Buffer
	c := frameOps(&b, 1, []byte(`[{"op":"create","ns":"a","inc":"i1"},{"op":"put","ns":"a","inc":"i1","page":"page000001","objs":[{"x":1},"s",2.5e300]}]`), 7)
	_, _ = frame(&b, &record{TSN: 1, Ops: []op{{Op: opReserve, NS: "a", Inc: "i1", From: 2, Upto: 34}}}, c)
	f.Add(b.Bytes())
	f.Add([]byte(`{"tsn":1,"ops":[],"crc":"00000000"}` + "\n"))
	f.Add([]byte("\n\n{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		from := logPos{seg: 1, chain: 7}
		recs, _ := scanRecords(pages.JSON, data, from)
		var off int64
		for _, r := range recs {
			if r.end.off <= off || r.end.off > int64(len(data)) {
				t.Fatalf("record end %d after %d in %d bytes", r.end.off, off, len(data))
			}
			off = r.end.off
		}
		_, _ = scanRecords(pages.YAML, data, from)
		_, _ = scanRecords(pages.XML, data, from)
	})
}

// A state slot decodes only if whole and checksummed; what decodes encodes to the same slot.
func FuzzDecodeState(f *testing.F) {
	f.Add(state{seq: 3, tsn: 9, pos: logPos{seg: 1, off: 4096, chain: 0xdeadbeef}, lineage: "l", boot: "b"}.encode())
	f.Add(bytes.Repeat([]byte(" "), stateSlotSize))
	f.Fuzz(func(t *testing.T, slot []byte) {
		s, err := decodeState(slot)
		if err != nil {
			return
		}
		if len(s.lineage) > 64 || len(s.boot) > 64 {
			return // encode refuses over-long fields by design (fixed-size slot)
		}
		if got := s.encode(); !bytes.Equal(got, slot) {
			// Only whitespace padding may differ; decoding the re-encoded slot must agree.
			s2, err := decodeState(got)
			if err != nil || s2 != s {
				t.Fatalf("state does not round-trip: %+v vs %+v (%v)", s, s2, err)
			}
		}
	})
}
