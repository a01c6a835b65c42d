package txtdb

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Transactions on several handles of one directory stand in for transactions in several
// processes: handles coordinate only through the files, exactly like processes.

func TestLostUpdate(t *testing.T) {
	tests := []struct {
		name    string
		handles int   // transactions are spread over this many handles, round robin
		order   []int // commit order of the transactions; the first one wins
	}{
		{"two-way/one handle", 1, []int{0, 1}},
		{"two-way/two handles", 2, []int{0, 1}},
		{"two-way/second begun commits first", 2, []int{1, 0}},
		{"three-way/one handle", 1, []int{2, 0, 1}},
		{"three-way/three handles", 3, []int{0, 1, 2}},
		{"three-way/middle first", 3, []int{1, 2, 0}},
		{"three-way/two handles", 2, []int{2, 1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dbs := openN(t, dir, tt.handles, nil)
			id := seedPages(t, dir, "acct", 100)[0]
			before := lastTSN(t, dbs[0])

			// Everyone begins and reads, then everyone writes, then they commit in order.
			txs := make([]*Tx, len(tt.order))
			for i := range txs {
				txs[i] = mustBegin(t, dbs[i%len(dbs)], true)
				require.Equal(t, before, txs[i].Snapshot(), "tx %d Snapshot()", i)
			}
			for i, tx := range txs {
				require.Equal(t, 100, readN(t, tx, "acct", id), "tx %d ReadPage", i)
			}
			for i, tx := range txs {
				require.NoError(t, tx.UpdatePage("acct", id, item{N: 1000 + i}), "tx %d UpdatePage", i)
			}
			winner := tt.order[0]
			require.NoError(t, txs[winner].Commit(), "Commit of the first committer (tx %d)", winner)
			won := lastTSN(t, dbs[0])
			require.Equal(t, before+1, won, "TSN after the winning commit")
			for _, i := range tt.order[1:] {
				err := txs[i].Commit()
				ce := conflictOf(t, err, before)
				assert.Equal(t, "acct", ce.Namespace, "tx %d ConflictError.Namespace", i)
				assert.Equal(t, id, ce.Page, "tx %d ConflictError.Page", i)
				assert.Equal(t, won, ce.Committed, "tx %d ConflictError.Committed", i)
				assert.ErrorIs(t, txs[i].Rollback(), ErrTxClosed, "Rollback after a failed Commit")
			}
			for h, db := range dbs {
				assert.Equal(t, 1000+winner, committedN(t, db, "acct", id), "handle %d: value after the race, want the winner's", h)
			}
			assert.Equal(t, won, lastTSN(t, dbs[len(dbs)-1]), "failed commits must use up no TSN")
		})
	}
}

func TestReadBeforeWrite(t *testing.T) {
	type op struct {
		name string
		do   func(tx *Tx, id string) error
	}
	ops := []op{
		{"UpdatePage", func(tx *Tx, id string) error { return tx.UpdatePage("ns", id, item{N: 99}) }},
		{"DeletePage", func(tx *Tx, id string) error { return tx.DeletePage("ns", id) }},
	}
	tests := []struct {
		name    string
		prepare func(tx *Tx, ids []string) (string, error) // returns the page to write
		want    error
	}{
		{"unread page", func(tx *Tx, ids []string) (string, error) { return ids[0], nil }, ErrNotRead},
		{"only another page read", func(tx *Tx, ids []string) (string, error) {
			_, err := tx.ReadPage("ns", ids[1])
			return ids[0], err
		}, ErrNotRead},
		{"only the same page ID in another namespace read", func(tx *Tx, ids []string) (string, error) {
			if _, err := tx.ReadPage("other", ids[0]); err != nil && !errors.Is(err, ErrNotFound) {
				return "", err
			}
			return ids[0], nil
		}, ErrNotRead},
		{"Match that does not cover the page", func(tx *Tx, ids []string) (string, error) {
			_, err := tx.Match("ns", ids[1])
			return ids[0], err
		}, ErrNotRead},
		{"read by ReadPage", func(tx *Tx, ids []string) (string, error) {
			_, err := tx.ReadPage("ns", ids[0])
			return ids[0], err
		}, nil},
		{"read by Match", func(tx *Tx, ids []string) (string, error) {
			_, err := tx.Match("ns", "*")
			return ids[0], err
		}, nil},
		{"own insert", func(tx *Tx, ids []string) (string, error) { return tx.Insert("ns", item{N: 7}) }, nil},
	}
	for _, o := range ops {
		for _, tt := range tests {
			t.Run(o.name+"/"+tt.name, func(t *testing.T) {
				dir := t.TempDir()
				db := mustOpen(t, dir, nil)
				ids := seedPages(t, dir, "ns", 1, 2)
				seedPages(t, dir, "other", 1, 2)
				before := lastTSN(t, db)

				tx := mustBegin(t, db, true)
				id, err := tt.prepare(tx, ids)
				require.NoError(t, err, "prepare")
				err = o.do(tx, id)
				if tt.want == nil {
					require.NoError(t, err, "%s(%q)", o.name, id)
					require.NoError(t, tx.Commit())
					return
				}
				require.ErrorIs(t, err, tt.want, "%s(%q) = %v, want %v", o.name, id, err, tt.want)
				require.NoError(t, tx.Commit(), "Commit after a refused write")
				assert.Equal(t, before, lastTSN(t, db), "a refused write must not commit anything")
				assert.Equal(t, 1, committedN(t, db, "ns", ids[0]), "page after a refused %s", o.name)
			})
		}
	}
}

