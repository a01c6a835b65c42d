package pages

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// roundTrip encodes v, puts it through a page file and decodes it into a new
// value of v's type.
func roundTrip(t *testing.T, f Format, v any) any {
	t.Helper()
	o := mustEncode(t, f, v)
	page, err := EncodePage(f, []Object{o})
	require.NoError(t, err)
	objs, err := DecodePage(f, page)
	require.NoError(t, err, "DecodePage(%v, %q)", f, page)
	require.Len(t, objs, 1)
	if !objs[0].Equal(o) {
		t.Fatalf("page round trip: text = %q, want %q", objs[0].Text(), o.Text())
	}
	again, err := ObjectFromText(f, []byte(o.Text()))
	require.NoError(t, err)
	if !again.Equal(o) {
		t.Fatalf("ObjectFromText(Text()) = %q, want %q", again.Text(), o.Text())
	}
	p := reflect.New(reflect.TypeOf(v))
	if err := objs[0].Decode(p.Interface()); err != nil {
		t.Fatalf("Decode(%q) = %v", o.Text(), err)
	}
	return p.Elem().Interface()
}

func TestRoundTripRecord(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			want := sampleRecord()
			got := roundTrip(t, f, want).(record)
			if !sameTime(got.When, want.When) {
				t.Errorf("When = %v, want %v", got.When, want.When)
			}
			got.When = want.When
			assert.Equal(t, want, got)
		})
	}
}

func TestRoundTripDoc(t *testing.T) {
	for _, f := range []Format{JSON, YAML} {
		t.Run(f.String(), func(t *testing.T) {
			want := sampleDoc()
			got := roundTrip(t, f, want).(doc)
			if !sameTime(got.Record.When, want.Record.When) {
				t.Errorf("When = %v, want %v", got.Record.When, want.Record.When)
			}
			got.Record.When = want.Record.When
			assert.Equal(t, want.Record, got.Record)
			assert.Equal(t, want.Counts, got.Counts)
			assert.Equal(t, want.Matrix, got.Matrix)
			assert.Equal(t, want.Text, got.Text)
			assert.Nil(t, got.Null)
			assert.Equal(t, []any{"x", true, nil}, got.Nested["b"]["list"])
			assert.Empty(t, got.Nested["a"])
		})
	}
}

func TestRoundTripValues(t *testing.T) {
	when := time.Date(1969, 7, 20, 20, 17, 40, 1, time.FixedZone("", -(3*3600+30*60)))
	values := []struct {
		name string
		v    any
		xml  bool // XML can hold it
	}{
		{"string", unicodeText, true},
		{"number-like string", "123", true},
		{"empty string", "", true},
		{"marker string", "---", true},
		{"multi-line marker string", "a\n---\n...\nb\n\n", true},
		{"control characters", "nul\x00 bell\a esc\x1b del\x7f", false},
		{"max int64", int64(math.MaxInt64), true},
		{"min int64", int64(math.MinInt64), true},
		{"beyond 2^53", int64(-9007199254740993), true},
		{"max uint64", uint64(math.MaxUint64), true},
		{"float", 0.1, true},
		{"small float", 5e-324, true},
		{"max float", math.MaxFloat64, true},
		{"true", true, true},
		{"false", false, true},
		{"uuid", uuid.MustParse("6ba7b810-9dad-11d1-80b4-00c04fd430c8"), true},
		{"time", when, true},
		{"bytes", []byte("raw \x00 bytes"), false},
		{"slice", []string{"a", "", "c"}, false},
		{"nested slice", [][]int64{{1}, {}, {math.MaxInt64}}, false},
		{"map", map[string]string{"b": "2", "a": "1"}, false},
		{"nil pointer", (*string)(nil), false},
		{"nil slice", []int(nil), false}, // not in YAML: yaml.v3 writes []
	}
	for _, f := range formats {
		for _, tc := range values {
			if (f == XML && !tc.xml) || (f == YAML && tc.name == "nil slice") {
				continue
			}
			t.Run(f.String()+"/"+tc.name, func(t *testing.T) {
				got := roundTrip(t, f, tc.v)
				if w, ok := tc.v.(time.Time); ok {
					if !sameTime(got.(time.Time), w) {
						t.Errorf("got %v, want %v", got, w)
					}
					return
				}
				assert.Equal(t, tc.v, got)
			})
		}
	}
}

