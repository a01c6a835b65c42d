package wal

import (
	"bytes"
	"testing"

	"github.com/txtdb/txtdb/pages"
)

// Garbage in a log segment is an error, never a panic; what decodes re-frames to the same bytes.
func FuzzScanRecords(f *testing.F) {
	var b bytes.Buffer
	c := FrameOps(&b, 1, 0, "", []byte(`[{"op":"create","ns":"a","inc":"i1"},{"op":"put","ns":"a","inc":"i1","page":"page000001","objs":[{"x":1},"s",2.5e300]}]`), 7)
	_, _ = Frame(&b, &Record{TSN: 1, Ops: []Op{{Kind: OpReserve, NS: "a", Inc: "i1", From: 2, Upto: 34}}}, c)
	f.Add(b.Bytes())
	f.Add([]byte(`{"tsn":1,"ops":[],"crc":"00000000"}` + "\n"))
	f.Add([]byte("\n\n{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		from := Pos{Seg: 1, Chain: 7}
		recs, _ := ScanRecords(pages.JSON, data, from)
		var off int64
		for _, r := range recs {
			if r.End.Off <= off || r.End.Off > int64(len(data)) {
				t.Fatalf("record end %d after %d in %d bytes", r.End.Off, off, len(data))
			}
			off = r.End.Off
		}
		_, _ = ScanRecords(pages.YAML, data, from)
		_, _ = ScanRecords(pages.XML, data, from)
	})
}

// A state slot decodes only if whole and checksummed; what decodes encodes to the same slot.
func FuzzDecodeState(f *testing.F) {
	f.Add(State{Seq: 3, TSN: 9, Pos: Pos{Seg: 1, Off: 4096, Chain: 0xdeadbeef}, Lineage: "l", Boot: "b"}.Encode())
	f.Add(bytes.Repeat([]byte(" "), StateSlotSize))
	f.Fuzz(func(t *testing.T, slot []byte) {
		s, err := DecodeState(slot)
		if err != nil {
			return
		}
		if len(s.Lineage) > 64 || len(s.Boot) > 64 {
			return // encode refuses over-long fields by design (fixed-size slot)
		}
		if got := s.Encode(); !bytes.Equal(got, slot) {
			// Only whitespace padding may differ; decoding the re-encoded slot must agree.
			s2, err := DecodeState(got)
			if err != nil || s2 != s {
				t.Fatalf("state does not round-trip: %+v vs %+v (%v)", s, s2, err)
			}
		}
	})
}