func TestSnapshotStability(t *testing.T) {
	tests := []struct {
		name           string
		sameHandle     bool // the writer uses the reader's handle
		readerWritable bool
	}{
		{"other handle/read-only reader", false, false},
		{"other handle/writable reader", false, true},
		{"same handle/read-only reader", true, false},
		{"same handle/writable reader", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dbs := openN(t, dir, 2, nil)
			rdb, wdb := dbs[0], dbs[1]
			if tt.sameHandle {
				wdb = rdb
			}
			ids := seedPages(t, dir, "ns", 1, 2)
			p, q := ids[0], ids[1]

			reader := mustBegin(t, rdb, tt.readerWritable)
			snap := reader.Snapshot()

			// Several commits after the reader's snapshot: p updated twice, q deleted, a page
			// inserted, a namespace created.
			for _, n := range []int{10, 20} {
				require.NoError(t, wdb.Update(t.Context(), func(tx *Tx) error {
					if _, err := tx.ReadPage("ns", p); err != nil {
						return err
					}
					return tx.UpdatePage("ns", p, item{N: n})
				}))
			}
			var inserted string
			require.NoError(t, wdb.Update(t.Context(), func(tx *Tx) error {
				if _, err := tx.ReadPage("ns", q); err != nil {
					return err
				}
				if err := tx.DeletePage("ns", q); err != nil {
					return err
				}
				var err error
				inserted, err = tx.Insert("ns", item{N: 3})
				if err != nil {
					return err
				}
				return tx.CreateNamespace("late")
			}))
			// The reader's handle learns of the new commits.
			require.Equal(t, snap+3, lastTSN(t, rdb), "TSN after three commits")

			// The reader reads everything for the first time now: it sees its snapshot.
			assert.Equal(t, snap, reader.Snapshot(), "Snapshot() moved")
			assert.Equal(t, 1, readN(t, reader, "ns", p), "ReadPage(p) first read after two updates committed")
			assert.Equal(t, 2, readN(t, reader, "ns", q), "ReadPage(q) first read after q was deleted")
			_, err := reader.ReadPage("ns", inserted)
			assert.ErrorIs(t, err, ErrNotFound, "ReadPage(page inserted after the snapshot)")
			assert.Equal(t, []int{1, 2}, nsValues(t, reader, "ns"), "Match(ns) at the old snapshot")
			names, err := reader.Namespaces()
			require.NoError(t, err)
			assert.Equal(t, []string{"ns"}, names, "Namespaces() at the old snapshot")
			_, err = reader.Match("late", "*")
			assert.ErrorIs(t, err, ErrNamespaceNotFound, "Match(namespace created after the snapshot)")
			// Reading twice gives the same answer.
			assert.Equal(t, 1, readN(t, reader, "ns", p), "second ReadPage(p)")
			require.NoError(t, reader.Commit(), "a transaction that only read commits")

			now := mustBegin(t, rdb, false)
			assert.Equal(t, 20, readN(t, now, "ns", p), "ReadPage(p) in a new transaction")
			assert.Equal(t, []int{3, 20}, nsValues(t, now, "ns"), "Match(ns) in a new transaction")
		})
	}
}

