package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteSyncEnv picks the system call SQLite syncs with in the workers: fdatasync (the default)
// or fsync.
const sqliteSyncEnv = "TXTDB_BENCH_SQLITE_SYNC"

// sqliteEngine is SQLite (modernc.org/sqlite, pure Go) in WAL mode, one connection per client.
type sqliteEngine struct {
	synchronous string // PRAGMA synchronous in the workers: FULL or NORMAL
	fdatasync   bool   // sync with fdatasync(2) rather than fsync(2) (sqlite.Fdatasync)
}

// sqliteSyncCall returns the system call TXTDB_BENCH_SQLITE_SYNC asks for.
func sqliteSyncCall() (string, error) {
	switch v := os.Getenv(sqliteSyncEnv); v {
	case "", "fdatasync":
		return "fdatasync", nil
	case "fsync":
		return v, nil
	default:
		return "", fmt.Errorf("%s=%q, want fdatasync or fsync", sqliteSyncEnv, v)
	}
}

// sqliteOpen opens dir's database file with busy_timeout=5000 and WAL mode, on one connection.
func sqliteOpen(dir, synchronous string) (*sql.DB, error) {
	q := url.Values{"_pragma": {
		"busy_timeout(5000)",
		"journal_mode(WAL)",
		"synchronous(" + synchronous + ")",
	}}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "bench.sqlite")+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

func (sqliteEngine) setup(tb testing.TB, dir string) {
	tb.Helper()
	db, err := sqliteOpen(dir, "FULL")
	require.NoError(tb, err)
	defer func() { require.NoError(tb, db.Close()) }()
	ctx := context.Background()
	_, err = db.ExecContext(ctx, "CREATE TABLE acct(id INTEGER PRIMARY KEY, balance INTEGER)")
	require.NoError(tb, err)
	_, err = db.ExecContext(ctx, "CREATE TABLE jobs(id INTEGER PRIMARY KEY, proc INTEGER, client INTEGER, seq INTEGER, body TEXT)")
	require.NoError(tb, err)
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(tb, err)
	for i := 1; i <= benchAccounts; i++ {
		_, err := tx.ExecContext(ctx, "INSERT INTO acct(id, balance) VALUES(?, ?)", i, initialBalance)
		require.NoError(tb, err)
	}
	require.NoError(tb, tx.Commit())
}

func (e sqliteEngine) open(ctx context.Context, dir, w string) (_ store, err error) {
	// Process-wide; the workers are processes of their own.
	if _, err := sqlite.Fdatasync(e.fdatasync); err != nil {
		return nil, err
	}
	db, err := sqliteOpen(dir, e.synchronous)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = db.Close()
		}
	}()
	// Check that the settings took, on the connection the transfers will use.
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	var mode string
	var sync int
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, err
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return nil, err
	}
	if want := map[string]int{"NORMAL": 1, "FULL": 2}[e.synchronous]; mode != "wal" || sync != want {
		return nil, fmt.Errorf("journal_mode=%s synchronous=%d, want wal and %d", mode, sync, want)
	}
	s := &sqliteStore{db: db, conn: conn}
	type prep struct {
		stmt **sql.Stmt
		sql  string
	}
	stmts := []prep{{&s.begin, "BEGIN IMMEDIATE"}, {&s.commit, "COMMIT"}}
	if isTableWorkload(w) { // a store set up by setupTable: the records table alone
		stmts = append(stmts,
			prep{&s.recAdd, "INSERT INTO " + recordsNS + "(id, email, note) VALUES(?, ?, ?)"},
			prep{&s.recGet, sqliteRecordCols + " WHERE id = ?"},
			prep{&s.recByEmail, sqliteRecordCols + " WHERE email = ?"},
			prep{&s.recRange, sqliteRecordCols + " WHERE id >= ? AND id < ? ORDER BY id"})
	} else {
		stmts = append(stmts,
			prep{&s.get, "SELECT balance FROM acct WHERE id = ?"},
			prep{&s.set, "UPDATE acct SET balance = ? WHERE id = ?"},
			prep{&s.add, "INSERT INTO jobs(proc, client, seq, body) VALUES(?, ?, ?, ?)"})
	}
	for _, p := range stmts {
		if *p.stmt, err = conn.PrepareContext(ctx, p.sql); err != nil {
			return nil, fmt.Errorf("prepare %q: %w", p.sql, err)
		}
	}
	return s, nil
}

