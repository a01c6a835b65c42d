package txn

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// checkItem is what buildCheckStore stores (a struct, so that XML can hold it).
type checkItem struct {
	XMLName xml.Name `json:"-" yaml:"-" xml:"item"`
	I       int      `json:"i" yaml:"i" xml:"i"`
	Pad     string   `json:"pad,omitempty" yaml:"pad,omitempty" xml:"pad,omitempty"`
}

// buildCheckStore makes a store with several log segments, namespaces created, renamed, dropped
// and re-created, pages inserted, updated and deleted, then checkpoints it and closes it.
func buildCheckStore(tb testing.TB, dir string, f pages.Format) {
	tb.Helper()
	ctx := context.Background()
	db, err := Open(ctx, dir, Config{Format: f, SegmentBytes: 1024, OneObjectPerPage: true})
	require.NoError(tb, err)
	defer func() { require.NoError(tb, db.Close()) }()
	do := func(fn func(tx *Tx) error) {
		tb.Helper()
		_, _, err := update(ctx, db, fn)
		require.NoError(tb, err)
	}
	do(func(tx *Tx) error {
		for _, ns := range []string{"app.users", "app.orders", "logs"} {
			if err := tx.CreateNamespace(ns); err != nil {
				return err
			}
		}
		return nil
	})
	for i := 0; i < 12; i++ {
		do(func(tx *Tx) error {
			for _, ns := range []string{"app.users", "app.orders", "logs"} {
				if _, err := tx.Insert(ns, checkItem{I: i, Pad: strings.Repeat("x", 40)}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	do(func(tx *Tx) error {
		if _, err := tx.ReadPage("app.users", "page000001"); err != nil {
			return err
		}
		if err := tx.UpdatePage("app.users", "page000001", checkItem{I: 100}); err != nil {
			return err
		}
		if _, err := tx.ReadPage("app.users", "page000002"); err != nil {
			return err
		}
		return tx.DeletePage("app.users", "page000002")
	})
	require.NoError(tb, db.Checkpoint(ctx))
	do(func(tx *Tx) error { return tx.RenameNamespace("logs", "archive.logs") })
	do(func(tx *Tx) error { return tx.DeleteNamespace("app.orders") })
	do(func(tx *Tx) error {
		if err := tx.CreateNamespace("app.orders"); err != nil {
			return err
		}
		_, err := tx.Insert("app.orders", checkItem{I: -1})
		return err
	})
	require.NoError(tb, db.Checkpoint(ctx))
}

// copyTree copies every file and folder of src into dst (a fresh directory).
func copyTree(tb testing.TB, src, dst string) {
	tb.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, data, 0o644)
	})
	require.NoError(tb, err)
}

func mustCheck(tb testing.TB, dir string) []Problem {
	tb.Helper()
	probs, err := CheckDir(context.Background(), dir)
	require.NoError(tb, err, "CheckDir(%s)", dir)
	return probs
}

func requireNoProblems(tb testing.TB, dir string) {
	tb.Helper()
	probs := mustCheck(tb, dir)
	require.Empty(tb, probs, "CheckDir found problems in a healthy store:\n%s", problemLines(probs))
}

func problemLines(probs []Problem) string {
	var b strings.Builder
	for _, p := range probs {
		fmt.Fprintln(&b, p.String())
	}
	return b.String()
}

// segments lists the log segment files of dir, oldest first.
func segmentFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	segs, err := wal.ListSegments(filepath.Join(dir, pages.MetaDir, logDirName))
	require.NoError(tb, err)
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = path.Join(pages.MetaDir, logDirName, wal.SegName(s))
	}
	return out
}

// versionFiles lists the version files in folder rel of dir, sorted.
func versionFiles(tb testing.TB, dir, rel string) []string {
	tb.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, filepath.FromSlash(rel)))
	require.NoError(tb, err)
	var out []string
	for _, e := range ents {
		if _, _, _, err := pages.ParseVersionFileName(e.Name()); err == nil {
			out = append(out, path.Join(rel, e.Name()))
		}
	}
	slices.Sort(out)
	require.NotEmpty(tb, out, "no version files in %s", rel)
	return out
}

