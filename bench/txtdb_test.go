package bench

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/pages"
)

// acctNS is the txtdb namespace of the accounts; account i lives alone on page pages.PageID(i).
// jobsNS is the namespace of the insert workload's jobs, many to a page.
const (
	acctNS = "acct"
	jobsNS = "jobs"
)

// txtdbEngine is txtdb with one account per page; jobs share pages (the default).
type txtdbEngine struct {
	noSync bool // Options.NoSync in the workers
}

func (txtdbEngine) setup(tb testing.TB, dir string) {
	tb.Helper()
	db, err := txtdb.Open(dir, &txtdb.Options{OneObjectPerPage: true})
	require.NoError(tb, err)
	err = db.Update(context.Background(), func(tx *txtdb.Tx) error {
		if err := tx.CreateNamespace(acctNS); err != nil {
			return err
		}
		if err := tx.CreateNamespace(jobsNS); err != nil {
			return err
		}
		for i := 1; i <= benchAccounts; i++ {
			id, err := tx.Insert(acctNS, initialBalance)
			if err != nil {
				return err
			}
			if want := pages.PageID(uint64(i)); id != want {
				return fmt.Errorf("insert %d: page %q, want %q", i, id, want)
			}
		}
		return nil
	})
	require.NoError(tb, err)
	require.NoError(tb, db.Close())
}

// offerEnv set to 0 makes txtdb's bench handles commit only under the lock themselves
// (Options.NoOffer).
const offerEnv = "TXTDB_BENCH_OFFER"

func (e txtdbEngine) open(_ context.Context, dir, w string) (store, error) {
	// One account per page is what the accounts were set up with; jobs are packed many to a page,
	// as Insert does by default. (Tables write their pages themselves: the option does not matter.)
	db, err := txtdb.Open(dir, &txtdb.Options{OneObjectPerPage: w != workloadInsert && !isTableWorkload(w), NoSync: e.noSync,
		NoOffer: os.Getenv(offerEnv) == "0"})
	if err != nil {
		return nil, err
	}
	return txtdbStore{db: db}, nil
}

func (txtdbEngine) total(tb testing.TB, dir string) (accounts, sum int64) {
	tb.Helper()
	db, err := txtdb.Open(dir, nil)
	require.NoError(tb, err)
	defer func() { require.NoError(tb, db.Close()) }()
	err = db.View(context.Background(), func(tx *txtdb.Tx) error {
		all, err := tx.Match(acctNS, "*")
		if err != nil {
			return err
		}
		for id, objs := range all {
			v, err := balance(objs)
			if err != nil {
				return fmt.Errorf("page %s: %w", id, err)
			}
			accounts++
			sum += v
		}
		return nil
	})
	require.NoError(tb, err)
	return accounts, sum
}

func (txtdbEngine) jobs(tb testing.TB, dir string) map[jobKey]int {
	tb.Helper()
	db, err := txtdb.Open(dir, nil)
	require.NoError(tb, err)
	defer func() { require.NoError(tb, db.Close()) }()
	seen := map[jobKey]int{}
	err = db.View(context.Background(), func(tx *txtdb.Tx) error {
		all, err := tx.Match(jobsNS, "*")
		if err != nil {
			return err
		}
		for id, objs := range all {
			for i, o := range objs {
				var j job
				if err := o.Decode(&j); err != nil {
					return fmt.Errorf("page %s, object %d: %w", id, i, err)
				}
				seen[jobKey{j.Proc, j.Client, j.Seq}]++
			}
		}
		return nil
	})
	require.NoError(tb, err)
	return seen
}

func (txtdbEngine) sharesHandle() bool { return true }

// txtdbStore is one worker's txtdb handle.
type txtdbStore struct {
	db *txtdb.DB
}

func (s txtdbStore) transfer(ctx context.Context, a, b int) (attempts int, err error) {
	ida, idb := pages.PageID(uint64(a)), pages.PageID(uint64(b))
	err = s.db.Update(ctx, func(tx *txtdb.Tx) error {
		attempts++ // Update runs this once per attempt
		va, err := readBalance(tx, ida)
		if err != nil {
			return err
		}
		vb, err := readBalance(tx, idb)
		if err != nil {
			return err
		}
		if err := tx.UpdatePage(acctNS, ida, va-1); err != nil {
			return err
		}
		return tx.UpdatePage(acctNS, idb, vb+1)
	})
	return attempts, err
}

func (s txtdbStore) insert(ctx context.Context, j job) (attempts int, err error) {
	err = s.db.Update(ctx, func(tx *txtdb.Tx) error {
		attempts++
		_, err := tx.Insert(jobsNS, j)
		return err
	})
	return attempts, err
}

func (s txtdbStore) read(ctx context.Context, a int) (v int64, err error) {
	err = s.db.View(ctx, func(tx *txtdb.Tx) error {
		v, err = readBalance(tx, pages.PageID(uint64(a)))
		return err
	})
	return v, err
}

func (s txtdbStore) syncs() int64 { return s.db.Stats().Fsyncs }

func (s txtdbStore) Close() error { return s.db.Close() }

// readBalance reads the account on page id.
func readBalance(tx *txtdb.Tx, id string) (int64, error) {
	objs, err := tx.ReadPage(acctNS, id)
	if err != nil {
		return 0, err
	}
	v, err := balance(objs)
	if err != nil {
		return 0, fmt.Errorf("page %s: %w", id, err)
	}
	return v, nil
}

// balance decodes the single object of an account page.
func balance(objs []txtdb.Object) (int64, error) {
	if len(objs) != 1 {
		return 0, fmt.Errorf("%d objects, want 1", len(objs))
	}
	var v int64
	err := objs[0].Decode(&v)
	return v, err
}
