package txn

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

// TestCatchUpDecodesOnlyPagesInMemory: handle b catches up on handle a's commits (as every process
// does on the others'). A change to a page b has a version of in memory is decoded and kept (b
// reads it next from memory); a change to any other page is applied without its objects, which
// b's first read of the page loads from the log. Both kinds read the same as a wrote them: puts,
// a run of appends on top of a put, and a page created by the record.
func TestCatchUpDecodesOnlyPagesInMemory(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	cfg := Config{OneObjectPerPage: true, CheckpointEvery: time.Hour}
	a := mustOpen(t, dir, cfg)
	b := mustOpen(t, dir, cfg)
	_, _, err := update(ctx, a, func(tx *Tx) error {
		if err := tx.CreateNamespace("n"); err != nil {
			return err
		}
		for i := range 2 {
			if _, err := tx.Insert("n", i); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	const hot, cold = "page000001", "page000002"
	require.NoError(t, view(ctx, b, func(tx *Tx) error { _, err := readInt(tx, "n", hot); return err }))

	// Puts of both pages, then appends to the cold one.
	for i := range 5 {
		_, _, err = update(ctx, a, func(tx *Tx) error {
			for _, id := range []string{hot, cold} {
				if _, err := tx.ReadPage("n", id); err != nil {
					return err
				}
				if err := tx.UpdatePage("n", id, 100+i); err != nil {
					return err
				}
			}
			return nil
		})
		require.NoError(t, err)
	}
	for i := range 3 {
		_, _, err = update(ctx, a, func(tx *Tx) error { return tx.AppendPage("n", cold, fmt.Sprint("k", i), 200+i) })
		require.NoError(t, err)
	}
	var created string
	_, _, err = update(ctx, a, func(tx *Tx) error { created, err = tx.Insert("n", 300); return err })
	require.NoError(t, err)

	require.NoError(t, view(ctx, b, func(tx *Tx) error { return nil })) // b catches up
	x := b.idxp.Load()
	latest := func(id string) *version {
		n, err := pages.ParsePageID(id)
		require.NoError(t, err)
		x.mu.RLock()
		defer x.mu.RUnlock()
		nv := x.names["n"]
		return x.incs[nv[len(nv)-1].inc].pages[n].latest()
	}
	vh, vc, vn := latest(hot), latest(cold), latest(created)
	require.True(t, vh.loaded, "a change to a page in memory is decoded")
	require.False(t, vc.loaded, "a change to a page not in memory was decoded")
	require.Nil(t, vc.objs)
	require.True(t, vc.append, "the cold page's latest version is an append")
	require.False(t, vn.loaded, "a page the record created was decoded")

	require.NoError(t, view(ctx, b, func(tx *Tx) error {
		v, err := readInt(tx, "n", hot)
		require.NoError(t, err)
		require.Equal(t, 104, v)
		objs, err := tx.ReadPage("n", cold)
		require.NoError(t, err)
		var got []string
		for _, o := range objs {
			got = append(got, o.Text())
		}
		require.Equal(t, []string{"104", "200", "201", "202"}, got)
		v, err = readInt(tx, "n", created)
		require.NoError(t, err)
		require.Equal(t, 300, v)
		return nil
	}))
	require.True(t, latest(cold).loaded, "the read loaded the cold page")

	// Now in memory, the page's next change is decoded as it is caught up.
	_, _, err = update(ctx, a, func(tx *Tx) error { return tx.AppendPage("n", cold, "k9", 209) })
	require.NoError(t, err)
	require.NoError(t, view(ctx, b, func(tx *Tx) error { return nil }))
	require.True(t, latest(cold).loaded, "a change to a page read since is decoded")
}

// TestReadOnlySnapshotReadsWhatItCaughtUpAfterTrim: a read-only handle registers no floor, so
// cleanup may trim the log under its open snapshot; what its catch-up applied must stay readable
// from memory, so it decodes every change (a lazy version would need the trimmed record, and the
// page, overwritten before the checkpoint, has no file of that version). Fails with lazy
// catch-up on read-only handles: ErrSnapshotTooOld.
func TestReadOnlySnapshotReadsWhatItCaughtUpAfterTrim(t *testing.T) {
	tx := readOnlySnapshotTrimmed(t, Config{ReadOnly: true}) // default cache: nothing is evicted here
	v, err := readInt(tx, "c", "page000001")
	require.NoError(t, err, "the open read-only snapshot reads the version it caught up")
	require.Equal(t, 1, v)
}
