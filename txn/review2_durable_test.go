package txn

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

const review2HelperEnv = "REVIEW2_HELPER_DIR"

// TestReview2HelperRename is a child process: it renames namespace x to y and checkpoints (the
// checkpoint moves x's files through the attic into y).
func TestReview2HelperRename(t *testing.T) {
	dir := os.Getenv(review2HelperEnv)
	if dir == "" {
		t.Skip("helper process only")
	}
	ctx := context.Background()
	db, err := Open(ctx, dir, Config{CheckpointEvery: time.Hour})
	require.NoError(t, err)
	_, _, err = update(ctx, db, func(tx *Tx) error { return tx.RenameNamespace("x", "y") })
	require.NoError(t, err)
	require.NoError(t, db.Checkpoint(ctx))
	require.NoError(t, db.Close())
}

// Regression test for a defect that was found and fixed; the comment tells the scenario and what
// went wrong before the fix, and the test requires the correct outcome.
// Crash safety of moves: finishMove creates the target folder with os.Root.MkdirAll, which does
// not fsync the parent of the folders it creates (lockfs.MkdirAll and pages' mkdirs do, "so the
// new directories are durable"). The move then links the files in, fsyncs only the target
// folder, publishes the catalog naming it and unlinks the old names (fsyncing the old folder).
// After a power cut the old names can be gone while the new folder's own entry (in .txtdb/attic,
// itself new, and in the data directory for "y") was never made durable: the namespace's files
// are lost. Traced with strace: every folder a move creates must have its parent fsynced before
// the first old name is unlinked.
func TestReview2MoveTargetFolderParentNotFsynced(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace not installed")
	}
	ctx := context.Background()
	dir := t.TempDir()
	db := mustOpen(t, dir, Config{CheckpointEvery: time.Hour})
	_, _, err = update(ctx, db, func(tx *Tx) error {
		if err := tx.CreateNamespace("x"); err != nil {
			return err
		}
		_, err := tx.Insert("x", "keep me")
		return err
	})
	require.NoError(t, err)
	require.NoError(t, db.Checkpoint(ctx))
	require.NoError(t, db.Close())

	out := filepath.Join(t.TempDir(), "trace")
	cmd := exec.Command(strace, "-f", "-qq", "-y", "-o", out, "-e", "trace=mkdir,mkdirat,fsync,fdatasync,unlink,unlinkat,syncfs",
		os.Args[0], "-test.run=^TestReview2HelperRename$", "-test.count=1")
	cmd.Env = append(os.Environ(), review2HelperEnv+"="+dir)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	data, err := os.ReadFile(out)
	require.NoError(t, err)

	real, err := filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	mkdirRe := regexp.MustCompile(`mkdirat\((?:AT_FDCWD|\d+<([^>]*)>), "([^"]*)"`)
	fsyncRe := regexp.MustCompile(`f(?:data)?sync\(\d+<([^>]*)>\)\s*=\s*0`)
	unlinkRe := regexp.MustCompile(`unlinkat\((?:AT_FDCWD|\d+<([^>]*)>), "([^"]*)"`)
	needParent := map[string]string{} // created folder -> its parent, until the parent is fsynced
	problems := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		if m := mkdirRe.FindStringSubmatch(l); m != nil && strings.Contains(l, "= 0") {
			p := m[2]
			if !filepath.IsAbs(p) {
				p = filepath.Join(m[1], p)
			}
			if strings.HasPrefix(p, real) {
				needParent[p] = filepath.Dir(p)
			}
			continue
		}
		if m := fsyncRe.FindStringSubmatch(l); m != nil {
			for d, parent := range needParent {
				if parent == m[1] {
					delete(needParent, d)
				}
			}
			continue
		}
		if m := unlinkRe.FindStringSubmatch(l); m != nil && strings.Contains(l, "= 0") {
			p := m[2]
			if !filepath.IsAbs(p) {
				p = filepath.Join(m[1], p)
			}
			if _, _, _, err := pages.ParseVersionFileName(filepath.Base(p)); err == nil {
				for d := range needParent {
					problems[fmt.Sprintf("%s unlinked while the new folder %s is not durable in its parent", strings.TrimPrefix(p, real), strings.TrimPrefix(d, real))] = true
				}
			}
		}
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, real) && !strings.Contains(l, "/log/") && !strings.Contains(l, "procs") {
			lines = append(lines, strings.ReplaceAll(l, real, "<dir>"))
		}
	}
	require.Empty(t, problems, "trace:\n%s", strings.Join(lines, "\n"))
}

