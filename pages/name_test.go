package pages

import (
	"errors"
	"io/fs"
	"math"
	"path"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Format
	}{
		{"json", JSON}, {"yaml", YAML}, {"yml", YAML}, {"xml", XML}, {"JSON", JSON}, {"Yaml", YAML},
	} {
		got, err := ParseFormat(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseFormat(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "toml", "json ", "jsonl", "x"} {
		if got, err := ParseFormat(in); !errors.Is(err, ErrFormat) {
			t.Errorf("ParseFormat(%q) = %v, %v; want ErrFormat", in, got, err)
		}
	}
	for _, f := range formats {
		got, err := ParseFormat(f.String())
		if err != nil || got != f || f.Ext() != f.String() || !f.Valid() {
			t.Errorf("%v: ParseFormat(String()) = %v, %v; Ext() = %q", f, got, err, f.Ext())
		}
	}
	for _, f := range []Format{0, 4, 255} {
		if f.Valid() || f.Ext() != "" {
			t.Errorf("Format(%d): Valid() = %v, Ext() = %q; want false, \"\"", f, f.Valid(), f.Ext())
		}
	}
	assert.Equal(t, "Format(7)", Format(7).String())
	assert.Equal(t, "42", TSN(42).String())
}

func TestPageID(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want string
	}{
		{1, "page000001"},
		{42, "page000042"},
		{999999, "page999999"},
		{1000000, "page1000000"},
		{math.MaxUint64, "page18446744073709551615"},
	} {
		if got := PageID(tc.n); got != tc.want {
			t.Errorf("PageID(%d) = %q, want %q", tc.n, got, tc.want)
		}
		if got, err := ParsePageID(tc.want); err != nil || got != tc.n {
			t.Errorf("ParsePageID(%q) = %d, %v; want %d", tc.want, got, err, tc.n)
		}
	}
	assert.Panics(t, func() { PageID(0) })
}

func TestParsePageIDInvalid(t *testing.T) {
	for _, id := range []string{
		"", "page", "page000000", "page00001", "page0000001", "page01000000", "Page000001",
		"page+00001", "page-00001", "page 00001", "page00000a", "page٠٠٠٠٠١", "page000001 ",
		"page18446744073709551616", "../x", "page000001/../../x", "page000001.json", "x/page000001",
	} {
		n, err := ParsePageID(id)
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("ParsePageID(%q) = %d, %v; want ErrInvalidName", id, n, err)
			continue
		}
		var ne *NameError
		require.ErrorAs(t, err, &ne)
		assert.Equal(t, "page", ne.Kind)
		assert.Equal(t, id, ne.Name)
	}
}

func TestVersionFileName(t *testing.T) {
	for _, tc := range []struct {
		id   string
		f    Format
		tsn  TSN
		want string
	}{
		{"page000001", JSON, 42, "page000001.json.v42"},
		{"page1000000", YAML, 1, "page1000000.yaml.v1"},
		{"page000007", XML, math.MaxUint64, "page000007.xml.v18446744073709551615"},
	} {
		got := VersionFileName(tc.id, tc.f, tc.tsn)
		if got != tc.want {
			t.Errorf("VersionFileName(%q, %v, %d) = %q, want %q", tc.id, tc.f, tc.tsn, got, tc.want)
		}
		id, f, tsn, err := ParseVersionFileName(got)
		if err != nil || id != tc.id || f != tc.f || tsn != tc.tsn {
			t.Errorf("ParseVersionFileName(%q) = %q, %v, %d, %v", got, id, f, tsn, err)
		}
	}
	for _, name := range []string{
		"", "page000001", "page000001.json", "page000001.json.", "page000001.json.v", "page000001.json.v0",
		"page000001.json.v042", "page000001.json.42", "page000001.yml.v1", "page000001.JSON.v1",
		"page000001.toml.v1", "page000001.json.v1.tmp", ".page000001.json.v1", "page1.json.v1",
		"page000001.json.v-1", "page000001.json.v+1", "page000001.json.v18446744073709551616",
		"page000001.json.v1 ", "../page000001.json.v1", "page000001.json.v1/x",
	} {
		id, f, tsn, err := ParseVersionFileName(name)
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("ParseVersionFileName(%q) = %q, %v, %d, %v; want ErrInvalidName", name, id, f, tsn, err)
		}
	}
}

func TestValidateNamespace(t *testing.T) {
	long := strings.Repeat("a", 100)
	tests := []struct {
		ns   string
		want string // folder, or "" for ErrInvalidName
	}{
		{"app", "app"},
		{"app.users", "app/users"},
		{"a.b.c.d", "a/b/c/d"},
		{"App.Users", "App/Users"},
		{"app.Users", "app/Users"},
		{"zürich.日本語.🌍", "zürich/日本語/🌍"},
		{"with space.and-dash_under~", "with space/and-dash_under~"},
		{"txtdb", "txtdb"},
		{long + "." + long[:99], long + "/" + long[:99]},

		{"", ""},
		{"a..b", ""},
		{".a", ""},
		{"a.", ""},
		{".", ""},
		{"..", ""},
		{"...", ""},
		{"..a", ""},
		{"a/b", ""},
		{"a\\b", ""},
		{"/a", ""},
		{"a.\x00", ""},
		{"a\x00b", ""},
		{"a\tb", ""},
		{"a\nb", ""},
		{"a\x7fb", ""},
		{"a\u0085b", ""},
		{".txtdb", ""},
		{"a..txtdb", ""},
		{MetaDir + ".log", ""},
		{long + "a", ""},
		{long + "." + long, ""},
		{"\xff", ""},
		{"a.\xc3", ""},
	}
	for _, tc := range tests {
		t.Run(tc.ns, func(t *testing.T) {
			err := ValidateNamespace(tc.ns)
			got, perr := NamespacePath(tc.ns)
			if tc.want == "" {
				if !errors.Is(err, ErrInvalidName) || !errors.Is(perr, ErrInvalidName) {
					t.Fatalf("ValidateNamespace(%q) = %v, NamespacePath = %q, %v; want ErrInvalidName", tc.ns, err, got, perr)
				}
				var ne *NameError
				require.ErrorAs(t, err, &ne)
				assert.Equal(t, "namespace", ne.Kind)
				assert.Equal(t, tc.ns, ne.Name)
				assert.NotEmpty(t, ne.Reason)
				return
			}
			if err != nil || perr != nil || got != tc.want {
				t.Fatalf("NamespacePath(%q) = %q, %v (Validate: %v); want %q", tc.ns, got, perr, err, tc.want)
			}
			if !fs.ValidPath(got) || path.Clean(got) != got {
				t.Errorf("NamespacePath(%q) = %q, not a clean relative path", tc.ns, got)
			}
			back, err := Namespace(got)
			if err != nil || back != tc.ns {
				t.Errorf("Namespace(%q) = %q, %v; want %q", got, back, err, tc.ns)
			}
		})
	}
	if len(strings.Repeat("a", 100)+"."+strings.Repeat("a", 99)) != MaxNameLen {
		t.Errorf("table assumes MaxNameLen = 200")
	}
}

func TestNamespacePathInvalid(t *testing.T) {
	for _, p := range []string{"", "a.b", "../x", "a/../b", "/abs", "a//b", "a/", ".txtdb", ".txtdb/log", "a/.hidden", "a\\b", "."} {
		if ns, err := Namespace(p); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Namespace(%q) = %q, %v; want ErrInvalidName", p, ns, err)
		}
	}
}
