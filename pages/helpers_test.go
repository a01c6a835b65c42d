package pages

import (
	"encoding/xml"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

var formats = []Format{JSON, YAML, XML}

// address and record are representative stored objects that every format can
// hold (record has no map, so XML can).
type address struct {
	Street string `json:"street" yaml:"street" xml:"street"`
	City   string `json:"city" yaml:"city" xml:"city"`
}

type record struct {
	Name   string    `json:"name" yaml:"name" xml:"name"`
	Big    int64     `json:"big" yaml:"big" xml:"big"`
	Neg    int64     `json:"neg" yaml:"neg" xml:"neg"`
	Ratio  float64   `json:"ratio" yaml:"ratio" xml:"ratio"`
	Active bool      `json:"active" yaml:"active" xml:"active"`
	When   time.Time `json:"when" yaml:"when" xml:"when"`
	ID     uuid.UUID `json:"id" yaml:"id" xml:"id"`
	Tags   []string  `json:"tags" yaml:"tags" xml:"tag"`
	Home   address   `json:"home" yaml:"home" xml:"home"`
	Nick   *string   `json:"nick" yaml:"nick" xml:"nick,omitempty"`
}

// doc is a record with the things XML cannot hold: maps and any.
type doc struct {
	Record record                    `json:"record" yaml:"record"`
	Counts map[string]int64          `json:"counts" yaml:"counts"`
	Nested map[string]map[string]any `json:"nested" yaml:"nested"`
	Matrix [][]float64               `json:"matrix" yaml:"matrix"`
	Null   any                       `json:"null" yaml:"null"`
	Text   string                    `json:"text" yaml:"text"`
}

// unicodeText exercises escapes and characters every format must keep.
const unicodeText = "Grüße, 世界 🌍 — \"quoted\" <tag> & 'apos' \\ back\tslash \u2028 \u00e9\u0301 \U0010FFFF"

// zone is an offset with minutes, to check that offsets survive.
var zone = time.FixedZone("", 5*3600+45*60)

func sampleRecord() record {
	nick := "ann"
	return record{
		Name:   unicodeText,
		Big:    math.MaxInt64,
		Neg:    -9007199254740993,
		Ratio:  0.1,
		Active: true,
		When:   time.Date(2024, 2, 29, 23, 59, 58, 123456789, zone),
		ID:     uuid.MustParse("f47ac10b-58cc-4372-a567-0e02b2c3d479"),
		Tags:   []string{"123", "true", "null", "---", "# not a comment", "multi\nline\n"},
		Home:   address{Street: "1 Main St", City: "Zürich"},
		Nick:   &nick,
	}
}

func sampleDoc() doc {
	return doc{
		Record: sampleRecord(),
		Counts: map[string]int64{"max": math.MaxInt64, "min": math.MinInt64, "zero": 0},
		Nested: map[string]map[string]any{"b": {"list": []any{"x", true, nil}}, "a": {}},
		Matrix: [][]float64{{1.5, -2e-300}, {math.MaxFloat64}},
		Null:   nil,
		Text:   "line 1\n---\n...\nline 4\n\n",
	}
}

// sameTime reports whether a and b are the same instant with the same offset.
func sameTime(a, b time.Time) bool {
	_, ao := a.Zone()
	_, bo := b.Zone()
	return a.Equal(b) && ao == bo
}

// xmlObject is any XML element, for decoding objects generically.
type xmlObject struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Inner   string     `xml:",innerxml"`
}

// mustObject returns ObjectFromText(f, text) or fails the test.
func mustObject(tb testing.TB, f Format, text string) Object {
	tb.Helper()
	o, err := ObjectFromText(f, []byte(text))
	if err != nil {
		tb.Fatalf("ObjectFromText(%v, %q) = %v", f, text, err)
	}
	return o
}

// mustEncode returns Encode(f, v) or fails the test.
func mustEncode(tb testing.TB, f Format, v any) Object {
	tb.Helper()
	o, err := Encode(f, v)
	if err != nil {
		tb.Fatalf("Encode(%v, %T) = %v", f, v, err)
	}
	return o
}

// texts returns the texts of objs.
func texts(objs []Object) []string {
	s := make([]string, len(objs))
	for i, o := range objs {
		s[i] = o.Text()
	}
	return s
}

// MustOpenDir opens a Dir on a new temporary directory and registers a
// cleanup that closes it and checks that no temporary file was left behind.
func MustOpenDir(tb testing.TB) (*Dir, string) {
	tb.Helper()
	path := tb.TempDir()
	d, err := OpenDir(path)
	if err != nil {
		tb.Fatalf("OpenDir(%q) = %v", path, err)
	}
	tb.Cleanup(func() {
		if err := d.Close(); err != nil {
			tb.Errorf("Close() = %v", err)
		}
		_ = filepath.WalkDir(path, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				tb.Errorf("walk %s: %v", p, err)
				return nil
			}
			if strings.HasSuffix(e.Name(), tempSuffix) {
				tb.Errorf("temporary file left behind: %s", p)
			}
			return nil
		})
	})
	return d, path
}

// writeFile writes a file for a test, creating folders.
func writeFile(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		tb.Fatal(err)
	}
}