// TestReview2HelperCheckpoint is a child process: it runs one checkpoint and reports its error.
// Another handle keeps the store open, so its Close does not checkpoint again.
func TestReview2HelperCheckpoint(t *testing.T) {
	dir := os.Getenv(review2HelperEnv)
	if dir == "" {
		t.Skip("helper process only")
	}
	ctx := context.Background()
	db, err := Open(ctx, dir, Config{CheckpointEvery: time.Hour})
	require.NoError(t, err)
	fmt.Println("checkpoint:", db.Checkpoint(ctx))
	require.NoError(t, db.Close())
}

// checkpointWithFailedUnlink runs a checkpoint in a child whose first unlink in folder sub of dir
// fails with EIO (strace), and returns what the child printed.
func checkpointWithFailedUnlink(t *testing.T, strace, dir, sub string) string {
	t.Helper()
	cmd := exec.Command(strace, "-f", "-qq", "-o", "/dev/null", "-P", filepath.Join(dir, sub),
		"-e", "trace=unlinkat", "-e", "inject=unlinkat:error=EIO:when=1",
		os.Args[0], "-test.run=^TestReview2HelperCheckpoint$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), review2HelperEnv+"="+dir)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	return string(b)
}

// Regression test for a defect that was found and fixed; the comment tells the scenario and what
// went wrong before the fix, and the test requires the correct outcome.
// Journalled moves, read side: while the catalog journals a move of incarnation A into folder
// "y" (to), every opener lists both A's folder and "y" and takes the newest file per page. finishMove clears "y" of leftovers before linking
// (the fix of the first review), but only when it runs: if that clearing fails (here one EIO on
// unlink, injected with strace) the journal stays published with the leftovers in place until
// some later checkpoint succeeds. The leftovers here are the files of incarnation C, which owned
// "y" before it was renamed to "z" and whose move out of "y" could not unlink its old names (a
// first EIO). A fresh process then reads C's page as A's page000001 and sees C's page000002 as
// a page of y that never existed.
func TestReview2JournalledMoveTargetLeftoversAreRead(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace not installed")
	}
	ctx := context.Background()
	dir := t.TempDir()
	cfg := Config{OneObjectPerPage: true, CheckpointEvery: time.Hour}
	db := mustOpen(t, dir, cfg) // stays open: the children are never the last handle
	_, _, err = update(ctx, db, func(tx *Tx) error {
		if err := tx.CreateNamespace("x"); err != nil {
			return err
		}
		_, err := tx.Insert("x", "a's page")
		return err
	})
	require.NoError(t, err)
	_, _, err = update(ctx, db, func(tx *Tx) error {
		if err := tx.CreateNamespace("y"); err != nil {
			return err
		}
		for _, s := range []string{"c's page 1", "c's page 2"} {
			if _, err := tx.Insert("y", s); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, db.Checkpoint(ctx)) // x/page000001.v2 (A), y/page00000{1,2}.v3 (C)

	_, _, err = update(ctx, db, func(tx *Tx) error { return tx.RenameNamespace("y", "z") })
	require.NoError(t, err)
	out := checkpointWithFailedUnlink(t, strace, dir, "y") // C moves to the attic; its old names stay in y
	require.Contains(t, out, "checkpoint: txtdb: checkpoint:", "the first fault made the checkpoint fail: %s", out)

	_, _, err = update(ctx, db, func(tx *Tx) error { return tx.RenameNamespace("x", "y") })
	require.NoError(t, err)
	out = checkpointWithFailedUnlink(t, strace, dir, "y") // A's move into y journalled; clearing y fails
	require.Contains(t, out, "checkpoint: txtdb: checkpoint:", "the second fault made the checkpoint fail: %s", out)

	r := mustOpen(t, dir, Config{ReadOnly: true})
	require.NoError(t, view(ctx, r, func(tx *Tx) error {
		m, err := tx.Match("y", "*")
		require.NoError(t, err)
		got := map[string]string{}
		for id, objs := range m {
			var s string
			require.NoError(t, objs[0].Decode(&s))
			got[id] = s
		}
		require.Equal(t, map[string]string{"page000001": "a's page"}, got, "namespace y at snapshot %d", tx.Snapshot())
		return nil
	}))
}
