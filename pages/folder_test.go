package pages

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A Folder creates its folder, writes version files exclusively under their final names (the
// same bytes WriteVersionIn writes), and removes files by name only.
func TestFolder(t *testing.T) {
	base := t.TempDir()
	d, err := OpenDir(base)
	require.NoError(t, err)
	defer d.Close()
	fo, err := d.OpenFolder("a/b", 0o640)
	require.NoError(t, err)
	defer fo.Close()
	require.Equal(t, "a/b", fo.Path())
	objs := []Object{mustObject(t, JSON, `{"n":1}`)}
	require.NoError(t, fo.WriteVersion("page000001", JSON, 7, objs, 0o640, false))
	require.NoError(t, d.WriteVersionIn("a/b", "page000002", JSON, 7, objs, 0o640, false))
	one, err := os.ReadFile(filepath.Join(base, "a", "b", VersionFileName("page000001", JSON, 7)))
	require.NoError(t, err)
	two, err := os.ReadFile(filepath.Join(base, "a", "b", VersionFileName("page000002", JSON, 7)))
	require.NoError(t, err)
	require.Equal(t, two, one)
	st, err := os.Stat(filepath.Join(base, "a", "b", VersionFileName("page000001", JSON, 7)))
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o640), st.Mode().Perm()&^umask(t))

	err = fo.WriteVersion("page000001", JSON, 7, objs, 0o640, false)
	require.ErrorIs(t, err, fs.ErrExist)
	require.ErrorIs(t, fo.WriteVersion("page/1", JSON, 8, objs, 0o640, false), ErrInvalidName)

	require.NoError(t, fo.Remove(VersionFileName("page000001", JSON, 7)))
	require.ErrorIs(t, fo.Remove(VersionFileName("page000001", JSON, 7)), fs.ErrNotExist)
	for _, bad := range []string{"", ".", "..", "../x", "x/y"} {
		require.ErrorIs(t, fo.Remove(bad), ErrInvalidName, bad)
	}
	_, err = d.OpenFolder("../out", 0)
	require.ErrorIs(t, err, ErrInvalidName)
	// The root refuses a symbolic link on the way in.
	require.NoError(t, os.Symlink(t.TempDir(), filepath.Join(base, "link")))
	_, err = d.OpenFolder("link", 0)
	require.Error(t, err)
}

func umask(t *testing.T) fs.FileMode {
	t.Helper()
	p := filepath.Join(t.TempDir(), "probe")
	require.NoError(t, os.WriteFile(p, nil, 0o777))
	st, err := os.Stat(p)
	require.NoError(t, err)
	return 0o777 &^ st.Mode().Perm()
}

// ReadFolder lists what fs.ReadDir lists, in the same order, with the same types, without a stat
// per entry; Info still works.
func TestReadFolder(t *testing.T) {
	base := t.TempDir()
	d, err := OpenDir(base)
	require.NoError(t, err)
	defer d.Close()
	require.NoError(t, os.MkdirAll(filepath.Join(base, "ns", "sub"), 0o755))
	for i := range 300 { // more than one getdents buffer's worth of names
		require.NoError(t, os.WriteFile(filepath.Join(base, "ns", VersionFileName(PageID(uint64(i+1)), JSON, TSN(i+1))), []byte("[]\n"), 0o644))
	}
	require.NoError(t, os.Symlink("sub", filepath.Join(base, "ns", "link")))
	for _, folder := range []string{"ns", "."} {
		got, err := d.ReadFolder(folder)
		require.NoError(t, err)
		want, err := fs.ReadDir(d.Root().FS(), folder)
		require.NoError(t, err)
		require.Len(t, got, len(want))
		for i := range want {
			require.Equal(t, want[i].Name(), got[i].Name())
			require.Equal(t, want[i].Type(), got[i].Type(), want[i].Name())
			info, err := got[i].Info()
			require.NoError(t, err)
			require.Equal(t, want[i].Type(), info.Mode().Type())
		}
	}
	_, err = d.ReadFolder("missing")
	require.ErrorIs(t, err, fs.ErrNotExist)
	_, err = d.ReadFolder("../x")
	require.ErrorIs(t, err, ErrInvalidName)
}

// Recycle moves a file to the new version's name and leaves exactly the bytes WriteVersion would
// write, in the same inode, whether the old contents were longer or shorter; it never replaces
// an existing name, and a missing old file is fs.ErrNotExist.
func TestFolderRecycle(t *testing.T) {
	base := t.TempDir()
	d, err := OpenDir(base)
	require.NoError(t, err)
	defer d.Close()
	fo, err := d.OpenFolder("ns", 0o640)
	require.NoError(t, err)
	defer fo.Close()
	long := []Object{mustObject(t, JSON, `{"text":"a long value that the next version does not have"}`), mustObject(t, JSON, `{"n":2}`)}
	short := []Object{mustObject(t, JSON, `{"n":1}`)}
	want := func(objs []Object, tsn TSN) []byte {
		t.Helper()
		require.NoError(t, fo.WriteVersion("page000009", JSON, tsn, objs, 0o640, false))
		p := filepath.Join(base, "ns", VersionFileName("page000009", JSON, tsn))
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		require.NoError(t, os.Remove(p))
		return b
	}
	require.NoError(t, fo.WriteVersion("page000001", JSON, 1, long, 0o640, false))
	name := func(tsn TSN) string { return filepath.Join(base, "ns", VersionFileName("page000001", JSON, tsn)) }
	before, err := os.Stat(name(1))
	require.NoError(t, err)
	steps := []struct {
		objs []Object
		tsn  TSN
	}{{short, 2}, {long, 3}, {short, 4}, {nil, 5}, {long, 6}}
	prev := TSN(1)
	for _, s := range steps {
		err := fo.Recycle(VersionFileName("page000001", JSON, prev), "page000001", JSON, s.tsn, s.objs, false)
		if errors.Is(err, errors.ErrUnsupported) {
			t.Skip("no rename without replacing here")
		}
		require.NoError(t, err)
		got, err := os.ReadFile(name(s.tsn))
		require.NoError(t, err)
		require.Equal(t, string(want(s.objs, s.tsn)), string(got), "version %d", s.tsn)
		_, err = os.Stat(name(prev))
		require.ErrorIs(t, err, fs.ErrNotExist)
		after, err := os.Stat(name(s.tsn))
		require.NoError(t, err)
		require.True(t, os.SameFile(before, after), "version %d is in another inode", s.tsn)
		prev = s.tsn
	}
	require.NoError(t, fo.WriteVersion("page000001", JSON, 7, short, 0o640, false))
	require.ErrorIs(t, fo.Recycle(VersionFileName("page000001", JSON, 6), "page000001", JSON, 7, long, false), fs.ErrExist)
	require.ErrorIs(t, fo.Recycle(VersionFileName("page000001", JSON, 5), "page000001", JSON, 8, long, false), fs.ErrNotExist)
}
