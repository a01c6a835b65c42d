package table

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

// scanEntry is a fast path: whatever it accepts, the standard decoder decodes to the same key,
// pk and del; what it refuses is left to that decoder.
func FuzzScanEntry(f *testing.F) {
	for _, s := range []string{
		`{"key":7,"row":{"id":7,"s":"a\"}"},"ix":{"email":"a@b"}}`,
		`{"key":-12,"del":true}`,
		`{"key":"a.b","pk":[1,"x"]}`,
		`{"key":["2026-12-01T00:00:00Z","c"],"pk":"0192e4b2-7f1c-7000-8000-000000000001"}`,
		`{"key":1.5e3,"row":[1,{"a":[]}],"ix":{}}`,
		`{"key":0,"row":null}`,
		`{"key":"caf\u00e9"}`,
		`{"key":"é"}`,
		`{ "key":1}`,
		`{"key":1,"key":2}`,
		`{"key":[],"pk":1}`,
		`{"pk":1}`,
		`{"key":true}`,
		`{"key":01}`,
		`{"key":1,"other":2}`,
		`{"key":1,"del":false,"row":"x"}`,
		`{}`,
		`{"key":1,"ix":5}`,
		`{"key":1,"ix":null}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		o, err := pages.ObjectFromText(pages.JSON, []byte(text))
		if err != nil {
			return // not an object a page could hold
		}
		sc, ok := scanEntry(o)
		key, pk, del, from, to := sc.key, sc.pk, sc.del, sc.rowFrom, sc.rowTo
		if !ok {
			return
		}
		var r rawEntry
		require.NoError(t, o.Decode(&r), "the fast path took %q", text)
		require.Equal(t, r.Key, key, "key of %q", text)
		require.Equal(t, r.PK, pk, "pk of %q", text)
		require.Equal(t, r.Del, del, "del of %q", text)
		var whole struct {
			Row *any `json:"row"`
		}
		require.NoError(t, o.Decode(&whole))
		if to == 0 {
			require.Nil(t, whole.Row, "%q has a row the fast path did not find", text)
			return
		}
		var row *any
		require.NoError(t, pages.ObjectFromTrusted(pages.JSON, text[from:to]).Decode(&row), "row text %q of %q", text[from:to], text)
		require.Equal(t, whole.Row, row, "row of %q", text)
	})
}

// The entries the table writes take the fast path (a fall-back on every entry would be slow,
// never wrong, so only a test sees it).
func TestScanEntryTakesWhatTablesWrite(t *testing.T) {
	for _, v := range []any{
		rowEntry[struct{ A, B string }]{Key: int64(-5), Row: &struct{ A, B string }{"x\n", `"}`}, IX: map[string]any{"b": `"}`}},
		rowEntry[int]{Key: []any{"2026-12-01T00:00:00Z", uint64(3)}, Del: true},
		indexEntry{Key: "0192e4b2-7f1c-7000-8000-000000000001", PK: []any{int64(1), "a"}},
	} {
		o, err := pages.Encode(pages.JSON, v)
		require.NoError(t, err)
		_, ok := scanEntry(o)
		require.True(t, ok, "%s", o.Text())
	}
}