func TestPhantomFreeMatch(t *testing.T) {
	// A scans "jobs" with Match, B changes "jobs" and commits, then A writes and commits.
	tests := []struct {
		name    string
		iso     Isolation
		pattern func(ids []string) string // A's Match pattern over the seeded pages
		other   func(tx *Tx, ids []string) error
		aWrite  func(tx *Tx) error
		want    error
	}{
		{
			name:    "insert into scanned namespace",
			pattern: func([]string) string { return "*" },
			other:   func(tx *Tx, _ []string) error { _, err := tx.Insert("jobs", item{N: 9}); return err },
			want:    ErrConflict,
		},
		{
			name:    "insert, scan matched no page",
			pattern: func([]string) string { return "nothing*" },
			other:   func(tx *Tx, _ []string) error { _, err := tx.Insert("jobs", item{N: 9}); return err },
			want:    ErrConflict,
		},
		{
			name:    "insert, A inserts into the scanned namespace too",
			pattern: func([]string) string { return "*" },
			other:   func(tx *Tx, _ []string) error { _, err := tx.Insert("jobs", item{N: 9}); return err },
			aWrite:  func(tx *Tx) error { _, err := tx.Insert("jobs", item{N: 8}); return err },
			want:    ErrConflict,
		},
		{
			name:    "delete of a page the pattern did not match",
			pattern: func(ids []string) string { return ids[0] },
			other: func(tx *Tx, ids []string) error {
				if _, err := tx.ReadPage("jobs", ids[1]); err != nil {
					return err
				}
				return tx.DeletePage("jobs", ids[1])
			},
			want: ErrConflict,
		},
		{
			name:    "update of a page the pattern did not match",
			pattern: func(ids []string) string { return ids[0] },
			other:   func(tx *Tx, ids []string) error { return incr(tx, "jobs", ids[1]) },
			want:    nil, // the page set did not change and A did not read that page
		},
		{
			name:    "insert into another namespace",
			pattern: func([]string) string { return "*" },
			other:   func(tx *Tx, _ []string) error { _, err := tx.Insert("other", item{N: 9}); return err },
			want:    nil,
		},
		{
			name:    "snapshot isolation: insert into scanned namespace",
			iso:     Snapshot,
			pattern: func([]string) string { return "*" },
			other:   func(tx *Tx, _ []string) error { _, err := tx.Insert("jobs", item{N: 9}); return err },
			want:    nil, // write-write conflicts only
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			a := mustOpen(t, dir, &Options{Isolation: tt.iso})
			b := mustOpen(t, dir, &Options{Isolation: tt.iso, OneObjectPerPage: true})
			ids := seedPages(t, dir, "jobs", 1, 2)
			seedPages(t, dir, "other", 1)
			seedPages(t, dir, "out")

			txA := mustBegin(t, a, true)
			snap := txA.Snapshot()
			_, err := txA.Match("jobs", tt.pattern(ids))
			require.NoError(t, err, "A: Match")
			require.NoError(t, b.Update(t.Context(), func(tx *Tx) error { return tt.other(tx, ids) }), "B: commit")
			write := tt.aWrite
			if write == nil {
				write = func(tx *Tx) error { _, err := tx.Insert("out", item{N: 1}); return err }
			}
			require.NoError(t, write(txA), "A: write")
			err = txA.Commit()
			if tt.want == nil {
				require.NoError(t, err, "A: Commit")
				return
			}
			ce := conflictOf(t, err, snap)
			assert.Equal(t, "jobs", ce.Namespace, "ConflictError.Namespace")
			assert.Equal(t, snap+1, ce.Committed, "ConflictError.Committed")
			tx := mustBegin(t, b, false)
			assert.Empty(t, nsValues(t, tx, "out"), "nothing of the failed commit is visible")
		})
	}
}