// A healthy store has no problems: at rest after a checkpoint, in every format, and with live
// handles and commits past the checkpoint.
func TestCheckClean(t *testing.T) {
	for _, f := range []pages.Format{pages.JSON, pages.YAML, pages.XML} {
		t.Run(f.String(), func(t *testing.T) {
			dir := t.TempDir()
			buildCheckStore(t, dir, f)
			requireNoProblems(t, dir)
		})
	}
	t.Run("live", func(t *testing.T) {
		dir := t.TempDir()
		buildCheckStore(t, dir, pages.JSON)
		ctx := context.Background()
		a := mustOpen(t, dir, Config{SegmentBytes: 1024})
		b := mustOpen(t, dir, Config{SegmentBytes: 1024})
		for i := 0; i < 5; i++ {
			_, _, err := update(ctx, a, func(tx *Tx) error {
				if i == 0 {
					if err := tx.CreateNamespace("fresh.ns"); err != nil {
						return err
					}
				}
				_, err := tx.Insert("fresh.ns", i)
				return err
			})
			require.NoError(t, err)
		}
		tx, err := b.Begin(ctx, false) // an open snapshot in another handle
		require.NoError(t, err)
		defer func() { _ = tx.Rollback() }()
		requireNoProblems(t, dir)
		probs, err := a.Check(ctx)
		require.NoError(t, err)
		require.Empty(t, probs, "%s", problemLines(probs))
	})
	t.Run("torn tail past state", func(t *testing.T) {
		// Bytes past state's position are a committer's business (it may be mid-write): legal.
		dir := t.TempDir()
		buildCheckStore(t, dir, pages.JSON)
		st := readStateOf(t, dir)
		seg := filepath.Join(dir, pages.MetaDir, logDirName, wal.SegName(st.Pos.Seg))
		f, err := os.OpenFile(seg, os.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = f.WriteAt([]byte(`{"tsn":99,"ops":[],"crc":"0`), st.Pos.Off)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		requireNoProblems(t, dir)
	})
}

func readStateOf(tb testing.TB, dir string) state {
	tb.Helper()
	sf, err := wal.OpenStateFile(filepath.Join(dir, pages.MetaDir, stateName), 0, true)
	require.NoError(tb, err)
	defer sf.Close()
	st, err := sf.Read()
	require.NoError(tb, err)
	return st
}

// Each planted damage gives exactly the expected problem, matching the right sentinel.
func TestCheckFindsPlantedDamage(t *testing.T) {
	golden := t.TempDir()
	buildCheckStore(t, golden, pages.JSON)
	requireNoProblems(t, golden)
	segs := segmentFiles(t, golden)
	require.GreaterOrEqual(t, len(segs), 3, "the store needs several segments")
	users := versionFiles(t, golden, "app/users")

	write := func(t *testing.T, dir, rel string, data []byte) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, data, 0o644))
	}
	cases := []struct {
		name  string
		plant func(t *testing.T, dir string) string // returns the path of the expected problem
		want  error
	}{
		{"flipped bit in a committed record", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, filepath.FromSlash(segs[0]))
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			hdrEnd := bytes.IndexByte(data, '\n')
			recEnd := hdrEnd + 1 + bytes.IndexByte(data[hdrEnd+1:], '\n')
			data[(hdrEnd+recEnd)/2] ^= 0x01
			require.NoError(t, os.WriteFile(p, data, 0o644))
			return segs[0]
		}, pages.ErrCorrupt},
		{"missing segment in the middle", func(t *testing.T, dir string) string {
			require.NoError(t, os.Remove(filepath.Join(dir, filepath.FromSlash(segs[1]))))
			return segs[2]
		}, pages.ErrCorrupt},
		{"page file the checkpoint needs deleted", func(t *testing.T, dir string) string {
			require.NoError(t, os.Remove(filepath.Join(dir, filepath.FromSlash(users[0]))))
			return users[0]
		}, pages.ErrCorrupt},
		{"superseded version file not listed for cleanup", func(t *testing.T, dir string) string {
			for _, u := range users {
				id, f, tsn, err := pages.ParseVersionFileName(path.Base(u))
				require.NoError(t, err)
				old := path.Join(path.Dir(u), pages.VersionFileName(id, f, tsn-1))
				if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(old))); tsn > 1 && os.IsNotExist(err) {
					data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(u)))
					require.NoError(t, err)
					write(t, dir, old, data) // an older version a lost pending entry would leave forever
					return old
				}
			}
			t.Fatal("no page file to plant an older version beside")
			return ""
		}, ErrLeftover},
		{"page file with garbage", func(t *testing.T, dir string) string {
			write(t, dir, users[1], []byte("[\n  {\"i\": 1,\n"))
			return users[1]
		}, pages.ErrCorrupt},
		{"stray file in a namespace folder", func(t *testing.T, dir string) string {
			write(t, dir, "app/users/notes.txt", []byte("hello\n"))
			return "app/users/notes.txt"
		}, ErrUnexpectedFile},
		{"version file of another format", func(t *testing.T, dir string) string {
			write(t, dir, "app/users/page000001.yaml.v3", []byte("# empty page\n"))
			return "app/users/page000001.yaml.v3"
		}, ErrUnexpectedFile},
		{"stray folder", func(t *testing.T, dir string) string {
			write(t, dir, "junk/notes.txt", []byte("hello\n"))
			return "junk"
		}, ErrUnexpectedFile},
		{"page files in a folder no catalog names", func(t *testing.T, dir string) string {
			// What a checkpoint that died between writing or linking page files into a folder
			// and publishing the catalog naming it leaves (a cut can keep them): the next
			// cleanup's sweep removes them.
			write(t, dir, "junk/page000001.json.v1", []byte("[]\n"))
			return "junk"
		}, ErrLeftover},
		{"empty stray namespace folder inside a namespace folder", func(t *testing.T, dir string) string {
			// What a cleanup whose rmdir failed (or a cut undid) leaves: the next cleanup removes it.
			require.NoError(t, os.Mkdir(filepath.Join(dir, "app", "users", "Sub"), 0o755))
			return "app/users/Sub"
		}, ErrLeftover},
		{"stray folder txtdb never makes", func(t *testing.T, dir string) string {
			require.NoError(t, os.Mkdir(filepath.Join(dir, "app", "users", "a.b"), 0o755)) // a dot: no namespace segment
			return "app/users/a.b"
		}, ErrUnexpectedFile},
		{"version file in a folder no incarnation owns", func(t *testing.T, dir string) string {
			write(t, dir, "archive/page000001.json.v1", []byte("[]\n"))
			return "archive/page000001.json.v1"
		}, ErrUnexpectedFile},
		{"leftover temporary page file", func(t *testing.T, dir string) string {
			rel := "app/users/.page000001.json.v7.ABCDEFGHIJKLMNOP.tmp"
			write(t, dir, rel, []byte("[\n"))
			return rel
		}, ErrLeftover},
		{"dead process's registry file", func(t *testing.T, dir string) string {
			rel := path.Join(pages.MetaDir, procsDirName, uuid.NewString()+procSuffix)
			e := regEntry{seq: 0, pid: 12345, start: time.Now().UnixNano(), floor: 3}
			write(t, dir, rel, append(e.encode(), bytes.Repeat([]byte{' '}, procSlotSize)...))
			return rel
		}, ErrLeftover},
		{"dead process's registry temp file", func(t *testing.T, dir string) string {
			rel := path.Join(pages.MetaDir, procsDirName, "."+uuid.NewString()+procTemp)
			write(t, dir, rel, nil)
			return rel
		}, ErrLeftover},
		{"leftover temporary checkpoint file", func(t *testing.T, dir string) string {
			rel := path.Join(pages.MetaDir, ".checkpoint.tmp-0123456789abcdef")
			write(t, dir, rel, []byte("{"))
			return rel
		}, ErrLeftover},
		{"stray file in the metadata folder", func(t *testing.T, dir string) string {
			rel := path.Join(pages.MetaDir, "notes")
			write(t, dir, rel, nil)
			return rel
		}, ErrUnexpectedFile},
		{"stray file in the log folder", func(t *testing.T, dir string) string {
			rel := path.Join(pages.MetaDir, logDirName, "7.log")
			write(t, dir, rel, nil)
			return rel
		}, ErrUnexpectedFile},
		{"stray file at the top", func(t *testing.T, dir string) string {
			write(t, dir, "README", nil)
			return "README"
		}, ErrUnexpectedFile},
		{"state with no valid slot", func(t *testing.T, dir string) string {
			rel := path.Join(pages.MetaDir, stateName)
			write(t, dir, rel, bytes.Repeat([]byte("x"), 2*wal.StateSlotSize))
			return rel
		}, pages.ErrCorrupt},
		{"checkpoint file that does not decode", func(t *testing.T, dir string) string {
			rel := path.Join(pages.MetaDir, checkpointName)
			write(t, dir, rel, []byte(`{"txtdb_checkpoint":1,"tsn":`))
			return rel
		}, pages.ErrCorrupt},
		{"checkpoint of another layout version", func(t *testing.T, dir string) string {
			rel := path.Join(pages.MetaDir, checkpointName)
			data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
			require.NoError(t, err)
			write(t, dir, rel, bytes.Replace(data, fmt.Appendf(nil, `"txtdb_checkpoint": %d`, layoutVersion), fmt.Appendf(nil, `"txtdb_checkpoint": %d`, layoutVersion+1), 1))
			return rel
		}, ErrVersion},
		{"txtdb.json of another layout version", func(t *testing.T, dir string) string {
			data, err := os.ReadFile(filepath.Join(dir, configName))
			require.NoError(t, err)
			write(t, dir, configName, bytes.Replace(data, fmt.Appendf(nil, `"txtdb": %d`, layoutVersion), fmt.Appendf(nil, `"txtdb": %d`, layoutVersion+1), 1))
			return configName
		}, ErrVersion},
		{"txtdb.json missing", func(t *testing.T, dir string) string {
			require.NoError(t, os.Remove(filepath.Join(dir, configName)))
			return configName
		}, pages.ErrCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, golden, dir)
			want := tc.plant(t, dir)
			probs := mustCheck(t, dir)
			require.Len(t, probs, 1, "CheckDir problems:\n%s", problemLines(probs))
			p := probs[0]
			t.Logf("%s", p)
			require.Equal(t, want, p.Path, "problem: %s", p)
			require.ErrorIs(t, p, tc.want, "problem: %s", p)
			require.ErrorIs(t, p.Err, tc.want, "problem: %s", p)
			for _, other := range []error{pages.ErrCorrupt, ErrVersion, ErrUnexpectedFile, ErrLeftover} {
				if other != tc.want {
					require.NotErrorIs(t, p, other, "problem: %s", p)
				}
			}
			require.Equal(t, want+": "+p.Err.Error(), p.String())
			require.NotContains(t, p.String(), "\n")
		})
	}
}

