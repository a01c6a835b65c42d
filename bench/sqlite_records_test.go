package bench

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// The SQLite table of the table workloads: the key as its INTEGER PRIMARY KEY (the rowid), the
// e-mail address under a UNIQUE index.
const (
	sqliteRecordsSchema = "CREATE TABLE IF NOT EXISTS " + recordsNS + "(id INTEGER PRIMARY KEY, email TEXT NOT NULL, note TEXT NOT NULL)"
	sqliteRecordsIndex  = "CREATE UNIQUE INDEX IF NOT EXISTS " + recordsNS + "_email ON " + recordsNS + "(email)"
	sqliteRecordCols    = "SELECT id, email, note FROM " + recordsNS
)

// fillSQLite creates the records table in db and inserts records[from:to) of the pre-filled
// ones, fillBatch to a transaction.
func fillSQLite(ctx context.Context, db *sql.DB, from, to int) error {
	if from == 0 {
		for _, q := range []string{sqliteRecordsSchema, sqliteRecordsIndex} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
	}
	for i := from; i < to; i += fillBatch {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for j := i; j < min(i+fillBatch, to); j++ {
			r := newRecord(fillKey(j))
			if _, err := tx.ExecContext(ctx, "INSERT INTO "+recordsNS+"(id, email, note) VALUES(?, ?, ?)", r.ID, r.Email, r.Note); err != nil {
				_ = tx.Rollback()
				return fmt.Errorf("fill record %d: %w", j, err)
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

func (sqliteEngine) setupTable(tb testing.TB, dir string, fill int) {
	tb.Helper()
	db, err := sqliteOpen(dir, "NORMAL")
	require.NoError(tb, err)
	defer func() { require.NoError(tb, db.Close()) }()
	require.NoError(tb, fillSQLite(context.Background(), db, 0, fill))
}

func (sqliteEngine) records(tb testing.TB, dir string) (seen map[int64]int, bad []string, problem string) {
	tb.Helper()
	ctx := context.Background()
	db, err := sqliteOpen(dir, "FULL")
	require.NoError(tb, err)
	defer func() { require.NoError(tb, db.Close()) }()
	var integrity string
	require.NoError(tb, db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&integrity))
	if integrity != "ok" {
		problem = "integrity_check: " + integrity
	}
	// The count through the unique index, against the rows the table scan finds below.
	var viaIndex int
	require.NoError(tb, db.QueryRowContext(ctx, "SELECT count(*) FROM "+recordsNS+" INDEXED BY "+recordsNS+"_email WHERE email > ''").Scan(&viaIndex))
	rows, err := db.QueryContext(ctx, sqliteRecordCols)
	require.NoError(tb, err)
	defer func() { require.NoError(tb, rows.Close()) }()
	seen = map[int64]int{}
	n := 0
	for rows.Next() {
		var r record
		require.NoError(tb, rows.Scan(&r.ID, &r.Email, &r.Note))
		seen[r.ID]++
		n++
		if b := r.check(r.ID); b != "" {
			bad = append(bad, b)
		}
	}
	require.NoError(tb, rows.Err())
	if viaIndex != n && problem == "" {
		problem = fmt.Sprintf("%d rows, %d through the e-mail index", n, viaIndex)
	}
	return seen, bad, problem
}

// insertRecord is BEGIN IMMEDIATE, one INSERT and COMMIT, the whole transaction retried on
// SQLITE_BUSY (which comes only once busy_timeout has run out).
func (s *sqliteStore) insertRecord(ctx context.Context, r record) (attempts int, err error) {
	for attempts = 1; ; attempts++ {
		err := s.tryInsertRecord(ctx, r)
		if err == nil || !isBusy(err) {
			return attempts, err
		}
	}
}

func (s *sqliteStore) tryInsertRecord(ctx context.Context, r record) (err error) {
	if _, err := s.begin.ExecContext(ctx); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_, _ = s.conn.ExecContext(ctx, "ROLLBACK")
		}
	}()
	if _, err := s.recAdd.ExecContext(ctx, r.ID, r.Email, r.Note); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	if _, err := s.commit.ExecContext(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// getRecord is one autocommit SELECT by primary key, retried on SQLITE_BUSY.
func (s *sqliteStore) getRecord(ctx context.Context, id int64) (record, error) {
	return s.queryRecord(ctx, s.recGet, id)
}

// getRecordByEmail is one autocommit SELECT through the unique index, retried on SQLITE_BUSY.
func (s *sqliteStore) getRecordByEmail(ctx context.Context, email string) (record, error) {
	return s.queryRecord(ctx, s.recByEmail, email)
}

func (s *sqliteStore) queryRecord(ctx context.Context, st *sql.Stmt, arg any) (record, error) {
	for {
		var r record
		err := st.QueryRowContext(ctx, arg).Scan(&r.ID, &r.Email, &r.Note)
		if err == nil || !isBusy(err) {
			return r, err
		}
	}
}

// rangeRecords is one autocommit SELECT of a key range in key order, retried on SQLITE_BUSY.
func (s *sqliteStore) rangeRecords(ctx context.Context, lo, hi int64) ([]record, error) {
	for {
		rs, err := s.tryRange(ctx, lo, hi)
		if err == nil || !isBusy(err) {
			return rs, err
		}
	}
}

func (s *sqliteStore) tryRange(ctx context.Context, lo, hi int64) (rs []record, err error) {
	rows, err := s.recRange.QueryContext(ctx, lo, hi)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
	}()
	rs = make([]record, 0, rangeRows)
	for rows.Next() {
		var r record
		if err := rows.Scan(&r.ID, &r.Email, &r.Note); err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return rs, rows.Err()
}
