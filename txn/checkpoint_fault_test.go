package txn

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

// TestCheckpointFaults makes checkpoints fail, through the fault hooks (an error before a page
// file is written or before the catalog is published, every time or only some times, so that
// some page files and half-done moves are left behind; ENOSPC, as from a full disk) and through
// real permissions (a namespace folder, or .txtdb/, that cannot be written). Meanwhile the churn
// workload commits (bumping the pair and the churned page, renaming the churned namespace):
// every Checkpoint reports an error that errors.Is the cause, every commit succeeds, and a fresh
// handle reads every commit. Once the fault is gone, a checkpoint succeeds, CheckDir finds
// nothing, and after the last Close the store is at rest.
func TestCheckpointFaults(t *testing.T) {
	type tc struct {
		name string
		// arm starts the fault on the store in dir and returns the function that ends it.
		arm  func(t *testing.T, dir string) (disarm func())
		want error
		// every: every checkpoint fails (else some succeed, and at least two fail).
		every bool
		// perm: the fault is a real permission, which root does not feel.
		perm bool
	}
	inject := func(point faultPoint, err error, fail func(hit int64) bool) func(*testing.T, string) func() {
		return func(t *testing.T, _ string) func() {
			var hits atomic.Int64
			armFaults(t, func(p faultPoint) error {
				if p == point && fail(hits.Add(1)) {
					return err
				}
				return nil
			}, nil, nil)
			return func() { armFaults(t, nil, nil, nil) }
		}
	}
	always := func(int64) bool { return true }
	readOnly := func(rel string) func(*testing.T, string) func() {
		return func(t *testing.T, dir string) func() {
			p := filepath.Join(dir, filepath.FromSlash(rel))
			require.NoError(t, os.Chmod(p, 0o500))
			undo := func() { require.NoError(t, os.Chmod(p, 0o755)) }
			t.Cleanup(func() { _ = os.Chmod(p, 0o755) }) // so the temp dir can be removed
			return undo
		}
	}
	cases := []tc{
		{name: "page-write", arm: inject(faultPageWrite, errInjected, always), want: errInjected, every: true},
		// One page file in every other checkpoint is written before the fault: files newer than
		// the catalog pile up.
		{name: "page-write-partial", arm: inject(faultPageWrite, errInjected, func(n int64) bool { return n%3 != 1 }), want: errInjected, every: true},
		{name: "enospc", arm: inject(faultPageWrite, syscall.ENOSPC, always), want: syscall.ENOSPC, every: true},
		{name: "catalog-write", arm: inject(faultCheckpointWrite, errInjected, always), want: errInjected, every: true},
		// Every other catalog write fails: moves stop after their journal, or after linking.
		{name: "catalog-write-alternate", arm: inject(faultCheckpointWrite, errInjected, func(n int64) bool { return n%3 == 0 }), want: errInjected},
		{name: "folder-read-only", arm: readOnly("c"), want: fs.ErrPermission, every: true, perm: true},
		{name: "meta-read-only", arm: readOnly(pages.MetaDir), want: fs.ErrPermission, every: true, perm: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.perm && os.Geteuid() == 0 {
				t.Skip("running as root, which ignores file permissions")
			}
			checkpointFault(t, c.arm, c.want, c.every)
		})
	}
}

func checkpointFault(t *testing.T, arm func(*testing.T, string) func(), want error, every bool) {
	const rounds = 6
	ctx := context.Background()
	dir := t.TempDir()
	setupChurn(t, dir, Config{})
	// No background checkpoint: only the ones this test makes.
	db := mustOpen(t, dir, Config{OneObjectPerPage: true, CheckpointEvery: time.Hour})
	var ns string
	require.NoError(t, view(ctx, db, func(tx *Tx) (err error) { ns, err = churnName(tx); return err }))
	disarm := arm(t, dir)
	var acks []int
	failed := 0
	for i := 0; i < rounds; i++ {
		var v int
		_, _, err := update(ctx, db, func(tx *Tx) (err error) { v, err = churnStep(tx, ns); return err })
		require.NoError(t, err, "commit %d while checkpoints fail", i)
		acks = append(acks, v)
		if i%2 == 1 {
			to := churnNames[0]
			if ns == to {
				to = churnNames[1]
			}
			_, _, err := update(ctx, db, func(tx *Tx) error { return tx.RenameNamespace(ns, to) })
			require.NoError(t, err, "rename %d while checkpoints fail", i)
			ns = to
		}
		err = db.Checkpoint(ctx)
		if every {
			require.Error(t, err, "checkpoint %d with the fault armed", i)
		}
		if err != nil {
			require.ErrorIs(t, err, want, "checkpoint %d", i)
			if failed++; failed == 1 {
				t.Logf("first failed checkpoint: %v", err)
			}
		}
		// Nothing committed is lost: a fresh handle (reading the files and the log) has it all.
		got, err := verifyPair(dir, 0, acks)
		require.NoError(t, err)
		require.Equal(t, v, got, "a fresh handle reads every commit")
		requireChurned(t, db, v, "a failed checkpoint")
	}
	require.GreaterOrEqual(t, failed, 2, "checkpoints that failed")
	t.Logf("%d of %d checkpoints failed", failed, rounds)
	disarm()
	require.NoError(t, db.Checkpoint(ctx), "checkpoint once the fault is gone")
	require.Zero(t, db.Stats().CheckpointLag)
	requireNoProblems(t, dir)
	requireChurned(t, db, acks[len(acks)-1], "the fault")
	require.NoError(t, db.Close())
	requireAtRest(t, dir, acks[len(acks)-1])
}