func TestReadOnlyTransactionsAlwaysCommit(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, db *DB, read func(*Tx), change func()) error
	}{
		{"Begin(false)", func(t *testing.T, db *DB, read func(*Tx), change func()) error {
			tx := mustBegin(t, db, false)
			read(tx)
			change()
			return tx.Commit()
		}},
		{"View", func(t *testing.T, db *DB, read func(*Tx), change func()) error {
			return db.View(t.Context(), func(tx *Tx) error { read(tx); change(); return nil })
		}},
		{"Begin(true) without writes", func(t *testing.T, db *DB, read func(*Tx), change func()) error {
			tx := mustBegin(t, db, true)
			read(tx)
			change()
			return tx.Commit()
		}},
		{"Update without writes", func(t *testing.T, db *DB, read func(*Tx), change func()) error {
			calls := 0
			err := db.Update(t.Context(), func(tx *Tx) error { calls++; read(tx); change(); return nil })
			assert.Equal(t, 1, calls, "fn calls of an Update that wrote nothing")
			return err
		}},
	}
	for _, tt := range tests {
		for _, iso := range []Isolation{Serializable, Snapshot} {
			t.Run(tt.name+"/"+iso.String(), func(t *testing.T) {
				dir := t.TempDir()
				dbs := openN(t, dir, 2, &Options{Isolation: iso})
				ids := seedPages(t, dir, "ns", 1, 2)
				read := func(tx *Tx) {
					assert.Equal(t, 1, readN(t, tx, "ns", ids[0]))
					assert.Equal(t, []int{1, 2}, nsValues(t, tx, "ns"))
				}
				change := func() {
					require.NoError(t, dbs[1].Update(t.Context(), func(tx *Tx) error {
						if err := incr(tx, "ns", ids[0]); err != nil {
							return err
						}
						if _, err := tx.ReadPage("ns", ids[1]); err != nil {
							return err
						}
						if err := tx.DeletePage("ns", ids[1]); err != nil {
							return err
						}
						_, err := tx.Insert("ns", item{N: 3})
						return err
					}))
				}
				require.NoError(t, tt.run(t, dbs[0], read, change), "read-only transaction must commit")
			})
		}
	}
}

func TestReadYourOwnWrites(t *testing.T) {
	tests := []struct {
		name  string
		fresh bool // the namespace is created by the transaction itself
	}{
		{"namespace created in the transaction", true},
		{"existing namespace", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dbs := openN(t, dir, 2, nil)
			var existing []string
			if !tt.fresh {
				existing = seedPages(t, dir, "ns", 100)
			}
			tx := mustBegin(t, dbs[0], true)
			if tt.fresh {
				require.NoError(t, tx.CreateNamespace("ns"))
			}
			id, err := tx.Insert("ns", item{N: 1})
			require.NoError(t, err, "Insert")
			assert.Equal(t, []int{1}, values(t, mustRead(t, tx, "ns", id)...), "ReadPage after Insert")

			for _, n := range []int{2, 3, 4} {
				require.NoError(t, tx.UpdatePage("ns", id, item{N: n}), "UpdatePage(%d)", n)
				assert.Equal(t, []int{n}, values(t, mustRead(t, tx, "ns", id)...), "ReadPage after UpdatePage(%d)", n)
			}
			require.NoError(t, tx.UpdatePage("ns", id, item{N: 5}, item{N: 6}), "UpdatePage with two objects")
			assert.Equal(t, []int{5, 6}, values(t, mustRead(t, tx, "ns", id)...), "ReadPage after a two-object UpdatePage")

			id2, err := tx.Insert("ns", item{N: 7})
			require.NoError(t, err, "second Insert")
			assert.Contains(t, values(t, mustRead(t, tx, "ns", id2)...), 7, "ReadPage(%s) after the second Insert", id2)

			want := []int{5, 6, 7}
			if !tt.fresh {
				require.NoError(t, incr(tx, "ns", existing[0]))
				require.NoError(t, incr(tx, "ns", existing[0]))
				assert.Equal(t, 102, readN(t, tx, "ns", existing[0]), "existing page after two increments")
				want = append(want, 102)
			}
			assert.Equal(t, want, nsValues(t, tx, "ns"), "Match(ns) inside the transaction")

			// Nobody else sees any of it yet.
			other := mustBegin(t, dbs[1], false)
			if tt.fresh {
				_, err := other.Match("ns", "*")
				assert.ErrorIs(t, err, ErrNamespaceNotFound, "other handle: Match before commit")
			} else {
				assert.Equal(t, []int{100}, nsValues(t, other, "ns"), "other handle: Match before commit")
			}
			require.NoError(t, tx.Commit())
			after := mustBegin(t, dbs[1], false)
			assert.Equal(t, want, nsValues(t, after, "ns"), "other handle: Match after commit")
		})
	}
	t.Run("delete own insert", func(t *testing.T) {
		dir := t.TempDir()
		db := mustOpen(t, dir, nil)
		seedPages(t, dir, "ns", 1)
		tx := mustBegin(t, db, true)
		id, err := tx.Insert("ns", item{N: 2})
		require.NoError(t, err)
		require.NoError(t, tx.DeletePage("ns", id), "DeletePage of own insert")
		_, err = tx.ReadPage("ns", id)
		assert.ErrorIs(t, err, ErrNotFound, "ReadPage after DeletePage")
		assert.Equal(t, []int{1}, nsValues(t, tx, "ns"), "Match after deleting own insert")
		require.NoError(t, tx.Commit())
		assert.Equal(t, []int{1}, nsValues(t, mustBegin(t, db, false), "ns"), "Match after commit")
	})
}

