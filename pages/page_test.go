package pages

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sampleObjects returns a few representative objects of format f.
func sampleObjects(tb testing.TB, f Format) []Object {
	tb.Helper()
	objs := []Object{mustEncode(tb, f, sampleRecord())}
	second := sampleRecord()
	second.Nick, second.Tags, second.Name = nil, nil, "Bob"
	objs = append(objs, mustEncode(tb, f, second), mustEncode(tb, f, unicodeText))
	switch f {
	case JSON:
		objs = append(objs,
			mustEncode(tb, f, map[string]any{"z": 1, "a": []any{true, nil, 2.5, "<&>"}, "m": map[string]any{}}),
			mustObject(tb, f, `{"kept":1.50,"order":"z before a","a":"\u00e9"}`))
	case YAML:
		objs = append(objs,
			mustEncode(tb, f, map[string]any{"z": 1, "a": []any{true, nil, 2.5, "<&>"}, "m": map[string]any{}}),
			mustEncode(tb, f, "ends with blank lines\n\n\n"),
			mustObject(tb, f, "# a comment, kept\nkept: 1.50\norder: z before a\n"))
	case XML:
		objs = append(objs, mustObject(tb, f, "<note lang=\"en\">\n  <body>kept &amp; <b>verbatim</b></body>\n</note>"))
	}
	return objs
}

func TestPageRoundTrip(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			all := sampleObjects(t, f)
			for n := 0; n <= len(all); n++ {
				objs := all[:n]
				page, err := EncodePage(f, objs)
				require.NoError(t, err)
				got, err := DecodePage(f, page)
				require.NoError(t, err, "DecodePage(%v, %q)", f, page)
				assert.Equal(t, texts(objs), texts(got), "page %q", page)
				for _, o := range got {
					assert.Equal(t, f, o.Format())
				}
				again, err := EncodePage(f, got)
				require.NoError(t, err)
				if string(again) != string(page) {
					t.Errorf("EncodePage(DecodePage(page)) = %q, want %q", again, page)
				}
			}
		})
	}
}

func TestEmptyPage(t *testing.T) {
	want := map[Format]string{
		JSON: "[]\n",
		YAML: "# empty page\n",
		XML:  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<page>\n</page>\n",
	}
	for _, f := range formats {
		page, err := EncodePage(f, nil)
		require.NoError(t, err)
		if string(page) != want[f] {
			t.Errorf("EncodePage(%v, nil) = %q, want %q", f, page, want[f])
		}
		objs, err := DecodePage(f, page)
		if err != nil || len(objs) != 0 {
			t.Errorf("DecodePage(%v, %q) = %v, %v; want no objects", f, page, objs, err)
		}
	}
}

func TestEncodePageErrors(t *testing.T) {
	j := mustObject(t, JSON, "1")
	y := mustObject(t, YAML, "1")
	for _, tc := range []struct {
		f    Format
		objs []Object
	}{
		{JSON, []Object{j, y}},
		{YAML, []Object{j}},
		{XML, []Object{{}}},
		{Format(0), nil},
	} {
		if _, err := EncodePage(tc.f, tc.objs); !errors.Is(err, ErrFormat) {
			t.Errorf("EncodePage(%v, %v) = %v, want ErrFormat", tc.f, tc.objs, err)
		}
	}
	if _, err := DecodePage(Format(4), []byte("[]")); !errors.Is(err, ErrFormat) {
		t.Errorf("DecodePage(4, ...) = %v, want ErrFormat", err)
	}
}

func TestDecodePageCorrupt(t *testing.T) {
	tests := []struct {
		f    Format
		data string
	}{
		{JSON, ""},
		{JSON, "\n"},
		{JSON, "null"},
		{JSON, "{}"},
		{JSON, `"x"`},
		{JSON, "[1,2] [3]"},
		{JSON, "[1,2],"},
		{JSON, "[1,"},
		{JSON, "[{\"a\":\"\xff\"}]"},
		{JSON, "\xef\xbb\xbf[]"},

		{YAML, ""},
		{YAML, "\n"},
		{YAML, "# empty page"},
		{YAML, "# another comment\n"},
		{YAML, "a: 1\n"},
		{YAML, "a: 1\n...\n"},
		{YAML, "---\na: 1\n"},
		{YAML, "---\na: 1\n..."},
		{YAML, "---\n...\n"},
		{YAML, "---\n---\na: 1\n...\n"},
		{YAML, "---\na: 1\n---\n...\n"},
		{YAML, "---\na: [1\n...\n"},
		{YAML, "---\na: 1\n--- b\n...\n"},
		{YAML, "---\r\na: 1\r\n...\r\n"},
		{YAML, "---\na: \xff\n...\n"},

		{XML, ""},
		{XML, "<page>"},
		{XML, "<page>\n<a/>\n"},
		{XML, "<page></page><page></page>"},
		{XML, "<page></page><a/>"},
		{XML, "<pages></pages>"},
		{XML, "<page x=\"1\"></page>"},
		{XML, "<p:page xmlns:p=\"urn:x\"></p:page>"},
		{XML, "<page>text<a/></page>"},
		{XML, "<page><a/>tail</page>"},
		{XML, "<page></page>tail"},
		{XML, "<page><a></b></page>"},
		{XML, "<page><a>&nbsp;</a></page>"},
		{XML, "<page><!DOCTYPE a></page>"},
		{XML, "<page><?pi x?></page>"},
		{XML, "\n<?xml version=\"1.0\"?><page></page>"},
		{XML, "<page><a>\xff</a></page>"},
	}
	for _, tc := range tests {
		t.Run(tc.f.String()+"/"+tc.data, func(t *testing.T) {
			objs, err := DecodePage(tc.f, []byte(tc.data))
			assertCorrupt(t, err, "DecodePage(%v, %q) = %q", tc.f, tc.data, texts(objs))
		})
	}
}

// TestDecodePageTruncated cuts valid pages at every byte: every cut is
// corrupt, except dropping the final newline of a JSON or XML page.
func TestDecodePageTruncated(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			for _, objs := range [][]Object{nil, sampleObjects(t, f)} {
				page, err := EncodePage(f, objs)
				require.NoError(t, err)
				for n := 0; n < len(page); n++ {
					got, err := DecodePage(f, page[:n])
					if n == len(page)-1 && f != YAML {
						if err != nil {
							t.Errorf("DecodePage(%v) without its final newline = %v", f, err)
						}
						continue
					}
					assertCorrupt(t, err, "DecodePage(%v, page[:%d] of %d) = %d objects", f, n, len(page), len(got))
				}
			}
		})
	}
}

func TestCorruptError(t *testing.T) {
	_, err := DecodePage(JSON, []byte("[1,\n  x]"))
	var ce *CorruptError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, int64(7), ce.Offset) // encoding/json: after reading the bad byte
	assert.Equal(t, "", ce.Path)
	assert.True(t, strings.HasPrefix(err.Error(), "pages: corrupt data at 7: "), "Error() = %q", err)
	e := &CorruptError{Path: "app/page000001.json.v3", Offset: 12, Err: errors.New("boom")}
	assert.Equal(t, "pages: corrupt app/page000001.json.v3 at 12: boom", e.Error())
	assert.ErrorIs(t, e, ErrCorrupt)
}

// assertCorrupt checks that err matches ErrCorrupt and is a *CorruptError.
func assertCorrupt(t *testing.T, err error, format string, args ...any) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf(format+": error %v, want ErrCorrupt", append(args, err)...)
		return
	}
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Errorf(format+": error %v is not a *CorruptError", append(args, err)...)
	}
}
