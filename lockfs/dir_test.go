package lockfs

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMkdirAll counts the fsyncs through syncFile, so it does not run in parallel with other
// tests.
func TestMkdirAll(t *testing.T) {
	root := t.TempDir()
	var synced []string
	syncFile = func(f *os.File) error {
		synced = append(synced, f.Name())
		return f.Sync()
	}
	defer func() { syncFile = (*os.File).Sync }()

	dir := filepath.Join(root, "a", "b", "c")
	require.NoError(t, MkdirAll(dir, 0o750))
	require.Equal(t, []string{root, filepath.Join(root, "a"), filepath.Join(root, "a", "b")}, synced,
		"directories fsynced: each parent of a created directory, top down")
	for _, p := range []string{filepath.Join(root, "a"), filepath.Join(root, "a", "b"), dir} {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		require.True(t, fi.IsDir(), p)
		require.Equal(t, os.FileMode(0o750)&^umask, fi.Mode().Perm(), p)
	}

	synced = nil
	require.NoError(t, MkdirAll(dir, 0o750), "MkdirAll of an existing directory")
	require.Empty(t, synced, "fsyncs for an existing directory")

	require.NoError(t, MkdirAll(filepath.Join(dir, "d"), 0))
	fi, err := os.Stat(filepath.Join(dir, "d"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o755)&^umask, fi.Mode().Perm(), "perm 0")

	file := filepath.Join(root, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	require.ErrorIs(t, MkdirAll(file, 0), syscall.ENOTDIR)
	require.ErrorIs(t, MkdirAll(filepath.Join(file, "x", "y"), 0), syscall.ENOTDIR)
}