func mustRead(tb testing.TB, tx *Tx, ns, id string) []Object {
	tb.Helper()
	objs, err := tx.ReadPage(ns, id)
	require.NoError(tb, err, "ReadPage(%q, %q)", ns, id)
	return objs
}

func TestConflictsAcrossNamespacesAreIndependent(t *testing.T) {
	// Two transactions on two handles, each touching only its own namespace, begun at the same
	// snapshot: both commit, in either order, under Serializable.
	type work func(tx *Tx, ns string, ids []string) error
	update := func(tx *Tx, ns string, ids []string) error { return incr(tx, ns, ids[0]) }
	scanInsert := func(tx *Tx, ns string, _ []string) error {
		if _, err := tx.Match(ns, "*"); err != nil {
			return err
		}
		_, err := tx.Insert(ns, item{N: 9})
		return err
	}
	del := func(tx *Tx, ns string, ids []string) error {
		if _, err := tx.ReadPage(ns, ids[1]); err != nil {
			return err
		}
		return tx.DeletePage(ns, ids[1])
	}
	dropNS := func(tx *Tx, ns string, _ []string) error { return tx.DeleteNamespace(ns) }
	renameNS := func(tx *Tx, ns string, _ []string) error { return tx.RenameNamespace(ns, ns+"2") }
	tests := []struct {
		name string
		a, b work
	}{
		{"update/update", update, update},
		{"scan+insert/scan+insert", scanInsert, scanInsert},
		{"delete page/scan+insert", del, scanInsert},
		{"delete namespace/update", dropNS, update},
		{"rename namespace/scan+insert", renameNS, scanInsert},
	}
	for _, tt := range tests {
		for _, bFirst := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/b first=%v", tt.name, bFirst), func(t *testing.T) {
				dir := t.TempDir()
				dbs := openN(t, dir, 2, nil)
				idsA := seedPages(t, dir, "a", 1, 2)
				idsB := seedPages(t, dir, "b", 1, 2)
				txA := mustBegin(t, dbs[0], true)
				txB := mustBegin(t, dbs[1], true)
				require.NoError(t, tt.a(txA, "a", idsA), "A's work")
				require.NoError(t, tt.b(txB, "b", idsB), "B's work")
				first, second := txA, txB
				if bFirst {
					first, second = txB, txA
				}
				require.NoError(t, first.Commit(), "first Commit")
				require.NoError(t, second.Commit(), "second Commit: it touched only another namespace")
			})
		}
	}
}