func (e sqliteEngine) total(tb testing.TB, dir string) (accounts, sum int64) {
	tb.Helper()
	db, err := sqliteOpen(dir, "FULL")
	require.NoError(tb, err)
	defer func() { require.NoError(tb, db.Close()) }()
	err = db.QueryRowContext(context.Background(), "SELECT count(*), sum(balance) FROM acct").Scan(&accounts, &sum)
	require.NoError(tb, err)
	return accounts, sum
}

func (sqliteEngine) jobs(tb testing.TB, dir string) map[jobKey]int {
	tb.Helper()
	db, err := sqliteOpen(dir, "FULL")
	require.NoError(tb, err)
	defer func() { require.NoError(tb, db.Close()) }()
	rows, err := db.QueryContext(context.Background(), "SELECT proc, client, seq FROM jobs")
	require.NoError(tb, err)
	defer func() { require.NoError(tb, rows.Close()) }()
	seen := map[jobKey]int{}
	for rows.Next() {
		var k jobKey
		require.NoError(tb, rows.Scan(&k.proc, &k.client, &k.seq))
		seen[k]++
	}
	require.NoError(tb, rows.Err())
	return seen
}

func (sqliteEngine) sharesHandle() bool { return false }

// sqliteStore is one worker's SQLite connection and its prepared statements: those of the
// accounts and jobs, or those of the records table.
type sqliteStore struct {
	db                                   *sql.DB
	conn                                 *sql.Conn
	begin, commit                        *sql.Stmt
	get, set, add                        *sql.Stmt // accounts and jobs
	recAdd, recGet, recByEmail, recRange *sql.Stmt // records
}

// transfer retries the whole transaction when SQLite reports SQLITE_BUSY, which it does only once
// busy_timeout has run out.
func (s *sqliteStore) transfer(ctx context.Context, a, b int) (attempts int, err error) {
	for attempts = 1; ; attempts++ {
		err := s.try(ctx, a, b)
		if err == nil || !isBusy(err) {
			return attempts, err
		}
	}
}

func (s *sqliteStore) try(ctx context.Context, a, b int) (err error) {
	if _, err := s.begin.ExecContext(ctx); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_, _ = s.conn.ExecContext(ctx, "ROLLBACK")
		}
	}()
	var va, vb int64
	if err := s.get.QueryRowContext(ctx, a).Scan(&va); err != nil {
		return fmt.Errorf("select %d: %w", a, err)
	}
	if err := s.get.QueryRowContext(ctx, b).Scan(&vb); err != nil {
		return fmt.Errorf("select %d: %w", b, err)
	}
	if _, err := s.set.ExecContext(ctx, va-1, a); err != nil {
		return fmt.Errorf("update %d: %w", a, err)
	}
	if _, err := s.set.ExecContext(ctx, vb+1, b); err != nil {
		return fmt.Errorf("update %d: %w", b, err)
	}
	if _, err := s.commit.ExecContext(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// insert is one autocommit INSERT (it takes the write lock itself), retried on SQLITE_BUSY: a
// statement that failed with it changed nothing.
func (s *sqliteStore) insert(ctx context.Context, j job) (attempts int, err error) {
	for attempts = 1; ; attempts++ {
		_, err := s.add.ExecContext(ctx, j.Proc, j.Client, j.Seq, j.Body)
		if err == nil || !isBusy(err) {
			return attempts, err
		}
	}
}

// read is one autocommit SELECT by primary key, retried on SQLITE_BUSY (rare for a WAL reader).
func (s *sqliteStore) read(ctx context.Context, a int) (int64, error) {
	for {
		var v int64
		err := s.get.QueryRowContext(ctx, a).Scan(&v)
		if err == nil || !isBusy(err) {
			return v, err
		}
	}
}

// syncs is -1: SQLite keeps no count of its syncs; the table counts the system calls instead.
func (s *sqliteStore) syncs() int64 { return -1 }

func (s *sqliteStore) Close() error {
	for _, st := range []*sql.Stmt{s.begin, s.commit, s.get, s.set, s.add, s.recAdd, s.recGet, s.recByEmail, s.recRange} {
		if st != nil {
			_ = st.Close()
		}
	}
	return errors.Join(s.conn.Close(), s.db.Close())
}

// isBusy reports whether err is SQLITE_BUSY or SQLITE_LOCKED (extended codes included).
func isBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	code := se.Code() & 0xff
	return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
}
