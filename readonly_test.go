package txtdb

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// treeOf maps every file and folder under dir (.txtdb/ included) to its contents ("/" for a
// folder).
func treeOf(tb testing.TB, dir string) map[string]string {
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

// Options.ReadOnly: the handle reads, reports Stats and checks, refuses writes with
// ErrReadOnlyDB, and leaves every byte and name in the directory as it was.
func TestReadOnlyOptionWritesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	seedPages(t, dir, "app.users", 1, 2, 3)
	seedPages(t, dir, "app.orders", 7)
	before := treeOf(t, dir)

	db, err := Open(dir, &Options{ReadOnly: true})
	require.NoError(t, err)
	require.NoError(t, db.View(ctx, func(tx *Tx) error {
		require.Equal(t, []int{1, 2, 3}, nsValues(t, tx, "app.users"))
		require.Equal(t, []int{7}, nsValues(t, tx, "app.orders"))
		return nil
	}))
	_, err = db.Begin(ctx, true)
	require.ErrorIs(t, err, ErrReadOnlyDB)
	err = db.Update(ctx, func(tx *Tx) error { return tx.CreateNamespace("x") })
	require.ErrorIs(t, err, ErrReadOnlyDB)
	s := db.Stats()
	require.Equal(t, s.CheckpointTSN, s.CommittedTSN, "the last writer's Close checkpointed")
	require.Equal(t, 4, s.PageFiles)
	require.Zero(t, s.LiveProcesses, "a read-only handle does not register")
	probs, err := db.Check(ctx)
	require.NoError(t, err)
	require.Empty(t, probs)
	require.NoError(t, db.Close())
	require.Equal(t, before, treeOf(t, dir), "a read-only handle changed the directory")

	_, err = Open(filepath.Join(t.TempDir(), "none"), &Options{ReadOnly: true})
	require.ErrorIs(t, err, fs.ErrNotExist, "a read-only handle never creates a store")
}

// The root package's Check and its sentinels are the engine's: a clean store has no problem,
// planted damage matches ErrCorrupt, ErrUnexpectedFile, ErrLeftover and ErrVersion.
func TestCheckDirSentinels(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ids := seedPages(t, dir, "app.users", 1, 2)
	probs, err := CheckDir(ctx, dir)
	require.NoError(t, err)
	require.Empty(t, probs)

	versions, err := filepath.Glob(filepath.Join(dir, "app", "users", ids[0]+".json.v*"))
	require.NoError(t, err)
	require.Len(t, versions, 1)
	require.NoError(t, os.WriteFile(versions[0], []byte("[\n  {"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app", "users", "stray"), nil, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app", "users", "."+ids[1]+".json.v9.X.tmp"), nil, 0o644))
	probs, err = CheckDir(ctx, dir)
	require.NoError(t, err)
	require.Len(t, probs, 3, "%v", probs)
	want := map[string]error{
		"app/users/" + ids[0] + ".json.v1":        ErrCorrupt,
		"app/users/stray":                         ErrUnexpectedFile,
		"app/users/." + ids[1] + ".json.v9.X.tmp": ErrLeftover,
	}
	for _, p := range probs {
		require.Contains(t, want, p.Path, "problem %s", p)
		require.ErrorIs(t, p, want[p.Path], "problem %s", p)
	}

	cfg := filepath.Join(dir, "txtdb.json")
	data, err := os.ReadFile(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfg, []byte(`{"txtdb": 9, "format": "json", "page_size": 8192}`), 0o644))
	probs, err = CheckDir(ctx, dir)
	require.NoError(t, err)
	require.Len(t, probs, 1)
	require.ErrorIs(t, probs[0], ErrVersion)
	_, err = Open(dir, nil)
	require.ErrorIs(t, err, ErrVersion)
	require.NoError(t, os.WriteFile(cfg, data, 0o644))
}
