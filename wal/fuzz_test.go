package wal

import (
	"bytes"
	"encoding/json"
	"reflect"
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
	f.Add(State{Seq: 18446744073709551615, TSN: 1, Pos: Pos{Seg: 1, Off: 1}, Lineage: "0123-abcd", Boot: "x.y_z", NoSync: true}.Encode())
	f.Fuzz(func(t *testing.T, slot []byte) {
		s, err := DecodeState(slot)
		prev := State{Lineage: "l", Boot: "b"}
		if fast, ok := decodeStateFast(slot, &prev); ok && (err != nil || fast != s) {
			t.Fatalf("fast path decodes %+v where DecodeState gives %+v, %v", fast, s, err)
		}
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

// The fast record parser is a shortcut, never a second grammar: whatever it accepts,
// encoding/json decodes to the same Record.
func FuzzParseRecord(f *testing.F) {
	seeds := []string{
		`{"tsn":7,"time":1796122643325230765,"proc":"ceaa5688-f3fa-48ee-996c-8b14c854e9ae","ops":[{"op":"create","ns":"app.users","inc":"50cc6ac7"},{"op":"put","ns":"app.users","inc":"50cc6ac7","page":"page000001","new":true,"objs":[{"n":1152921504606846976,"name":"bob"},"s\"q\u00e9 José ✓",-2.5e-300,[true,false,null],{}]}]`,
		`{"tsn":1,"ops":[{"op":"reserve","ns":"a","inc":"i","from":2,"upto":34}]`,
		`{"tsn":3,"ops":[{"op":"rename","ns":"a","inc":"i","to":"b"},{"op":"del","ns":"b","inc":"i","page":"page000002"}]`,
		`{"tsn":0,"ops":[]`,
		`{"tsn":5,"ops":null`,
		`{"tsn":01,"ops":[]`,
		`{"tsn":2,"time":-0,"ops":[]`,
		`{"tsn":2,"ops":[{"op":"put","ns":"a","inc":"i","page":"p","objs":[01]}]`,
		`{"tsn":2,"ops":[{"op":"put","ns":"a","inc":"i","page":"p","objs":[1.]}]`,
		`{"tsn":8,"time":1796122643325230765,"proc":"p","ops":[{"op":"append","ns":"t","inc":"i","page":"page000001","keys":["k1","k2"],"objs":[{"k":"k1"},{"k":"k2"}]}]`,
		`{"tsn":9,"ops":[{"op":"put","ns":"t","inc":"i","page":"page000001","keys":["k3"],"objs":[{"k":"k1"},{"k":"k3"}]},{"op":"append","ns":"t","inc":"i","page":"page000002","keys":["x"],"objs":["y"]}]`,
		`{"tsn":9,"ops":[{"op":"append","ns":"t","inc":"i","page":"page000001","keys":[],"objs":[1]}]`,
		`{"tsn":9,"ops":[{"op":"append","ns":"t","inc":"i","page":"page000001","keys":[""],"objs":[1]}]`,
		`{"tsn":9,"ops":[{"op":"append","ns":"t","inc":"i","page":"page000001","keys":["caf\u00e9","é"],"objs":[1]}]`,
		`{"tsn":9,"ops":[{"op":"append","ns":"t","inc":"i","page":"page000001","keys":["a",1],"objs":[1]}]`,
		`{"tsn":9,"ops":[{"op":"append","ns":"t","inc":"i","page":"page000001","keys":null,"objs":[1]}]`,
		`{"tsn":9,"ops":[{"op":"append","ns":"t","inc":"i","page":"page000001","objs":[1],"keys":["a"]}]`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast Record
		if !parseRecord(body, &fast, nil) {
			return
		}
		var slow Record
		js := append(append([]byte(nil), body...), '}')
		if err := json.Unmarshal(js, &slow); err != nil {
			t.Fatalf("fast path accepted what encoding/json refuses (%v): %q", err, body)
		}
		checkSpans(t, body, &fast)
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast path and encoding/json disagree on %q:\n%+v\n%+v", body, fast, slow)
		}
	})
}

// Every record this package writes takes the fast path.
func TestParseRecordTakesWhatWeWrite(t *testing.T) {
	var b bytes.Buffer
	ops := []Op{{Kind: OpCreate, NS: "app.users", Inc: "i1"},
		{Kind: OpPut, NS: "app.users", Inc: "i1", Page: "page000001", New: true, Objs: []json.RawMessage{json.RawMessage(`{"a":[1,2.5e3,"x\n"]}`)}},
		{Kind: OpAppend, NS: "app.users", Inc: "i1", Page: "page000001", Objs: []json.RawMessage{json.RawMessage(`"yaml: text"`)}},
		{Kind: OpAppend, NS: "app.users", Inc: "i1", Page: "page000001", Keys: []string{"k1", "k2"}, Objs: []json.RawMessage{json.RawMessage(`{"k":"k1"}`)}},
		{Kind: OpPut, NS: "app.users", Inc: "i1", Page: "page000001", Keys: []string{"k3"}, Objs: []json.RawMessage{json.RawMessage(`{"k":"k1"}`), json.RawMessage(`{"k":"k3"}`)}},
		{Kind: OpRename, NS: "app.users", Inc: "i1", To: "app.people"},
		{Kind: OpDel, NS: "app.people", Inc: "i1", Page: "page000001"},
		{Kind: OpDrop, NS: "app.people", Inc: "i1"}}
	opsJSON, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	FrameOps(&b, 9, 1796122643325230765, "ceaa5688-f3fa-48ee-996c-8b14c854e9ae", opsJSON, 0)
	if _, err := Frame(&b, &Record{TSN: 9, Ops: []Op{{Kind: OpReserve, NS: "a", Inc: "i1", From: 2, Upto: 34}}}, 0); err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.SplitAfter(b.Bytes(), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		body := line[:len(line)-CRCSuffixLen]
		var r Record
		if !parseRecord(body, &r, nil) {
			t.Fatalf("fast path refused a record this package wrote: %s", line)
		}
		var slow Record
		checkSpans(t, body, &r)
		if err := json.Unmarshal(append(append([]byte(nil), body...), '}'), &slow); err != nil || !reflect.DeepEqual(r, slow) {
			t.Fatalf("fast %+v, encoding/json %+v (%v)", r, slow, err)
		}
	}
}

// A record the fast path gives up on halfway (here at an escaped string in its second op)
// decodes through encoding/json to exactly what encoding/json alone makes of it.
func TestUnframeFallbackAfterPartialParse(t *testing.T) {
	var b bytes.Buffer
	ops := `[{"op":"put","ns":"a","inc":"i","page":"page000001","new":true,"objs":[{"x":1}]},{"op":"del","ns":"caf\u00e9","inc":"i","page":"page000002"}]`
	FrameOps(&b, 4, 17, "p", []byte(ops), 0)
	line := b.Bytes()
	var fast Record
	if parseRecord(line[:len(line)-CRCSuffixLen], &fast, nil) {
		t.Fatal("the fast path took an escaped string")
	}
	var got Record
	if _, err := Unframe(line, &got, 0); err != nil {
		t.Fatal(err)
	}
	var want Record
	if err := json.Unmarshal(append(append([]byte(nil), line[:len(line)-CRCSuffixLen]...), '}'), &want); err != nil {
		t.Fatal(err)
	}
	for _, o := range got.Ops {
		if o.Span != (Span{}) {
			t.Fatalf("the fallback gave op %+v a span", o)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fallback decoded %+v, encoding/json %+v", got, want)
	}
}

// checkSpans checks that the span of every op of r (parsed from body by the fast path) names
// exactly that op's text: decoded alone, it is the op encoding/json makes of that text. Then it
// clears the spans and the shared flags, which encoding/json does not set.
func checkSpans(t *testing.T, body []byte, r *Record) {
	t.Helper()
	for i := range r.Ops {
		o := &r.Ops[i]
		s := o.Span
		if s.Len == 0 || int(s.Off+s.Len) > len(body) {
			t.Fatalf("op %d: span %+v outside the record %q", i, s, body)
		}
		text := body[s.Off : s.Off+s.Len]
		var want Op
		if err := json.Unmarshal(text, &want); err != nil {
			t.Fatalf("op %d: span %+v is not an op (%v): %q", i, s, err, text)
		}
		o.Span, o.shared = Span{}, false
		if !reflect.DeepEqual(*o, want) {
			t.Fatalf("op %d: span text %q decodes to %+v, the record has %+v", i, text, want, *o)
		}
	}
}

// The direct op encoder writes what encoding/json writes, byte for byte, or fails as it does.
func FuzzAppendOp(f *testing.F) {
	f.Add("put", "app.users", "6f3e1c2a-0b4d", "", "page000001", true, "k1", `{"a":1}`, uint64(0), uint64(0))
	f.Add("rename", "a", "i", "b", "", false, "", "", uint64(0), uint64(0))
	f.Add("reserve", "n", "i", "", "", false, "", "", uint64(3), uint64(9))
	f.Add("put", "n\"x", "i", "", "page000002", false, "é", "{ \"a\" : [1, 2] }", uint64(0), uint64(0))
	f.Add("put", "n", "i", "", "page000002", false, "", "{bad", uint64(0), uint64(0))
	f.Add("put", "<&>", "\u2028", "", "p", false, "\x01", `"<&>"`, uint64(1), uint64(0))
	f.Fuzz(func(t *testing.T, kind, ns, inc, to, page string, isNew bool, key, obj string, from, upto uint64) {
		o := Op{Kind: kind, NS: ns, Inc: inc, To: to, Page: page, New: isNew, From: from, Upto: upto}
		if key != "" {
			o.Keys = []string{key, key + "2"}
		}
		if obj != "" {
			o.Objs = []json.RawMessage{json.RawMessage(obj), json.RawMessage(`{"b":2}`)}
		}
		if obj != "" {
			// Objs that are compact and valid may be marked so, as EncodeObjs's are.
			var c bytes.Buffer
			o.Compact = json.Compact(&c, []byte(obj)) == nil && c.String() == obj
		}
		var want, got bytes.Buffer
		want.WriteString("prefix")
		got.WriteString("prefix")
		werr := encodeOpJSON(&want, &o)
		gerr := AppendOp(&got, &o)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("encoding/json: %v; AppendOp: %v", werr, gerr)
		}
		if !bytes.Equal(want.Bytes(), got.Bytes()) {
			t.Fatalf("AppendOp wrote\n%s\nencoding/json\n%s", got.Bytes(), want.Bytes())
		}
	})
}

// internPage returns a string equal to its input, whatever it saw before.
func FuzzInternPage(f *testing.F) {
	for _, s := range []string{"page000001", "page1000000", "page0000001", "page000000", "page12345", "pageabcdef", "page9999999999999999999", "x"} {
		f.Add(s, "page000001")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, s := range []string{a, b, a} {
			if got := internPage([]byte(s)); got != s {
				t.Fatalf("internPage(%q) = %q", s, got)
			}
		}
	})
}
