package bench

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/table"
)

// records is the txtdb table of the table workloads, and byEmail its unique index.
var (
	records = table.New(recordsNS, func(r *record) int64 { return r.ID })
	byEmail = table.Unique(records, "email", func(r *record) string { return r.Email })
)

// fillBatch is how many records one transaction of a fill inserts.
const fillBatch = 1000

// fillTxtdb creates the records table in db and inserts records[from:to) of the pre-filled ones,
// fillBatch to a transaction.
func fillTxtdb(ctx context.Context, db *txtdb.DB, from, to int) error {
	if from == 0 {
		err := db.Update(ctx, records.Create)
		if err != nil && !errors.Is(err, txtdb.ErrNamespaceExists) { // created by a fill cut short
			return err
		}
	}
	for i := from; i < to; i += fillBatch {
		err := db.Update(ctx, func(tx *txtdb.Tx) error {
			for j := i; j < min(i+fillBatch, to); j++ {
				r := newRecord(fillKey(j))
				if err := records.Insert(tx, &r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("fill records %d to %d: %w", i, min(i+fillBatch, to), err)
		}
	}
	return nil
}

func (txtdbEngine) setupTable(tb testing.TB, dir string, fill int) {
	tb.Helper()
	db, err := txtdb.Open(dir, &txtdb.Options{NoSync: true})
	require.NoError(tb, err)
	require.NoError(tb, fillTxtdb(context.Background(), db, 0, fill))
	require.NoError(tb, db.Close())
}

func (txtdbEngine) records(tb testing.TB, dir string) (seen map[int64]int, bad []string, problem string) {
	tb.Helper()
	ctx := context.Background()
	db, err := txtdb.Open(dir, nil)
	require.NoError(tb, err)
	defer func() { require.NoError(tb, db.Close()) }()
	probs, err := table.Check(ctx, db)
	require.NoError(tb, err)
	if len(probs) > 0 {
		problem = fmt.Sprintf("table.Check: %d problems (first: %v)", len(probs), probs[0])
	}
	err = db.View(ctx, func(tx *txtdb.Tx) error {
		seen, bad = map[int64]int{}, nil
		rows := records.Scan(tx)
		for k, r := range rows.All() {
			seen[k]++
			if b := r.check(k); b != "" {
				bad = append(bad, b)
			}
		}
		return rows.Err()
	})
	require.NoError(tb, err)
	return seen, bad, problem
}

func (s txtdbStore) insertRecord(ctx context.Context, r record) (attempts int, err error) {
	err = s.db.Update(ctx, func(tx *txtdb.Tx) error {
		attempts++ // Update runs this once per attempt
		return records.Insert(tx, &r)
	})
	return attempts, err
}

func (s txtdbStore) getRecord(ctx context.Context, id int64) (r record, err error) {
	err = s.db.View(ctx, func(tx *txtdb.Tx) error {
		p, err := records.Get(tx, id)
		if err == nil {
			r = *p
		}
		return err
	})
	return r, err
}

func (s txtdbStore) getRecordByEmail(ctx context.Context, email string) (r record, err error) {
	err = s.db.View(ctx, func(tx *txtdb.Tx) error {
		p, err := byEmail.Get(tx, email)
		if err == nil {
			r = *p
		}
		return err
	})
	return r, err
}

func (s txtdbStore) rangeRecords(ctx context.Context, lo, hi int64) (rs []record, err error) {
	err = s.db.View(ctx, func(tx *txtdb.Tx) error {
		rs = rs[:0]
		rows := records.Range(tx, lo, hi)
		for _, r := range rows.All() {
			rs = append(rs, *r)
		}
		return rows.Err()
	})
	return rs, err
}
