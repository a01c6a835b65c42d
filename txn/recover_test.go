package txn

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

func seg1(dir string) string { return filepath.Join(dir, pages.MetaDir, logDirName, segName(1)) }

// bumpN commits n increments of the pair through a fresh handle.
func bumpN(t *testing.T, dir string, n int) {
	t.Helper()
	db := mustOpen(t, dir, Config{})
	for i := 0; i < n; i++ {
		_, _, err := update(context.Background(), db, func(tx *Tx) error { _, err := bumpPair(tx); return err })
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())
}

// A damaged record at or below state's position is ErrCorrupt, reported and never erased.
func TestCorruptCommittedRecordIsReported(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	bumpN(t, dir, 5)
	data, err := os.ReadFile(seg1(dir))
	require.NoError(t, err)
	i := bytes.Index(data, []byte(`"tsn":3,`))
	require.Positive(t, i)
	bad := bytes.Clone(data)
	bad[i+20] ^= 0x01 // a bit flip inside record 3
	require.NoError(t, os.WriteFile(seg1(dir), bad, 0o644))

	_, err = Open(context.Background(), dir, Config{})
	require.ErrorIs(t, err, pages.ErrCorrupt)
	var ce *pages.CorruptError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, seg1(dir), ce.Path)
	after, err := os.ReadFile(seg1(dir))
	require.NoError(t, err)
	require.Equal(t, bad, after, "a corrupt committed record must not be erased")
}

// Garbage past state's position (a torn write) is cut off by the next committer; everything
// committed stays.
func TestTornTailIsTruncated(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	bumpN(t, dir, 3)
	f, err := os.OpenFile(seg1(dir), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"tsn":5,"ops":[{"op":"put","ns":"c","inc":"x","pa`)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	bumpN(t, dir, 1)
	v, err := verifyPair(dir, 3, []int{4})
	require.NoError(t, err)
	require.Equal(t, 4, v)
	data, err := os.ReadFile(seg1(dir))
	require.NoError(t, err)
	require.NotContains(t, string(data), `"pa`+"\n", "torn tail removed")
}

// A state file with no readable slot is rebuilt from the log; nothing committed is lost.
func TestUnreadableStateIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	bumpN(t, dir, 4)
	statePath := filepath.Join(dir, pages.MetaDir, stateName)
	require.NoError(t, os.WriteFile(statePath, bytes.Repeat([]byte("x"), 2*stateSlotSize), 0o644))
	v, err := verifyPair(dir, 4, nil)
	require.NoError(t, err)
	require.Equal(t, 4, v)
	bumpN(t, dir, 1)
	v, err = verifyPair(dir, 5, nil)
	require.NoError(t, err)
	require.Equal(t, 5, v)
}

// A torn read of one state slot (the writer mid-pwrite) falls back to the other slot.
func TestStateTornSlotFallsBack(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	bumpN(t, dir, 2)
	sf, err := openStateFile(filepath.Join(dir, pages.MetaDir, stateName), 0o644)
	require.NoError(t, err)
	defer sf.close()
	st, err := sf.read()
	require.NoError(t, err)
	// Tear the newest slot: half new bytes, half old.
	next := st
	next.seq++
	next.tsn++
	enc := next.encode()
	_, err = sf.f.WriteAt(enc[:stateSlotSize/2], int64(next.seq%2)*stateSlotSize)
	require.NoError(t, err)
	got, err := sf.read()
	require.NoError(t, err)
	require.Equal(t, st, got, "the intact older slot wins over a torn newer one")
}
