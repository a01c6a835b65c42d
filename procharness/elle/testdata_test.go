package elle

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// historyFile is a fixed history under testdata/ with what Check must say
// about it: the anomaly names (Anomaly.Name) found at Level, and whether the
// history is valid at each level in Verdicts.
type historyFile struct {
	Description string         `json:"description"`
	Level       Level          `json:"level"`
	Expect      []string       `json:"expect"`
	Verdicts    map[Level]bool `json:"verdicts"`
	History     []Txn          `json:"history"`
}

func loadHistoryFile(tb testing.TB, path string) historyFile {
	tb.Helper()
	b, err := os.ReadFile(path)
	require.NoError(tb, err)
	var f historyFile
	require.NoError(tb, json.Unmarshal(b, &f), path)
	return f
}

// TestHistories proves each anomaly kind is found, with nothing else, in a
// history built to show it, and that the clean histories pass at every level.
func TestHistories(t *testing.T) {
	paths, err := filepath.Glob("testdata/*.json")
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			f := loadHistoryFile(t, path)
			res, err := Check(f.History, Options{Level: f.Level})
			require.NoError(t, err)
			got := []string{}
			for _, a := range res.Anomalies {
				if !slices.Contains(got, a.Name()) {
					got = append(got, a.Name())
				}
				seen[a.Name()] = true
			}
			want := append([]string{}, f.Expect...)
			slices.Sort(got)
			slices.Sort(want)
			require.Equal(t, want, got, "Check(%s) at %s found these kinds:\n%s", name, f.Level, res)
			require.Equal(t, len(f.Expect) == 0, res.Valid, "Check(%s).Valid at %s:\n%s", name, f.Level, res)
			if strings.HasPrefix(name, "clean-") {
				require.Empty(t, f.Expect, "a clean history expects no anomaly")
			}
			for level, valid := range f.Verdicts {
				r, err := Check(f.History, Options{Level: level})
				require.NoError(t, err)
				require.Equal(t, valid, r.Valid, "Check(%s).Valid at %s:\n%s", name, level, r)
			}
		})
	}
	// Every kind has a history of its own.
	for _, k := range Kinds() {
		require.True(t, seen[k.String()], "no history under testdata/ shows %s", k)
	}
}