// Check changes nothing, not even in a damaged store, and never panics on garbage: every file
// of a store is in turn truncated, emptied, flipped, zeroed, replaced by random bytes, removed
// or replaced by a folder.
func TestCheckDamagedFilesNeverPanic(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	golden := t.TempDir()
	buildCheckStore(t, golden, pages.JSON)
	var files []string
	require.NoError(t, filepath.WalkDir(golden, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(golden, p)
			files = append(files, rel)
		}
		return err
	}))
	damages := []struct {
		name string
		do   func(data []byte) []byte
	}{
		{"truncate", func(d []byte) []byte { return d[:rng.IntN(len(d)+1)] }},
		{"empty", func([]byte) []byte { return nil }},
		{"flip", func(d []byte) []byte {
			d = bytes.Clone(d)
			for range 1 + rng.IntN(4) {
				if len(d) > 0 {
					d[rng.IntN(len(d))] ^= byte(1 << rng.IntN(8))
				}
			}
			return d
		}},
		{"random", func(d []byte) []byte {
			b := make([]byte, rng.IntN(2*len(d)+16))
			for i := range b {
				b[i] = byte(rng.UintN(256))
			}
			return b
		}},
		{"zeros", func(d []byte) []byte { return make([]byte, len(d)) }},
		{"remove", nil},
		{"folder", nil}, // the file becomes an empty folder
	}
	n := 0
	for _, rel := range files {
		for _, dmg := range damages {
			if testing.Short() && rng.IntN(3) != 0 {
				continue
			}
			n++
			dir := t.TempDir()
			copyTree(t, golden, dir)
			p := filepath.Join(dir, rel)
			if dmg.do == nil {
				require.NoError(t, os.Remove(p))
				if dmg.name == "folder" {
					require.NoError(t, os.Mkdir(p, 0o755))
				}
			} else {
				data, err := os.ReadFile(p)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(p, dmg.do(data), 0o644))
			}
			before := snapshotTree(t, dir)
			probs, err := CheckDir(context.Background(), dir)
			require.NoError(t, err, "%s %s", dmg.name, rel)
			for _, pr := range probs {
				require.Error(t, pr.Err, "%s %s: problem without error", dmg.name, rel)
			}
			require.Equal(t, before, snapshotTree(t, dir), "CheckDir changed the directory (%s %s)", dmg.name, rel)
		}
	}
	t.Logf("%d damaged stores checked", n)
}