func TestRollbackLeavesNothing(t *testing.T) {
	// The transaction under test creates, inserts, updates, deletes, renames and drops; then it
	// ends without committing, in one of three ways.
	sentinel := errors.New("fn failed")
	tests := []struct {
		name  string
		end   func(t *testing.T, dbs []*DB, work func(*Tx) error, side string)
		extra TSN // commits made by others during the test
	}{
		{"Rollback", func(t *testing.T, dbs []*DB, work func(*Tx) error, _ string) {
			tx := mustBegin(t, dbs[0], true)
			require.NoError(t, work(tx))
			require.NoError(t, tx.Rollback())
			assert.ErrorIs(t, tx.Rollback(), ErrTxClosed, "second Rollback")
		}, 0},
		{"Update fn error", func(t *testing.T, dbs []*DB, work func(*Tx) error, _ string) {
			calls := 0
			err := dbs[0].Update(t.Context(), func(tx *Tx) error {
				calls++
				if err := work(tx); err != nil {
					return err
				}
				return sentinel
			})
			assert.ErrorIs(t, err, sentinel, "Update returns fn's error")
			assert.Equal(t, 1, calls, "fn calls: an fn error is not retried")
		}, 0},
		{"failed Commit", func(t *testing.T, dbs []*DB, work func(*Tx) error, side string) {
			tx := mustBegin(t, dbs[0], true)
			require.NoError(t, work(tx))
			require.NoError(t, incr(tx, "side", side))
			require.NoError(t, dbs[1].Update(t.Context(), func(tx *Tx) error { return incr(tx, "side", side) }))
			conflictOf(t, tx.Commit(), tx.Snapshot())
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dbs := openN(t, dir, 2, nil)
			ids := seedPages(t, dir, "keep", 1, 2)
			seedPages(t, dir, "old", 3)
			seedPages(t, dir, "moving", 5)
			seedPages(t, dir, "moving.child", 4)
			side := seedPages(t, dir, "side", 0)[0]
			type view struct {
				names []string
				keep  map[string][]Object
				tsn   TSN
			}
			snapshot := func(db *DB) view {
				tx := mustBegin(t, db, false)
				keep, err := tx.Match("keep", "*")
				require.NoError(t, err)
				names, err := tx.Namespaces()
				require.NoError(t, err)
				return view{names, keep, tx.Snapshot()}
			}
			before := snapshot(dbs[1])
			work := func(tx *Tx) error {
				for _, f := range []func() error{
					func() error { return tx.CreateNamespace("new.deep") },
					func() error { _, err := tx.Insert("new.deep", item{N: 10}); return err },
					func() error { _, err := tx.Insert("keep", item{N: 11}); return err },
					func() error { return incr(tx, "keep", ids[0]) },
					func() error { _, err := tx.ReadPage("keep", ids[1]); return err },
					func() error { return tx.DeletePage("keep", ids[1]) },
					func() error { return tx.DeleteNamespace("old") },
					func() error { return tx.RenameNamespace("moving", "moved") },
				} {
					if err := f(); err != nil {
						return err
					}
				}
				return nil
			}
			tt.end(t, dbs, work, side)
			for h, db := range dbs {
				after := snapshot(db)
				assert.Equal(t, before.names, after.names, "handle %d: Namespaces() after the transaction ended", h)
				assert.Equal(t, before.keep, after.keep, "handle %d: pages of keep", h)
				assert.Equal(t, before.tsn+tt.extra, after.tsn, "handle %d: TSN: nothing may have committed", h)
				tx := mustBegin(t, db, false)
				_, err := tx.Match("new.deep", "*")
				assert.ErrorIs(t, err, ErrNamespaceNotFound, "handle %d: Match(new.deep)", h)
				assert.Equal(t, []int{3}, nsValues(t, tx, "old"), "handle %d: old", h)
				assert.Equal(t, []int{5}, nsValues(t, tx, "moving"), "handle %d: moving", h)
				assert.Equal(t, []int{4}, nsValues(t, tx, "moving.child"), "handle %d: moving.child", h)
				_, err = tx.Match("moved.child", "*")
				assert.ErrorIs(t, err, ErrNamespaceNotFound, "handle %d: Match(moved.child)", h)
			}
			assert.NoError(t, checkStore(dir))
		})
	}
}

func TestUpdateAfterOpenWriterCommits(t *testing.T) {
	// T1 reads and writes p and stays open; T2 begins afterwards, reads and writes p. Whichever
	// commits first wins; the other fails, under both isolation levels.
	tests := []struct {
		iso        Isolation
		sameHandle bool
		t2First    bool
	}{
		{Serializable, false, false},
		{Serializable, true, false},
		{Serializable, false, true},
		{Snapshot, false, false},
		{Snapshot, true, false},
		{Snapshot, true, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/same handle=%v/t2 first=%v", tt.iso, tt.sameHandle, tt.t2First), func(t *testing.T) {
			dir := t.TempDir()
			dbs := openN(t, dir, 2, &Options{Isolation: tt.iso})
			if tt.sameHandle {
				dbs[1] = dbs[0]
			}
			id := seedPages(t, dir, "ns", 0)[0]
			t1 := mustBegin(t, dbs[0], true)
			require.NoError(t, incr(t1, "ns", id), "T1 writes p")
			t2 := mustBegin(t, dbs[1], true)
			assert.Equal(t, 0, readN(t, t2, "ns", id), "T2 must not see T1's uncommitted write")
			require.NoError(t, t2.UpdatePage("ns", id, item{N: 20}), "T2 writes p")
			first, second, wantN := t1, t2, 1
			if tt.t2First {
				first, second, wantN = t2, t1, 20
			}
			require.NoError(t, first.Commit(), "first Commit")
			ce := conflictOf(t, second.Commit(), second.Snapshot())
			assert.Equal(t, id, ce.Page, "ConflictError.Page")
			assert.Equal(t, "ns", ce.Namespace, "ConflictError.Namespace")
			assert.Equal(t, wantN, committedN(t, dbs[0], "ns", id), "value of p")
		})
	}
}