func TestDecodeAnyKeepsNumbers(t *testing.T) {
	v := map[string]any{
		"max":   int64(math.MaxInt64),
		"neg":   int64(-9007199254740993),
		"umax":  uint64(math.MaxUint64),
		"float": 0.1,
		"str":   "123",
	}
	t.Run("json", func(t *testing.T) {
		var got map[string]any
		require.NoError(t, mustEncode(t, JSON, v).Decode(&got))
		want := map[string]any{
			"max":   json.Number("9223372036854775807"),
			"neg":   json.Number("-9007199254740993"),
			"umax":  json.Number("18446744073709551615"),
			"float": json.Number("0.1"),
			"str":   "123",
		}
		assert.Equal(t, want, got)
	})
	t.Run("json text", func(t *testing.T) {
		o := mustObject(t, JSON, `{"huge": 123456789012345678901234567890, "exact": 1.000000000000000000001, "e": 1E+2}`)
		if want := `{"huge":123456789012345678901234567890,"exact":1.000000000000000000001,"e":1E+2}`; o.Text() != want {
			t.Errorf("Text() = %q, want %q", o.Text(), want)
		}
		var got any
		require.NoError(t, o.Decode(&got))
		want := map[string]any{
			"huge":  json.Number("123456789012345678901234567890"),
			"exact": json.Number("1.000000000000000000001"),
			"e":     json.Number("1E+2"),
		}
		assert.Equal(t, want, got)
	})
	t.Run("yaml", func(t *testing.T) {
		var got map[string]any
		require.NoError(t, mustEncode(t, YAML, v).Decode(&got))
		want := map[string]any{
			"max":   int(math.MaxInt64),
			"neg":   int(-9007199254740993),
			"umax":  uint64(math.MaxUint64),
			"float": 0.1,
			"str":   "123",
		}
		assert.Equal(t, want, got)
	})
}

func TestEncodeObjectVerbatim(t *testing.T) {
	texts := map[Format]string{
		JSON: `{"z":1,"a":2.50,"s":"\u00e9<"}`,
		YAML: "# kept\nz: 1   # also kept\na: 2.50\n",
		XML:  "<r  b='1'>\n  <z>1</z><!-- c -->\n</r>",
	}
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			o := mustObject(t, f, texts[f])
			if o.Text() != texts[f] {
				t.Fatalf("ObjectFromText(%q).Text() = %q", texts[f], o.Text())
			}
			for _, v := range []any{o, &o} {
				got, err := Encode(f, v)
				require.NoError(t, err)
				if got.Text() != o.Text() || !got.Equal(o) {
					t.Errorf("Encode(%v, %T) = %q, want %q verbatim", f, v, got.Text(), o.Text())
				}
			}
			page, err := EncodePage(f, []Object{o})
			require.NoError(t, err)
			back, err := DecodePage(f, page)
			require.NoError(t, err)
			assert.Equal(t, []string{texts[f]}, textsOf(back))

			var same Object
			require.NoError(t, o.Decode(&same))
			assert.True(t, same.Equal(o), "Decode(*Object) = %q, want %q", same.Text(), o.Text())

			other := XML
			if f == XML {
				other = JSON
			}
			if _, err := Encode(other, o); !errors.Is(err, ErrFormat) {
				t.Errorf("Encode(%v, %v object) = %v, want ErrFormat", other, f, err)
			}
		})
	}
}

func textsOf(objs []Object) []string { return texts(objs) }

func TestEncodeStringIsAValue(t *testing.T) {
	for _, f := range formats {
		for _, v := range []any{`{"a":1}`, []byte(`{"a":1}`)} {
			if f == XML {
				if _, ok := v.([]byte); ok {
					continue
				}
			}
			o := mustEncode(t, f, v)
			if o.Text() == `{"a":1}` {
				t.Errorf("Encode(%v, %T) kept the text %q, want it encoded as a value", f, v, o.Text())
			}
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		f    Format
		v    any
		want error
	}{
		{"xml map", XML, map[string]int{"a": 1}, ErrUnsupported},
		{"xml any map", XML, map[string]any{}, ErrUnsupported},
		{"xml nil", XML, nil, ErrUnsupported},
		{"xml several elements", XML, []int{1, 2}, ErrUnsupported},
		{"xml bytes", XML, []byte("x"), ErrUnsupported},
		{"xml func", XML, func() {}, ErrUnsupported},
		{"json NaN", JSON, math.NaN(), ErrUnsupported},
		{"json Inf", JSON, math.Inf(1), ErrUnsupported},
		{"json chan", JSON, make(chan int), ErrUnsupported},
		{"json invalid UTF-8 raw", JSON, json.RawMessage("\"\xff\""), ErrUnsupported},
		{"yaml marshaler error", YAML, badYAML{}, errBadYAML},
		{"xml invalid UTF-8 marshaler", XML, badXML{}, ErrUnsupported},
		{"yaml chan", YAML, make(chan int), ErrUnsupported},
		{"yaml func", YAML, func() {}, ErrUnsupported},
		{"zero object", JSON, Object{}, ErrFormat},
		{"other format object", JSON, Object{format: YAML, text: "a\n"}, ErrFormat},
		{"invalid format", Format(0), 1, ErrFormat},
		{"unknown format", Format(9), 1, ErrFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Encode(tc.f, tc.v)
			if !errors.Is(err, tc.want) {
				t.Errorf("Encode(%v, %T) = %q, %v; want error %v", tc.f, tc.v, got.Text(), err, tc.want)
			}
		})
	}
}

