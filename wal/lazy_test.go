package wal

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/txtdb/txtdb/pages"
)

// FuzzScanRecordsLazy: ScanRecordsLazy reads exactly the records ScanRecords reads, in every
// format, and fails where it fails; each lazy op has a span whose text decodes (DecodeOp) to the
// objects the full scan decoded.
func FuzzScanRecordsLazy(f *testing.F) {
	var b bytes.Buffer
	c := FrameOps(&b, 1, 0, "", []byte(`[{"op":"create","ns":"a","inc":"i1"},{"op":"put","ns":"a","inc":"i1","page":"page000001","objs":[{"x":1},"s",2.5e300]}]`), 7)
	c = FrameOps(&b, 2, 0, "p", []byte(`[{"op":"append","ns":"a","inc":"i1","page":"page000001","keys":["k"],"objs":["t\u00e9",{"a":[1,{"b":null}]}]},{"op":"put","ns":"a","inc":"i1","page":"page000002","new":true,"objs":[3]}]`), c)
	_, _ = Frame(&b, &Record{TSN: 2, Ops: []Op{{Kind: OpReserve, NS: "a", Inc: "i1", From: 2, Upto: 34}}}, c)
	f.Add(b.Bytes(), uint8(0))
	f.Add(b.Bytes(), uint8(1))
	var y bytes.Buffer // objects as YAML and XML stores log them: JSON strings
	c = FrameOps(&y, 1, 0, "", []byte(`[{"op":"create","ns":"a","inc":"i1"},{"op":"put","ns":"a","inc":"i1","page":"page000001","objs":["x: 1\n","s"]}]`), 7)
	_ = FrameOps(&y, 2, 0, "p", []byte(`[{"op":"append","ns":"a","inc":"i1","page":"page000001","objs":["t\u00e9"]},{"op":"put","ns":"a","inc":"i1","page":"page000002","new":true,"objs":[3]}]`), c)
	f.Add(y.Bytes(), uint8(0))
	f.Add(y.Bytes(), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		from := Pos{Seg: 1, Chain: 7}
		for _, fm := range []pages.Format{pages.JSON, pages.YAML, pages.XML} {
			eager, ebad := ScanRecords(fm, data, from)
			lazy, lbad := ScanRecordsLazy(fm, data, from, func(inc string, page uint64) bool { return mode == 0 || page%2 == 1 })
			if len(eager) != len(lazy) || (ebad == nil) != (lbad == nil) {
				t.Fatalf("%v: eager %d records (%v), lazy %d (%v)", fm, len(eager), ebad, len(lazy), lbad)
			}
			for i := range eager {
				e, l := eager[i], lazy[i]
				if e.Start != l.Start || e.End != l.End || len(e.Rec.Ops) != len(l.Rec.Ops) {
					t.Fatalf("record %d differs", i)
				}
				line := data[e.Start.Off-from.Off : e.End.Off-from.Off]
				for j := range e.Rec.Ops {
					eo, lo := e.Rec.Ops[j], l.Rec.Ops[j]
					if !lo.Lazy {
						if !reflect.DeepEqual(eo.Objects, lo.Objects) {
							t.Fatalf("record %d op %d: objects differ", i, j)
						}
						continue
					}
					if lo.Span.Len == 0 || lo.Objects != nil || lo.Objs != nil {
						t.Fatalf("record %d op %d: lazy without span or with objects", i, j)
					}
					o, err := DecodeOp(fm, line[lo.Span.Off:lo.Span.Off+lo.Span.Len], lo.Span)
					if err != nil {
						// eager decoded them: the reload must too
						t.Fatalf("record %d op %d: reload: %v", i, j, err)
					}
					if !reflect.DeepEqual(eo.Objects, o.Objects) || !reflect.DeepEqual(eo.Keys, o.Keys) || eo.PageNo != o.PageNo {
						t.Fatalf("record %d op %d: reload %v, eager %v", i, j, o.Objects, eo.Objects)
					}
				}
			}
		}
	})
}
