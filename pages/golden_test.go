package pages

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestGolden pins the page file layout of every format byte for byte. Run
// `go test ./pages -run TestGolden -update` after an intended change, and
// copy the new files into docs/FORMAT.md.
func TestGolden(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			objs := goldenObjects(t, f)
			page, err := EncodePage(f, objs)
			require.NoError(t, err)
			path := filepath.Join("testdata", "golden", "page."+f.Ext())
			if *update {
				require.NoError(t, os.WriteFile(path, page, 0o644))
			}
			golden, err := os.ReadFile(path)
			require.NoError(t, err, "run with -update to create it")
			if string(page) != string(golden) {
				t.Errorf("EncodePage(%v) differs from %s (run with -update if intended):\ngot:\n%s\nwant:\n%s", f, path, page, golden)
			}
			got, err := DecodePage(f, golden)
			require.NoError(t, err)
			assert.Equal(t, texts(objs), texts(got))
		})
	}
}

// goldenObjects returns a small, readable page of representative objects.
func goldenObjects(tb testing.TB, f Format) []Object {
	tb.Helper()
	first := sampleRecord()
	first.Name = "Zoë Müller — 東京"
	first.Tags = []string{"admin", "123", "two\nlines"}
	second := sampleRecord()
	second.Name, second.Nick, second.Tags, second.Active = "Bob <bob@example.com>", nil, nil, false
	objs := []Object{mustEncode(tb, f, first), mustEncode(tb, f, second)}
	switch f {
	case JSON:
		objs = append(objs,
			mustEncode(tb, f, map[string]any{"z": 1, "a": []any{true, nil, 2.5}}),
			mustObject(tb, f, `{"written": "by hand", "kept": 1.50}`))
	case YAML:
		objs = append(objs,
			mustEncode(tb, f, map[string]any{"z": 1, "a": []any{true, nil, 2.5}}),
			mustObject(tb, f, "# written by hand\nkept: 1.50\n"))
	case XML:
		objs = append(objs, mustObject(tb, f, "<note lang=\"en\">written by <b>hand</b></note>"))
	}
	return objs
}

// TestFormatDoc keeps docs/FORMAT.md true: its example page files must be
// the golden files.
func TestFormatDoc(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "FORMAT.md"))
	require.NoError(t, err)
	for _, f := range formats {
		golden, err := os.ReadFile(filepath.Join("testdata", "golden", "page."+f.Ext()))
		require.NoError(t, err)
		block := "```" + f.Ext() + "\n" + string(golden) + "```\n"
		if !strings.Contains(string(doc), block) {
			t.Errorf("docs/FORMAT.md lacks the %v golden page as a ```%s block; copy %s into it", f, f.Ext(), "pages/testdata/golden/page."+f.Ext())
		}
	}
}