func TestWriteSkew(t *testing.T) {
	// Two doctors on call (x = y = 1); each checks that the other is on call and goes off call.
	tests := []struct {
		iso        Isolation
		sameHandle bool
		skew       bool // both commit, leaving nobody on call
	}{
		{Serializable, false, false},
		{Serializable, true, false},
		{Snapshot, false, true},
		{Snapshot, true, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/same handle=%v", tt.iso, tt.sameHandle), func(t *testing.T) {
			dir := t.TempDir()
			dbs := openN(t, dir, 2, &Options{Isolation: tt.iso})
			if tt.sameHandle {
				dbs[1] = dbs[0]
			}
			ids := seedPages(t, dir, "oncall", 1, 1)
			x, y := ids[0], ids[1]
			t1 := mustBegin(t, dbs[0], true)
			t2 := mustBegin(t, dbs[1], true)
			for i, tx := range []*Tx{t1, t2} {
				require.Equal(t, 2, readN(t, tx, "oncall", x)+readN(t, tx, "oncall", y), "tx %d: doctors on call", i+1)
			}
			require.NoError(t, t1.UpdatePage("oncall", x, item{N: 0}))
			require.NoError(t, t2.UpdatePage("oncall", y, item{N: 0}))
			require.NoError(t, t1.Commit(), "T1 Commit")
			err := t2.Commit()
			gotX, gotY := committedN(t, dbs[0], "oncall", x), committedN(t, dbs[0], "oncall", y)
			if tt.skew {
				require.NoError(t, err, "T2 Commit under Snapshot: write skew is allowed")
				assert.Equal(t, [2]int{0, 0}, [2]int{gotX, gotY}, "x, y after both committed")
				return
			}
			ce := conflictOf(t, err, t2.Snapshot())
			assert.Equal(t, x, ce.Page, "ConflictError.Page: T2 read x, which T1 changed")
			assert.Equal(t, [2]int{0, 1}, [2]int{gotX, gotY}, "x, y: only T1 committed")
		})
	}
}