func TestObjectFromText(t *testing.T) {
	tests := []struct {
		f    Format
		in   string
		want string // "" means an error matching ErrCorrupt
	}{
		{JSON, ` { "b" : [ 1 , 2 ] , "a" : "x y" } `, `{"b":[1,2],"a":"x y"}`},
		{JSON, "\n\"s\"\n", `"s"`},
		{JSON, `1e400`, `1e400`},
		{JSON, `null`, `null`},
		{JSON, `"\u003c\ud83c\udf0d"`, `"\u003c\ud83c\udf0d"`},
		{JSON, ``, ""},
		{JSON, `  `, ""},
		{JSON, `{`, ""},
		{JSON, `{"a":1}{}`, ""},
		{JSON, `1 2`, ""},
		{JSON, `{'a':1}`, ""},
		{JSON, `NaN`, ""},
		{JSON, "\"\xff\"", ""},
		{JSON, `[1,]`, ""},

		{YAML, "a: 1\n", "a: 1\n"},
		{YAML, "a: 1", "a: 1\n"},
		{YAML, "---\na: 1\n", "a: 1\n"},
		{YAML, "a: 1\n...\n", "a: 1\n"},
		{YAML, "a: 1\n...", "a: 1\n"},
		{YAML, "- x\n- y\n", "- x\n- y\n"},
		{YAML, "null\n", "null\n"},
		{YAML, "s: |\n  ---\n  ...\n", "s: |\n  ---\n  ...\n"},
		{YAML, "# head\na: 1 # tail\n", "# head\na: 1 # tail\n"},
		{YAML, "---a: 1\n", "---a: 1\n"},
		{YAML, "", ""},
		{YAML, "\n", ""},
		{YAML, "# only a comment\n", ""},
		{YAML, "---\n", ""},
		{YAML, "...\n", ""},
		{YAML, "a: 1\n---\nb: 2\n", ""},
		{YAML, "--- a\n", ""},
		{YAML, "a: 1\n--- \n", ""},
		{YAML, "a: 1\n---\n", ""},
		{YAML, "a\n...\nb\n", ""},
		{YAML, "a: 1\r---\rb: 2\r", ""},
		{YAML, "a: 1\u2028---\u2028b: 2\n", ""},
		{YAML, "a: 1\u0085---\u0085b: 2\n", ""},
		{YAML, "a: 1\r\n--- \r\nb: 2\r\n", ""},
		{YAML, "\ufeffa: 1\n", ""},
		{YAML, "a: [1\n", ""},
		{YAML, "a: *nowhere\n", ""},
		{YAML, "a: !!int x\n", ""},
		{YAML, "a: 1\na: 2\n", ""},
		{YAML, "a:\n\t- b\n", ""},
		{YAML, "%YAML 1.1\n", ""},
		{YAML, "a: \xff\n", ""},

		{XML, "<a>1</a>", "<a>1</a>"},
		{XML, " \n<a/>\n ", "<a/>"},
		{XML, `<?xml version="1.0" encoding="UTF-8"?>` + "\n<a x='1'><b/></a>", "<a x='1'><b/></a>"},
		{XML, "<a>\n  <b>x</b>\n</a>", "<a>\n  <b>x</b>\n</a>"},
		{XML, "<p:a xmlns:p='urn:x'><p:b/></p:a>", "<p:a xmlns:p='urn:x'><p:b/></p:a>"},
		{XML, "<a><![CDATA[</a>]]></a>", "<a><![CDATA[</a>]]></a>"},
		{XML, "", ""},
		{XML, "text", ""},
		{XML, "<a>", ""},
		{XML, "<a></b>", ""},
		{XML, "<a/><b/>", ""},
		{XML, "<a/>tail", ""},
		{XML, "<!-- c --><a/>", ""},
		{XML, "<a/><!-- c -->", ""},
		{XML, "<!DOCTYPE a><a/>", ""},
		{XML, "<a>&nbsp;</a>", ""},
		{XML, "<?pi x?><a/>", ""},
		{XML, `<?xml version="1.0" encoding="latin1"?><a/>`, ""},
		{XML, "<a>\xff</a>", ""},
	}
	for _, tc := range tests {
		t.Run(tc.f.String()+"/"+tc.in, func(t *testing.T) {
			got, err := ObjectFromText(tc.f, []byte(tc.in))
			if tc.want == "" {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("ObjectFromText(%v, %q) = %q, %v; want ErrCorrupt", tc.f, tc.in, got.Text(), err)
				}
				var ce *CorruptError
				require.ErrorAs(t, err, &ce)
				return
			}
			if err != nil {
				t.Fatalf("ObjectFromText(%v, %q) = %v, want %q", tc.f, tc.in, err, tc.want)
			}
			if got.Text() != tc.want || got.Format() != tc.f || got.Size() != len(tc.want) {
				t.Errorf("ObjectFromText(%v, %q) = %v %q, want %v %q", tc.f, tc.in, got.Format(), got.Text(), tc.f, tc.want)
			}
			again, err := ObjectFromText(tc.f, []byte(got.Text()))
			require.NoError(t, err)
			assert.True(t, again.Equal(got), "ObjectFromText is not idempotent: %q -> %q", got.Text(), again.Text())
		})
	}
	if _, err := ObjectFromText(Format(0), []byte("1")); !errors.Is(err, ErrFormat) {
		t.Errorf("ObjectFromText(0, ...) = %v, want ErrFormat", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	objs := map[Format]Object{
		JSON: mustObject(t, JSON, `{"a":[1,2]}`),
		YAML: mustObject(t, YAML, "a: [1, 2]\n"),
		XML:  mustObject(t, XML, "<a><b>x</b></a>"),
	}
	for _, f := range formats {
		o := objs[f]
		targets := []struct {
			name string
			v    any
		}{
			{"nil", nil},
			{"non-pointer", map[string]any{}},
			{"nil pointer", (*map[string]any)(nil)},
			{"wrong type", new(int)},
			{"chan", new(chan int)},
			{"func", new(func())},
		}
		for _, tc := range targets {
			if f == XML && tc.name == "wrong type" {
				continue // encoding/xml decodes any element into an int
			}
			t.Run(f.String()+"/"+tc.name, func(t *testing.T) {
				if err := o.Decode(tc.v); err == nil {
					t.Errorf("Decode(%T) = nil, want an error", tc.v)
				}
			})
		}
	}
	var zero Object
	if err := zero.Decode(new(any)); !errors.Is(err, ErrFormat) {
		t.Errorf("zero Object Decode = %v, want ErrFormat", err)
	}
	if !zero.IsZero() || zero.Format().Valid() || zero.Equal(objs[JSON]) {
		t.Errorf("zero Object = %v, want invalid", zero)
	}
	var x xmlObject
	require.NoError(t, objs[XML].Decode(&x))
	assert.Equal(t, "a", x.XMLName.Local)
	assert.Equal(t, "<b>x</b>", x.Inner)
	if strings.Contains(objs[JSON].String(), " ") {
		t.Errorf("String() = %q, want compact text", objs[JSON].String())
	}
}

// badYAML fails to marshal; badXML marshals to invalid UTF-8.
type badYAML struct{}

var errBadYAML = errors.New("bad yaml")

func (badYAML) MarshalYAML() (any, error) { return nil, errBadYAML }

type badXML struct{}

func (badXML) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	start.Name.Local = "bad"
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	if err := e.EncodeToken(xml.Comment("\xff")); err != nil {
		return err
	}
	return e.EncodeToken(start.End())
}

