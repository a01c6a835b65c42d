package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/wal"
)

// newStore makes a closed store in a temporary directory with namespace "app.users" holding
// two objects.
func newStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	db, err := txtdb.Open(dir, &txtdb.Options{OneObjectPerPage: true})
	require.NoError(t, err)
	err = db.Update(context.Background(), func(tx *txtdb.Tx) error {
		if err := tx.CreateNamespace("app.users"); err != nil {
			return err
		}
		for _, name := range []string{"ann", "bob"} {
			if _, err := tx.Insert("app.users", map[string]string{"name": name}); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, db.Close())
	return dir
}

// runCLI runs the command in-process and returns its exit code and output.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = runCommand(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// tree maps every file and folder under dir to its contents.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
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

// check: "ok" and 0 on a healthy store; one line per problem and 1 on a damaged one; 2 when it
// cannot check. It changes nothing.
func TestCheckCommand(t *testing.T) {
	dir := newStore(t)
	before := tree(t, dir)
	code, out, errOut := runCLI("check", dir)
	require.Equal(t, 0, code, "stderr: %s", errOut)
	require.Equal(t, "ok\n", out)
	require.Equal(t, before, tree(t, dir), "check changed the store")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "app", "users", "notes.txt"), []byte("x"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "junk"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "junk", "readme.txt"), []byte("hello\n"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "empty"), 0o755))
	code, out, _ = runCLI("check", dir)
	require.Equal(t, 1, code)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Equal(t, []string{
		"app/users/notes.txt: txtdb: file outside the layout: not a page version file",
		"empty: txtdb: leftover of a dead process: empty folder a failed or dead cleanup left (no namespace incarnation uses this folder)",
		"junk: txtdb: file outside the layout: no namespace incarnation uses this folder",
	}, lines)

	// A store too damaged to open is still checked.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "txtdb.json"), []byte(fmt.Sprintf(`{"txtdb": %d}`, wal.Version+1)), 0o644))
	code, out, _ = runCLI("check", dir)
	require.Equal(t, 1, code)
	require.Equal(t, fmt.Sprintf("txtdb.json: txtdb: unsupported layout version: layout %d, this build reads %d\n", wal.Version+1, wal.Version), out)

	code, _, errOut = runCLI("check", filepath.Join(t.TempDir(), "none"))
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "txtdb: ")
	code, _, errOut = runCLI("check")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "usage: txtdb check DIR")
}

// stats: a table, or every Stats field as JSON; read-only.
func TestStatsCommand(t *testing.T) {
	dir := newStore(t)
	before := tree(t, dir)
	code, out, errOut := runCLI("stats", dir)
	require.Equal(t, 0, code, "stderr: %s", errOut)
	for _, row := range []string{"committed tsn", "checkpoint tsn", "checkpoint lag", "cleanup horizon", "log", "page files", "live processes"} {
		require.Contains(t, out, row+" ")
	}
	require.Contains(t, out, "page files       2 files, ")
	for _, args := range [][]string{{"stats", "-json", dir}, {"stats", dir, "-json"}} {
		code, out, errOut = runCLI(args...)
		require.Equal(t, 0, code, "stderr: %s", errOut)
		var s txtdb.Stats
		require.NoError(t, json.Unmarshal([]byte(out), &s), out)
		require.Equal(t, txtdb.TSN(1), s.CommittedTSN)
		require.Equal(t, s.CommittedTSN, s.CheckpointTSN)
		require.Equal(t, 2, s.PageFiles)
		require.Equal(t, 1, s.LogSegments)
	}
	require.Equal(t, before, tree(t, dir), "stats changed the store")

	code, _, errOut = runCLI("stats")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "usage: txtdb stats [-json] DIR")
	code, _, _ = runCLI("stats", filepath.Join(t.TempDir(), "none"))
	require.Equal(t, 1, code)
}

// ls and cat open the store read-only: their output, and not a byte changed.
func TestLsCatReadOnly(t *testing.T) {
	dir := newStore(t)
	before := tree(t, dir)
	code, out, errOut := runCLI("ls", dir)
	require.Equal(t, 0, code, "stderr: %s", errOut)
	require.Equal(t, "app.users\n", out)
	code, out, errOut = runCLI("cat", dir, "app.users")
	require.Equal(t, 0, code, "stderr: %s", errOut)
	require.Equal(t, "== app.users/page000001 (tsn 1)\n{\"name\":\"ann\"}\n== app.users/page000002 (tsn 1)\n{\"name\":\"bob\"}\n", out)
	require.Equal(t, before, tree(t, dir), "ls or cat changed the store")

	none := filepath.Join(t.TempDir(), "none")
	code, _, _ = runCLI("ls", none)
	require.Equal(t, 1, code)
	_, err := os.Stat(none)
	require.ErrorIs(t, err, fs.ErrNotExist, "ls must not create a store")
}

// Usage: unknown commands and no command exit 2; help exits 0 and names every command.
func TestUsage(t *testing.T) {
	code, _, errOut := runCLI()
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "usage:")
	code, _, _ = runCLI("frobnicate")
	require.Equal(t, 2, code)
	code, _, errOut = runCLI("help")
	require.Equal(t, 0, code)
	for _, c := range []string{"txtdb stress", "txtdb check DIR", "txtdb stats [-json] DIR", "txtdb ls DIR", "txtdb cat DIR NS", "txtdb table [-json] [-from KEY] [-to KEY] DIR [NAME]", "txtdb get DIR NAME KEY"} {
		require.Contains(t, errOut, c)
	}
}