func TestTxClosed(t *testing.T) {
	type op struct {
		name  string
		write bool
		do    func(tx *Tx, id string) error
	}
	ops := []op{
		{"ReadPage", false, func(tx *Tx, id string) error { _, err := tx.ReadPage("ns", id); return err }},
		{"Match", false, func(tx *Tx, _ string) error { _, err := tx.Match("ns", "*"); return err }},
		{"Namespaces", false, func(tx *Tx, _ string) error { _, err := tx.Namespaces(); return err }},
		{"Commit", false, func(tx *Tx, _ string) error { return tx.Commit() }},
		{"Rollback", false, func(tx *Tx, _ string) error { return tx.Rollback() }},
		{"Insert", true, func(tx *Tx, _ string) error { _, err := tx.Insert("ns", item{N: 5}); return err }},
		{"UpdatePage", true, func(tx *Tx, id string) error { return tx.UpdatePage("ns", id, item{N: 5}) }},
		{"DeletePage", true, func(tx *Tx, id string) error { return tx.DeletePage("ns", id) }},
		{"CreateNamespace", true, func(tx *Tx, _ string) error { return tx.CreateNamespace("fresh") }},
		{"DeleteNamespace", true, func(tx *Tx, _ string) error { return tx.DeleteNamespace("ns") }},
		{"RenameNamespace", true, func(tx *Tx, _ string) error { return tx.RenameNamespace("ns", "renamed") }},
	}
	// Each way of ending returns the closed transaction; writable says whether it was writable.
	ends := []struct {
		name     string
		writable bool
		end      func(t *testing.T, dbs []*DB, id string) *Tx
	}{
		{"after Commit", true, func(t *testing.T, dbs []*DB, id string) *Tx {
			tx := mustBegin(t, dbs[0], true)
			require.NoError(t, incr(tx, "ns", id))
			require.NoError(t, tx.Commit())
			return tx
		}},
		{"after read-only Commit", false, func(t *testing.T, dbs []*DB, id string) *Tx {
			tx := mustBegin(t, dbs[0], false)
			readN(t, tx, "ns", id)
			require.NoError(t, tx.Commit())
			return tx
		}},
		{"after Rollback", true, func(t *testing.T, dbs []*DB, id string) *Tx {
			tx := mustBegin(t, dbs[0], true)
			require.NoError(t, incr(tx, "ns", id))
			require.NoError(t, tx.Rollback())
			return tx
		}},
		{"after failed Commit", true, func(t *testing.T, dbs []*DB, id string) *Tx {
			tx := mustBegin(t, dbs[0], true)
			require.NoError(t, incr(tx, "ns", id))
			require.NoError(t, dbs[1].Update(t.Context(), func(tx *Tx) error { return incr(tx, "ns", id) }))
			require.ErrorIs(t, tx.Commit(), ErrConflict)
			return tx
		}},
		{"after Update returned", true, func(t *testing.T, dbs []*DB, id string) *Tx {
			var leaked *Tx
			require.NoError(t, dbs[0].Update(t.Context(), func(tx *Tx) error { leaked = tx; return incr(tx, "ns", id) }))
			return leaked
		}},
		{"after View returned", false, func(t *testing.T, dbs []*DB, id string) *Tx {
			var leaked *Tx
			require.NoError(t, dbs[0].View(t.Context(), func(tx *Tx) error { leaked = tx; return nil }))
			return leaked
		}},
	}
	for _, e := range ends {
		t.Run(e.name, func(t *testing.T) {
			dir := t.TempDir()
			dbs := openN(t, dir, 2, nil)
			id := seedPages(t, dir, "ns", 0)[0]
			tx := e.end(t, dbs, id)
			tsn := lastTSN(t, dbs[0])
			for _, o := range ops {
				if o.write && !e.writable {
					continue
				}
				err := o.do(tx, id)
				assert.ErrorIs(t, err, ErrTxClosed, "%s on a closed transaction = %v, want ErrTxClosed", o.name, err)
			}
			assert.Equal(t, tsn, lastTSN(t, dbs[1]), "operations on a closed transaction must not commit")
			assert.Equal(t, []string{"ns"}, namespaces(t, dbs[1]), "Namespaces() after operations on a closed transaction")
		})
	}
}

func TestReadOnlyRejectsWrites(t *testing.T) {
	writes := []struct {
		name string
		do   func(tx *Tx, id string) error
	}{
		{"Insert", func(tx *Tx, _ string) error { _, err := tx.Insert("ns", item{N: 5}); return err }},
		{"UpdatePage", func(tx *Tx, id string) error { return tx.UpdatePage("ns", id, item{N: 5}) }},
		{"DeletePage", func(tx *Tx, id string) error { return tx.DeletePage("ns", id) }},
		{"CreateNamespace", func(tx *Tx, _ string) error { return tx.CreateNamespace("fresh") }},
		{"DeleteNamespace", func(tx *Tx, _ string) error { return tx.DeleteNamespace("ns") }},
		{"RenameNamespace", func(tx *Tx, _ string) error { return tx.RenameNamespace("ns", "renamed") }},
	}
	runs := []struct {
		name string
		run  func(t *testing.T, db *DB, fn func(*Tx)) error
	}{
		{"Begin(false)", func(t *testing.T, db *DB, fn func(*Tx)) error {
			tx := mustBegin(t, db, false)
			fn(tx)
			return tx.Commit()
		}},
		{"View", func(t *testing.T, db *DB, fn func(*Tx)) error {
			return db.View(t.Context(), func(tx *Tx) error { fn(tx); return nil })
		}},
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			dir := t.TempDir()
			db := mustOpen(t, dir, nil)
			id := seedPages(t, dir, "ns", 1)[0]
			before := lastTSN(t, db)
			err := r.run(t, db, func(tx *Tx) {
				readN(t, tx, "ns", id) // reads work; and the page counts as read
				for _, w := range writes {
					err := w.do(tx, id)
					assert.ErrorIs(t, err, ErrReadOnly, "%s = %v, want ErrReadOnly", w.name, err)
				}
				assert.Equal(t, 1, readN(t, tx, "ns", id), "page after refused writes")
			})
			require.NoError(t, err, "ending the read-only transaction")
			assert.Equal(t, before, lastTSN(t, db), "a read-only transaction committed something")
			assert.Equal(t, []string{"ns"}, namespaces(t, db))
			assert.Equal(t, 1, committedN(t, db, "ns", id))
		})
	}
}
