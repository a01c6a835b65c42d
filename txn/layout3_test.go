package txn

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// Since layout 3, as the engine writes it: every commit record names the committing handle (proc =
// DB.ID) and a commit time from the committer's clock; a reservation record carries neither;
// a put of a page the transaction created says "new", a put of an existing page does not.
func TestLogRecordsNameHandleAndTime(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir, Config{OneObjectPerPage: true})
	ctx := context.Background()
	began := time.Now().UnixNano()
	var id string
	_, _, err := update(ctx, db, func(tx *Tx) error { return tx.CreateNamespace("a") })
	require.NoError(t, err)
	_, _, err = update(ctx, db, func(tx *Tx) error { // into an existing namespace: reserves IDs
		var err error
		id, err = tx.Insert("a", map[string]int{"x": 1})
		return err
	})
	require.NoError(t, err)
	_, _, err = update(ctx, db, func(tx *Tx) error {
		if _, err := tx.ReadPage("a", id); err != nil {
			return err
		}
		return tx.UpdatePage("a", id, map[string]int{"x": 2})
	})
	require.NoError(t, err)
	ended := time.Now().UnixNano()

	st, err := db.state.Read()
	require.NoError(t, err)
	f, err := os.Open(filepath.Join(dir, pages.MetaDir, logDirName, wal.SegName(st.Pos.Seg)))
	require.NoError(t, err)
	defer f.Close()
	_, from, err := wal.ReadHeader(f, st.Pos.Seg)
	require.NoError(t, err)
	data, err := wal.ReadRange(f, from.Off, st.Pos.Off)
	require.NoError(t, err)
	recs, bad := wal.ScanRecords(pages.JSON, data, from)
	require.NoError(t, bad)
	var commits, reservations int
	var puts []bool // "new" of each put, in log order
	for _, s := range recs {
		r := s.Rec
		if r.IsReservation() {
			reservations++
			require.Zero(t, r.Time, "reservation record %+v", r)
			require.Empty(t, r.Proc, "reservation record %+v", r)
			continue
		}
		commits++
		require.Equal(t, db.ID(), r.Proc, "commit record %d", r.TSN)
		require.True(t, r.Time >= began && r.Time <= ended, "commit record %d: time %d outside [%d, %d]", r.TSN, r.Time, began, ended)
		for _, o := range r.Ops {
			if o.Kind == wal.OpPut {
				puts = append(puts, o.New)
			}
		}
	}
	require.NotEmpty(t, db.ID())
	require.Equal(t, 3, commits)
	require.Positive(t, reservations, "the insert reserved page IDs")
	require.Equal(t, []bool{true, false}, puts, "put of the inserted page, then of the existing one")
}
