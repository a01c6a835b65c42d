package wal

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

// Since layout 3: FrameOps (the commit path, ops pre-encoded) writes exactly the bytes Frame (the
// JSON encoder) writes for the same record, time and proc included and omitted when zero, so a
// record re-frames to itself and both decode to the same Record. A reservation framed from a
// Record without them carries neither field.
func TestFrameOpsMatchesFrame(t *testing.T) {
	ops := []Op{{Kind: OpPut, NS: "a", Inc: "i1", Page: "page000001", New: true, Objs: []json.RawMessage{json.RawMessage(`{"x":1}`)}}}
	opsJSON, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		time int64
		proc string
	}{{0, ""}, {1796122643325230765, "ceaa5688-f3fa-48ee-996c-8b14c854e9ae"}, {-5, ""}, {0, "p"}} {
		var a, b bytes.Buffer
		ca := FrameOps(&a, 7, tc.time, tc.proc, opsJSON, 42)
		cb, err := Frame(&b, &Record{TSN: 7, Time: tc.time, Proc: tc.proc, Ops: ops}, 42)
		if err != nil {
			t.Fatal(err)
		}
		if a.String() != b.String() || ca != cb {
			t.Fatalf("time %d proc %q: FrameOps\n%s\nFrame\n%s", tc.time, tc.proc, a.String(), b.String())
		}
		recs, bad := ScanRecords(pages.JSON, a.Bytes(), Pos{Seg: 1, Chain: 42})
		if bad != nil || len(recs) != 1 {
			t.Fatalf("scan: %v, %d records", bad, len(recs))
		}
		r := recs[0].Rec
		if r.Time != tc.time || r.Proc != tc.proc || !r.Ops[0].New {
			t.Fatalf("decoded %+v", r)
		}
	}
	var res bytes.Buffer
	if _, err := Frame(&res, &Record{TSN: 7, Ops: []Op{{Kind: OpReserve, NS: "a", Inc: "i1", From: 2, Upto: 34}}}, 0); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(res.Bytes(), []byte(`"time"`)) || bytes.Contains(res.Bytes(), []byte(`"proc"`)) || bytes.Contains(res.Bytes(), []byte(`"new"`)) {
		t.Fatalf("reservation record carries commit fields: %s", res.String())
	}
}

// Layout 4: "keys" makes a put or an append a keyed change; it decodes on both paths and is
// refused where it means nothing (a del, a namespace op, a new page) or is empty.
func TestDecodeOpsKeys(t *testing.T) {
	for _, tc := range []struct {
		ops  string
		keys []string // of the first op, when it decodes
		ok   bool
	}{
		{`[{"op":"append","ns":"a","inc":"i","page":"page000001","keys":["k1","k2"],"objs":[1]}]`, []string{"k1", "k2"}, true},
		{`[{"op":"put","ns":"a","inc":"i","page":"page000001","keys":["k"],"objs":[1,2]}]`, []string{"k"}, true},
		{`[{"op":"append","ns":"a","inc":"i","page":"page000001","keys":["caf\u00e9"],"objs":[1]}]`, []string{"café"}, true}, // encoding/json's path
		{`[{"op":"append","ns":"a","inc":"i","page":"page000001","objs":[1]}]`, nil, true},
		{`[{"op":"append","ns":"a","inc":"i","page":"page000001","keys":[],"objs":[1]}]`, nil, false},
		{`[{"op":"append","ns":"a","inc":"i","page":"page000001","keys":[""],"objs":[1]}]`, nil, false},
		{`[{"op":"put","ns":"a","inc":"i","page":"page000001","new":true,"keys":["k"],"objs":[1]}]`, nil, false},
		{`[{"op":"del","ns":"a","inc":"i","page":"page000001","keys":["k"]}]`, nil, false},
		{`[{"op":"create","ns":"a","inc":"i","keys":["k"]}]`, nil, false},
	} {
		var b bytes.Buffer
		FrameOps(&b, 3, 0, "", []byte(tc.ops), 0)
		recs, bad := ScanRecords(pages.JSON, b.Bytes(), Pos{Seg: 1})
		if !tc.ok {
			if bad == nil || len(recs) != 0 {
				t.Errorf("%s: decoded (%v), want a bad record", tc.ops, bad)
			}
			continue
		}
		if bad != nil || len(recs) != 1 {
			t.Fatalf("%s: %v, %d records", tc.ops, bad, len(recs))
		}
		if got := recs[0].Rec.Ops[0].Keys; !slices.Equal(got, tc.keys) {
			t.Errorf("%s: Keys = %q, want %q", tc.ops, got, tc.keys)
		}
	}
}