// Targets without an interface decode through json.Unmarshal, the rest through a Decoder with
// UseNumber: the same values either way, and numbers under an interface stay exact.
func TestDecodeTargets(t *testing.T) {
	obj := mustObject(t, JSON, `{"a":9007199254740993,"b":[1,2],"c":"x","d":{"e":1.5}}`)
	type plain struct {
		A int64
		B []int
		C string
		D struct{ E float64 }
	}
	var p plain
	require.NoError(t, obj.Decode(&p))
	require.Equal(t, plain{A: 9007199254740993, B: []int{1, 2}, C: "x", D: struct{ E float64 }{1.5}}, p)
	require.False(t, holdsInterface(reflect.TypeOf(&p)))
	type mixed struct {
		A any
		B []int
	}
	var m mixed
	require.NoError(t, obj.Decode(&m))
	require.Equal(t, json.Number("9007199254740993"), m.A)
	require.True(t, holdsInterface(reflect.TypeOf(&m)))
	type node struct {
		V    int
		Next *node
	}
	require.False(t, holdsInterface(reflect.TypeOf(&node{})), "a recursive type without interfaces")
	var n int
	require.NoError(t, mustObject(t, JSON, `5`).Decode(&n))
	require.Equal(t, 5, n)
	var wrong struct{ A string }
	require.Error(t, obj.Decode(&wrong), "a type mismatch is still an error")
}
