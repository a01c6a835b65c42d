package lockfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// requireEntries fails the test unless dir holds exactly the named entries (so no temporary
// file is left behind).
func requireEntries(tb testing.TB, dir string, want ...string) {
	tb.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(tb, err)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	require.ElementsMatch(tb, want, got, "entries of %s", dir)
}

func TestWriteFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "page000001.json")
	for _, tc := range []struct {
		name string
		data string
		perm os.FileMode
		want os.FileMode
	}{
		{"create with default perm", `{"a":1}`, 0, 0o644},
		{"replace, new perm", `{"a":2}`, 0o600, 0o600},
		{"replace with empty", ``, 0o640, 0o640},
		{"replace, read-only perm", `{"a":3}`, 0o444, 0o444},
	} {
		require.NoError(t, WriteFile(path, []byte(tc.data), tc.perm), tc.name)
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, tc.data, string(got), tc.name)
		fi, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, tc.want&^umask, fi.Mode().Perm(), tc.name)
		requireEntries(t, dir, "page000001.json")
	}
}

func TestWriteFileFailsCleanly(t *testing.T) {
	t.Parallel()
	t.Run("target is a directory", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		target := filepath.Join(dir, "sub")
		require.NoError(t, os.Mkdir(target, 0o755))
		err := WriteFile(target, []byte("x"), 0)
		require.Error(t, err)
		var pe *os.LinkError
		require.ErrorAs(t, err, &pe, "the rename fails")
		requireEntries(t, dir, "sub")
		requireEntries(t, target)
	})
	t.Run("directory missing", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		err := WriteFile(filepath.Join(dir, "missing", "f"), []byte("x"), 0)
		require.ErrorIs(t, err, fs.ErrNotExist)
		requireEntries(t, dir)
	})
}

// TestWriteFileSyncFails fails the fsync of the new file. It replaces syncFile, so it does
// not run in parallel with other tests.
func TestWriteFileSyncFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	require.NoError(t, WriteFile(path, []byte("old"), 0))

	errSync := errors.New("injected fsync failure")
	syncFile = func(*os.File) error { return errSync }
	defer func() { syncFile = (*os.File).Sync }()
	err := WriteFile(path, []byte("new"), 0)
	require.ErrorIs(t, err, errSync)

	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "old", string(got), "the old file after a failed WriteFile")
	requireEntries(t, dir, "f")
}

func TestIsTempName(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f, name, err := createTemp(dir, "page000001.json.v42", 0o600)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.True(t, IsTempName(name), "IsTempName(%q)", name)
	require.True(t, IsTempName(filepath.Base(name)), "IsTempName(%q)", filepath.Base(name))
	for _, name := range []string{
		"page000001.json.v42",
		".page000001.json.v42",
		"page.tmp-0123456789abcdef",    // not hidden
		"..tmp-0123456789abcdef",       // no published name
		".p.tmp-0123456789abcde",       // short suffix
		".p.tmp-0123456789abcdefg",     // long suffix
		".p.tmp-0123456789abcdeg",      // not hex
		".p.tmp-0123456789abcdef.json", // suffix after the random part
		"",
	} {
		require.False(t, IsTempName(name), "IsTempName(%q)", name)
	}
}

func TestSyncDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, SyncDir(dir))
	file := filepath.Join(dir, "f")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	require.ErrorIs(t, SyncDir(file), syscall.ENOTDIR)
	require.ErrorIs(t, SyncDir(filepath.Join(dir, "missing")), fs.ErrNotExist)
}