// An op read again through its span decodes to the op the whole record decodes to, in every
// format; a changed byte or a short read is ErrBadRecord.
func TestDecodeOpFromSpan(t *testing.T) {
	for _, f := range []pages.Format{pages.JSON, pages.YAML} {
		objs := []json.RawMessage{json.RawMessage(`{"k":"a","n":[1,2]}`), json.RawMessage(`{"k":"b"}`)}
		if f != pages.JSON {
			objs = []json.RawMessage{json.RawMessage(`"k: a\nn: 1\n"`)}
		}
		ops := []Op{{Kind: OpCreate, NS: "t", Inc: "i1"},
			{Kind: OpPut, NS: "t", Inc: "i1", Page: "page000001", New: true, Objs: objs},
			{Kind: OpAppend, NS: "t", Inc: "i1", Page: "page000001", Keys: []string{"a", "b"}, Objs: objs}}
		line, r := frameDecoded(t, f, ops)
		for i, o := range r.Ops {
			require.NotZero(t, o.Span.Len, "op %d", i)
			text := line[o.Span.Off : o.Span.Off+o.Span.Len]
			got, err := DecodeOp(f, text, o.Span)
			require.NoError(t, err, "op %d", i)
			got.Span = o.Span
			require.Equal(t, o, got, "op %d", i)

			bad := bytes.Clone(text)
			bad[len(bad)/2] ^= 1
			_, err = DecodeOp(f, bad, o.Span)
			require.ErrorIs(t, err, ErrBadRecord, "op %d with a byte changed", i)
			_, err = DecodeOp(f, text[:len(text)-1], o.Span)
			require.ErrorIs(t, err, ErrBadRecord, "op %d read short", i)
		}
	}
}

// The objects DecodeOps gives a parsed record own their text: overwriting the line the record was
// read from changes none of them. A small record's objects share one copy of its text; a large
// one's are copied each (a cached page must not keep a large record alive).
func TestDecodedObjectsOwnTheirText(t *testing.T) {
	for _, size := range []int{10, 3 * smallRecord} {
		big := strings.Repeat("x", size)
		ops := []Op{{Kind: OpPut, NS: "t", Inc: "i1", Page: "page000001", New: true,
			Objs: []json.RawMessage{json.RawMessage(`{"k":"a"}`), json.RawMessage(`"` + big + `"`)}}}
		line, r := frameDecoded(t, pages.JSON, ops)
		require.Equal(t, size <= smallRecord-100, r.Ops[0].shared, "size %d", size)
		for i := range line {
			line[i] = 'z'
		}
		require.Equal(t, `{"k":"a"}`, r.Ops[0].Objects[0].Text())
		require.Equal(t, `"`+big+`"`, r.Ops[0].Objects[1].Text())
	}
}

// frameDecoded frames ops as record 3 (FrameOps) and reads the line back: Unframe, DecodeOps.
func frameDecoded(t *testing.T, f pages.Format, ops []Op) ([]byte, Record) {
	t.Helper()
	opsJSON, err := json.Marshal(ops)
	require.NoError(t, err)
	var b bytes.Buffer
	FrameOps(&b, 3, 1, "p", opsJSON, 0)
	line := b.Bytes()
	var r Record
	_, err = Unframe(line, &r, 0)
	require.NoError(t, err)
	require.NoError(t, DecodeOps(f, &r))
	return line, r
}