// snapshotTree maps every file and folder under dir (relative path) to its contents ("/" for
// folders).
func snapshotTree(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	out := map[string]string{}
	require.NoError(tb, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			out[rel] = "/"
			return nil
		}
		data, err := os.ReadFile(p)
		out[rel] = string(data)
		return err
	}))
	return out
}

// A directory that does not exist is an error, not a problem; an empty one is not a store.
func TestCheckDirErrors(t *testing.T) {
	_, err := CheckDir(context.Background(), filepath.Join(t.TempDir(), "nope"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	probs := mustCheck(t, t.TempDir())
	require.Len(t, probs, 1)
	require.ErrorIs(t, probs[0], pages.ErrCorrupt)
	require.Equal(t, configName, probs[0].Path)
	var p error = probs[0]
	require.True(t, errors.Is(p, pages.ErrCorrupt))
}

// Garbage in the files Check reads is a problem or nothing, never a panic.
func FuzzCheck(f *testing.F) {
	golden := f.TempDir()
	buildCheckStore(f, golden, pages.JSON)
	targets := []string{
		filepath.Join(pages.MetaDir, stateName),
		filepath.Join(pages.MetaDir, checkpointName),
		filepath.Join(pages.MetaDir, horizonName),
		filepath.Join(pages.MetaDir, logDirName, wal.SegName(1)),
		configName,
	}
	for i, t := range targets {
		data, err := os.ReadFile(filepath.Join(golden, t))
		if err == nil {
			f.Add(uint8(i), data)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		dir := t.TempDir()
		copyTree(t, golden, dir)
		require.NoError(t, os.WriteFile(filepath.Join(dir, targets[int(which)%len(targets)]), data, 0o644))
		_, err := CheckDir(context.Background(), dir)
		require.NoError(t, err)
	})
}
