package txn

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Regression test for a defect that was found and fixed; the comment tells the scenario and what
// went wrong before the fix, and the test requires the correct outcome.
// Crash safety, files of a checkpoint that did not publish: a checkpointer writes the page files
// of a namespace created since the last checkpoint, then dies (here: the catalog write fails,
// as after a SIGKILL at checkpoint-before). Before the next checkpoint the namespace is dropped
// and its name re-created with fewer pages. The next checkpoint never lists the dead
// incarnation's files (it has no folder in any catalog), gives the new incarnation the same
// folder, and a process that opens from the catalog sees the dead incarnation's page000002 as a
// page of the new namespace. The writer's own view (from the log) does not: two processes read
// different data at the same TSN.
func TestReviewUnpublishedCheckpointFilesBecomeGhostPages(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := Config{OneObjectPerPage: true, CheckpointEvery: time.Hour}
	w := failedFirstCheckpoint(t, dir, cfg, "old1", "old2") // a/page00000{1,2}.json.v1 written, catalog not

	_, _, err := update(ctx, w, func(tx *Tx) error { return tx.DeleteNamespace("a") })
	require.NoError(t, err)
	_, _, err = update(ctx, w, func(tx *Tx) error {
		if err := tx.CreateNamespace("a"); err != nil {
			return err
		}
		_, err := tx.Insert("a", "new")
		return err
	})
	require.NoError(t, err)
	require.NoError(t, w.Checkpoint(ctx))

	want := map[string]map[string][]string{"a": {"page000001": {`"new"`}}}
	require.Equal(t, want, allPages(t, w), "the writer's view")
	fresh := mustOpen(t, dir, cfg)
	require.Equal(t, want, allPages(t, fresh), "a process opening from the catalog sees the dead incarnation's page")
}

// Regression test for a defect that was found and fixed; the comment tells the scenario and what
// went wrong before the fix, and the test requires the correct outcome.
// The same leftover files, without any drop: a namespace's first checkpoint writes its page
// files and fails before the catalog is published (a full disk on the catalog write, or a
// SIGKILL at checkpoint-before). Then page000001 is deleted. The next checkpoint gives the
// namespace its folder but lists the folder only from the second changed page on, so the
// leftover page000001.json.v1 is not marked superseded: every process that opens from the catalog sees
// the deleted page again.
func TestReviewUnpublishedCheckpointFilesResurrectDeletedPage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := Config{OneObjectPerPage: true, CheckpointEvery: time.Hour}
	w := failedFirstCheckpoint(t, dir, cfg, "one", "two")

	_, _, err := update(ctx, w, func(tx *Tx) error {
		if _, err := tx.ReadPage("a", "page000001"); err != nil {
			return err
		}
		return tx.DeletePage("a", "page000001")
	})
	require.NoError(t, err)
	require.NoError(t, w.Checkpoint(ctx))

	want := map[string]map[string][]string{"a": {"page000002": {`"two"`}}}
	require.Equal(t, want, allPages(t, w), "the writer's view")
	fresh := mustOpen(t, dir, cfg)
	require.Equal(t, want, allPages(t, fresh), "a process opening from the catalog sees the deleted page")
}

// failedFirstCheckpoint opens a handle on dir, creates namespace "a" with one page per object,
// and runs a checkpoint whose catalog write fails: the page files are written, the catalog is not.
func failedFirstCheckpoint(t *testing.T, dir string, cfg Config, objs ...string) *DB {
	t.Helper()
	ctx := context.Background()
	w := mustOpen(t, dir, cfg)
	_, _, err := update(ctx, w, func(tx *Tx) error {
		if err := tx.CreateNamespace("a"); err != nil {
			return err
		}
		for _, s := range objs {
			if _, err := tx.Insert("a", s); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	armFaults(t, func(p faultPoint) error {
		if p == faultCheckpointWrite {
			return errInjected
		}
		return nil
	}, nil, nil)
	require.ErrorIs(t, w.Checkpoint(ctx), errInjected)
	faults.inject.Store(nil)
	return w
}
