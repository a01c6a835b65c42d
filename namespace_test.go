package txtdb

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNamespaceDeleteRecreate(t *testing.T) {
	tests := []struct {
		name   string
		oneTx  bool // delete and re-create in one transaction
		reopen bool // check through handles opened afterwards (view rebuilt from the files)
	}{
		{"separate transactions", false, false},
		{"one transaction", true, false},
		{"separate transactions/reopened", false, true},
		{"one transaction/reopened", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dbs := openN(t, dir, 2, nil)
			oldIDs := seedPages(t, dir, "jobs", 1, 2, 3)
			seedPages(t, dir, "jobs.sub", 4)
			reader := mustBegin(t, dbs[0], false)
			writer := mustBegin(t, dbs[0], true) // will try to write into the old incarnation

			del := func(tx *Tx) error { return tx.DeleteNamespace("jobs") }
			create := func(tx *Tx) error {
				if err := tx.CreateNamespace("jobs"); err != nil {
					return err
				}
				_, err := tx.Insert("jobs", item{N: 99})
				return err
			}
			if tt.oneTx {
				require.NoError(t, dbs[1].Update(t.Context(), func(tx *Tx) error {
					if err := del(tx); err != nil {
						return err
					}
					return create(tx)
				}))
			} else {
				require.NoError(t, dbs[1].Update(t.Context(), del))
				gone := mustBegin(t, dbs[0], false)
				_, err := gone.Match("jobs", "*")
				assert.ErrorIs(t, err, ErrNamespaceNotFound, "Match(jobs) between delete and re-create")
				_, err = gone.ReadPage("jobs.sub", oldIDs[0])
				assert.ErrorIs(t, err, ErrNamespaceNotFound, "ReadPage(jobs.sub) after deleting jobs")
				require.NoError(t, dbs[1].Update(t.Context(), create))
			}

			check := dbs
			if tt.reopen {
				check = []*DB{mustOpen(t, dir, nil), mustOpen(t, dir, nil)}
			}
			for h, db := range check {
				tx := mustBegin(t, db, false)
				assert.Equal(t, []int{99}, nsValues(t, tx, "jobs"), "handle %d: Match(jobs) after re-create", h)
				for i, id := range oldIDs {
					objs, err := tx.ReadPage("jobs", id)
					if err == nil {
						assert.NotContains(t, values(t, objs...), i+1, "handle %d: old page %s came back", h, id)
					} else {
						assert.ErrorIs(t, err, ErrNotFound, "handle %d: ReadPage(jobs, %s)", h, id)
					}
				}
				_, err := tx.Match("jobs.sub", "*")
				assert.ErrorIs(t, err, ErrNamespaceNotFound, "handle %d: Match(jobs.sub): children stay deleted", h)
				assert.Equal(t, []string{"jobs"}, mustNamespaces(t, tx), "handle %d: Namespaces()", h)
			}

			// The reader on the old snapshot still reads the old namespace.
			assert.Equal(t, []int{1, 2, 3}, nsValues(t, reader, "jobs"), "old snapshot: Match(jobs)")
			for i, id := range oldIDs {
				assert.Equal(t, i+1, readN(t, reader, "jobs", id), "old snapshot: ReadPage(jobs, %s)", id)
			}
			assert.Equal(t, []int{4}, nsValues(t, reader, "jobs.sub"), "old snapshot: Match(jobs.sub)")
			assert.Equal(t, []string{"jobs", "jobs.sub"}, mustNamespaces(t, reader), "old snapshot: Namespaces()")
			require.NoError(t, reader.Commit())

			// A transaction that began before the delete must not land in the dead incarnation.
			require.NoError(t, incr(writer, "jobs", oldIDs[0]), "old snapshot: update an old page")
			_, err := writer.Insert("jobs", item{N: 50})
			require.NoError(t, err, "old snapshot: insert")
			ce := conflictOf(t, writer.Commit(), reader.Snapshot())
			assert.Equal(t, "jobs", ce.Namespace, "ConflictError.Namespace")
			assert.Equal(t, []int{99}, nsValues(t, mustBegin(t, dbs[1], false), "jobs"), "jobs after the refused write")
		})
	}
}

func mustNamespaces(tb testing.TB, tx *Tx) []string {
	tb.Helper()
	names, err := tx.Namespaces()
	require.NoError(tb, err, "Namespaces()")
	return names
}

func TestWriteIntoConcurrentlyRemovedNamespace(t *testing.T) {
	// W writes into target (not committed); R deletes or renames target or an ancestor and
	// commits first; W's commit must fail under both isolation levels.
	removals := []struct {
		name   string
		remove func(tx *Tx) error
		moved  string // where app.q went ("" = deleted)
	}{
		{"delete", func(tx *Tx) error { return tx.DeleteNamespace("app.q") }, ""},
		{"rename", func(tx *Tx) error { return tx.RenameNamespace("app.q", "app.r") }, "app.r"},
		{"delete parent", func(tx *Tx) error { return tx.DeleteNamespace("app") }, ""},
		{"rename parent", func(tx *Tx) error { return tx.RenameNamespace("app", "svc") }, "svc.q"},
		{"delete and re-create", func(tx *Tx) error {
			if err := tx.DeleteNamespace("app.q"); err != nil {
				return err
			}
			return tx.CreateNamespace("app.q")
		}, ""},
	}
	writes := []struct {
		name  string
		write func(tx *Tx, id string) error
	}{
		{"insert", func(tx *Tx, _ string) error { _, err := tx.Insert("app.q", item{N: 50}); return err }},
		{"update", func(tx *Tx, id string) error {
			if _, err := tx.ReadPage("app.q", id); err != nil {
				return err
			}
			return tx.UpdatePage("app.q", id, item{N: 50})
		}},
	}
	for _, r := range removals {
		for _, w := range writes {
			for _, iso := range []Isolation{Serializable, Snapshot} {
				t.Run(fmt.Sprintf("%s/%s/%v", r.name, w.name, iso), func(t *testing.T) {
					dir := t.TempDir()
					dbs := openN(t, dir, 2, &Options{Isolation: iso})
					seedPages(t, dir, "app", 0)
					id := seedPages(t, dir, "app.q", 1)[0]
					tw := mustBegin(t, dbs[0], true)
					require.NoError(t, w.write(tw, id), "W: %s", w.name)
					require.NoError(t, dbs[1].Update(t.Context(), r.remove), "R: %s", r.name)
					ce := conflictOf(t, tw.Commit(), tw.Snapshot())
					assert.Contains(t, []string{"app", "app.q"}, ce.Namespace, "ConflictError.Namespace")

					tx := mustBegin(t, dbs[1], false)
					where := r.moved
					if where == "" && r.name == "delete and re-create" {
						where = "app.q"
						assert.Empty(t, nsValues(t, tx, where), "re-created namespace after W's refused commit")
						return
					}
					if where == "" {
						_, err := tx.Match("app.q", "*")
						assert.ErrorIs(t, err, ErrNamespaceNotFound, "Match(app.q) after delete")
						return
					}
					assert.Equal(t, []int{1}, nsValues(t, tx, where), "%s after W's refused commit", where)
				})
			}
		}
	}
	t.Run("insert committed before the rename moves along", func(t *testing.T) {
		dir := t.TempDir()
		dbs := openN(t, dir, 2, nil)
		seedPages(t, dir, "app.q", 1)
		tw := mustBegin(t, dbs[0], true)
		tr := mustBegin(t, dbs[1], true)
		_, err := tw.Insert("app.q", item{N: 50})
		require.NoError(t, err)
		require.NoError(t, tr.RenameNamespace("app.q", "app.r"))
		require.NoError(t, tw.Commit(), "W commits first")
		require.NoError(t, tr.Commit(), "the rename did not read what W changed")
		assert.Equal(t, []int{1, 50}, nsValues(t, mustBegin(t, dbs[0], false), "app.r"), "app.r holds W's insert")
	})
}

func TestRenameNamespace(t *testing.T) {
	tests := []struct {
		name   string
		from   string
		to     string
		before []string // namespaces before
		after  []string // namespaces after
		moves  map[string]string
	}{
		{
			name: "top level carries children", from: "a", to: "x",
			before: []string{"a", "a.b.c", "ab", "other"},
			after:  []string{"ab", "other", "x", "x.b.c"},
			moves:  map[string]string{"a": "x", "a.b.c": "x.b.c"},
		},
		{
			name: "into another parent", from: "a.b.c", to: "other.c",
			before: []string{"a", "a.b.c", "ab", "other"},
			after:  []string{"a", "ab", "other", "other.c"},
			moves:  map[string]string{"a.b.c": "other.c"},
		},
		{
			name: "deeper", from: "a", to: "m.n.o",
			before: []string{"a", "a.b.c", "ab", "other"},
			after:  []string{"ab", "m.n.o", "m.n.o.b.c", "other"},
			moves:  map[string]string{"a": "m.n.o", "a.b.c": "m.n.o.b.c"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dbs := openN(t, dir, 2, nil)
			ids := map[string]string{}
			vals := map[string]int{}
			for i, ns := range tt.before {
				ids[ns] = seedPages(t, dir, ns, i+1)[0]
				vals[ns] = i + 1
			}
			reader := mustBegin(t, dbs[0], false)

			tx := mustBegin(t, dbs[1], true)
			_, err := tx.Insert(tt.from, item{N: 50}) // before the rename: moves along
			require.NoError(t, err)
			require.NoError(t, tx.RenameNamespace(tt.from, tt.to), "RenameNamespace(%q, %q)", tt.from, tt.to)
			assert.Equal(t, tt.after, mustNamespaces(t, tx), "Namespaces() inside the renaming transaction")
			for ns, id := range ids {
				if to, moved := tt.moves[ns]; moved {
					assert.Equal(t, vals[ns], readN(t, tx, to, id), "inside the transaction: %s moved to %s", ns, to)
					_, err := tx.Match(ns, "*")
					assert.ErrorIs(t, err, ErrNamespaceNotFound, "inside the transaction: Match(%s) under the old name", ns)
				}
			}
			_, err = tx.Insert(tt.to, item{N: 51}) // after the rename, under the new name
			require.NoError(t, err)
			require.NoError(t, tx.CreateNamespace(tt.from), "re-create %s in the renaming transaction", tt.from)
			_, err = tx.Insert(tt.from, item{N: 52})
			require.NoError(t, err)
			require.NoError(t, tx.Commit())
			after := append(slices.Clone(tt.after), tt.from)
			slices.Sort(after)
			tt.after = after

			for h, db := range append(slices.Clone(dbs), mustOpen(t, dir, nil)) {
				tx := mustBegin(t, db, false)
				assert.Equal(t, tt.after, mustNamespaces(t, tx), "handle %d: Namespaces()", h)
				for ns, id := range ids {
					to, moved := tt.moves[ns]
					if !moved {
						assert.Equal(t, vals[ns], readN(t, tx, ns, id), "handle %d: untouched %s", h, ns)
						continue
					}
					assert.Equal(t, vals[ns], readN(t, tx, to, id), "handle %d: %s moved to %s", h, ns, to)
					objs, err := tx.ReadPage(ns, id)
					switch {
					case ns != tt.from:
						assert.ErrorIs(t, err, ErrNamespaceNotFound, "handle %d: ReadPage(%s) under the old name", h, ns)
					case err == nil: // the re-created namespace may use the same page ID
						assert.NotContains(t, values(t, objs...), vals[ns], "handle %d: old page came back in re-created %s", h, ns)
					default:
						assert.ErrorIs(t, err, ErrNotFound, "handle %d: ReadPage(%s) in the re-created namespace", h, ns)
					}
				}
			}

			// The reader on the old snapshot keeps the old names and contents.
			assert.Equal(t, tt.before, mustNamespaces(t, reader), "old snapshot: Namespaces()")
			for ns, id := range ids {
				assert.Equal(t, vals[ns], readN(t, reader, ns, id), "old snapshot: ReadPage(%s)", ns)
			}
			_, err = reader.Match(tt.to, "*")
			assert.ErrorIs(t, err, ErrNamespaceNotFound, "old snapshot: Match(%s)", tt.to)
			require.NoError(t, reader.Commit())

			// The inserts landed where they were made: before the rename under the old name
			// (moved along), after it under the new one; the re-created old name holds only its own.
			now := mustBegin(t, dbs[0], false)
			assert.Subset(t, nsValues(t, now, tt.to), []int{50, 51}, "%s holds the inserts made before and after the rename", tt.to)
			assert.Equal(t, []int{52}, nsValues(t, now, tt.from), "re-created %s", tt.from)
		})
	}
}

func TestDeleteNamespaceWithReaders(t *testing.T) {
	tests := []struct {
		name     string
		iso      Isolation
		writable bool
		write    bool  // the reader also writes into another namespace
		want     error // the reader's commit
	}{
		{"read-only reader", Serializable, false, false, nil},
		{"writable reader, no writes", Serializable, true, false, nil},
		{"reader writes elsewhere/serializable", Serializable, true, true, ErrConflict},
		{"reader writes elsewhere/snapshot", Snapshot, true, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dbs := openN(t, dir, 2, &Options{Isolation: tt.iso})
			idA := seedPages(t, dir, "a", 1)[0]
			idAB := seedPages(t, dir, "a.b", 2)[0]
			seedPages(t, dir, "ab", 3)
			reader := mustBegin(t, dbs[0], tt.writable)
			require.NoError(t, dbs[1].Update(t.Context(), func(tx *Tx) error { return tx.DeleteNamespace("a") }))

			for h, db := range dbs {
				tx := mustBegin(t, db, false)
				assert.Equal(t, []string{"ab"}, mustNamespaces(t, tx), "handle %d: Namespaces() after delete", h)
				for _, ns := range []string{"a", "a.b"} {
					_, err := tx.Match(ns, "*")
					assert.ErrorIs(t, err, ErrNamespaceNotFound, "handle %d: Match(%s)", h, ns)
				}
				assert.Equal(t, []int{3}, nsValues(t, tx, "ab"), "handle %d: sibling ab", h)
			}
			assert.Equal(t, []string{"a", "a.b", "ab"}, mustNamespaces(t, reader), "old snapshot: Namespaces()")
			assert.Equal(t, 1, readN(t, reader, "a", idA), "old snapshot: a")
			assert.Equal(t, 2, readN(t, reader, "a.b", idAB), "old snapshot: a.b")
			assert.Equal(t, []int{2}, nsValues(t, reader, "a.b"), "old snapshot: Match(a.b)")
			if tt.write {
				_, err := reader.Insert("ab", item{N: 4})
				require.NoError(t, err)
			}
			err := reader.Commit()
			if tt.want == nil {
				require.NoError(t, err, "reader Commit")
				return
			}
			ce := conflictOf(t, err, reader.Snapshot())
			assert.Contains(t, []string{"a", "a.b"}, ce.Namespace, "ConflictError.Namespace: what the reader read was deleted")
			assert.Equal(t, []int{3}, nsValues(t, mustBegin(t, dbs[1], false), "ab"), "ab after the refused commit")
		})
	}
}

func TestConcurrentNamespaceOps(t *testing.T) {
	// Two transactions at one snapshot change the same names; the first to commit wins, the
	// second fails with ErrConflict and leaves nothing behind.
	create := func(ns string, n int) func(tx *Tx) error {
		return func(tx *Tx) error {
			if err := tx.CreateNamespace(ns); err != nil {
				return err
			}
			_, err := tx.Insert(ns, item{N: n})
			return err
		}
	}
	const lost = 77 // what the losing transaction inserts
	rename := func(from, to string) func(tx *Tx) error {
		return func(tx *Tx) error { return tx.RenameNamespace(from, to) }
	}
	drop := func(ns string) func(tx *Tx) error { return func(tx *Tx) error { return tx.DeleteNamespace(ns) } }
	tests := []struct {
		name        string
		first, then func(tx *Tx) error
		after       map[string][]int // namespaces and contents after the first commit only
	}{
		{"create x / create x", create("x", 1), create("x", lost), map[string][]int{"a": {1}, "b": {2}, "x": {1}}},
		{"rename a->x / create x", rename("a", "x"), create("x", lost), map[string][]int{"b": {2}, "x": {1}}},
		{"create x / rename a->x", create("x", 5), rename("a", "x"), map[string][]int{"a": {1}, "b": {2}, "x": {5}}},
		{"rename a->x / rename b->x", rename("a", "x"), rename("b", "x"), map[string][]int{"b": {2}, "x": {1}}},
		{"rename a->x / rename a->y", rename("a", "x"), rename("a", "y"), map[string][]int{"b": {2}, "x": {1}}},
		{"rename a->x / delete a", rename("a", "x"), drop("a"), map[string][]int{"b": {2}, "x": {1}}},
		{"delete a / delete a", drop("a"), drop("a"), map[string][]int{"b": {2}}},
		{"delete a / rename a->x", drop("a"), rename("a", "x"), map[string][]int{"b": {2}}},
		{"delete a / create a", drop("a"), func(tx *Tx) error {
			if err := tx.DeleteNamespace("a"); err != nil {
				return err
			}
			return create("a", lost)(tx)
		}, map[string][]int{"b": {2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dbs := openN(t, dir, 2, nil)
			seedPages(t, dir, "a", 1)
			seedPages(t, dir, "b", 2)
			t1 := mustBegin(t, dbs[0], true)
			t2 := mustBegin(t, dbs[1], true)
			require.NoError(t, tt.first(t1), "T1")
			require.NoError(t, tt.then(t2), "T2")
			require.NoError(t, t1.Commit(), "T1 Commit")
			conflictOf(t, t2.Commit(), t2.Snapshot())
			for h, db := range dbs {
				tx := mustBegin(t, db, false)
				assert.Equal(t, sortedKeys(tt.after), mustNamespaces(t, tx), "handle %d: Namespaces()", h)
				for ns, want := range tt.after {
					assert.Equal(t, want, nsValues(t, tx, ns), "handle %d: contents of %s (the loser inserts %d)", h, ns, lost)
				}
			}
		})
	}
}

func TestNamespaceErrors(t *testing.T) {
	invalidNames := []string{"", "a..b", "../x", ".txtdb", "a/b", `a\b`, ".hidden", "a.", ".a", "a.\x00", "a.\n", "a.b/../../c"}
	badPageIDs := []string{"", "1", "page", "page1", "page00001", "page000000", "page0000001", "page00000x",
		"PAGE000001", "page-00001", "../page000001", "page000001.json", "page000001/..", " page000001"}

	type tcase struct {
		name string
		do   func(tx *Tx, id string) error
		want error
	}
	var tests []tcase
	add := func(name string, want error, do func(tx *Tx, id string) error) {
		tests = append(tests, tcase{name, do, want})
	}

	// Existing names.
	add("CreateNamespace(committed)", ErrNamespaceExists, func(tx *Tx, _ string) error { return tx.CreateNamespace("ns") })
	add("CreateNamespace(committed child)", ErrNamespaceExists, func(tx *Tx, _ string) error { return tx.CreateNamespace("ns.child") })
	add("CreateNamespace twice in one transaction", ErrNamespaceExists, func(tx *Tx, _ string) error {
		if err := tx.CreateNamespace("fresh"); err != nil {
			return err
		}
		return tx.CreateNamespace("fresh")
	})
	add("RenameNamespace onto existing", ErrNamespaceExists, func(tx *Tx, _ string) error { return tx.RenameNamespace("ns", "other") })
	add("RenameNamespace with a child onto existing", ErrNamespaceExists, func(tx *Tx, _ string) error {
		// ns.child would land on taken.child.
		if err := tx.CreateNamespace("taken.child"); err != nil {
			return err
		}
		return tx.RenameNamespace("ns", "taken")
	})
	add("RenameNamespace onto one created in the transaction", ErrNamespaceExists, func(tx *Tx, _ string) error {
		if err := tx.CreateNamespace("fresh"); err != nil {
			return err
		}
		return tx.RenameNamespace("other", "fresh")
	})

	// Missing names.
	missing := map[string]func(tx *Tx, ns, id string) error{
		"ReadPage":        func(tx *Tx, ns, id string) error { _, err := tx.ReadPage(ns, id); return err },
		"Match":           func(tx *Tx, ns, _ string) error { _, err := tx.Match(ns, "*"); return err },
		"Insert":          func(tx *Tx, ns, _ string) error { _, err := tx.Insert(ns, item{N: 1}); return err },
		"UpdatePage":      func(tx *Tx, ns, id string) error { return tx.UpdatePage(ns, id, item{N: 1}) },
		"DeletePage":      func(tx *Tx, ns, id string) error { return tx.DeletePage(ns, id) },
		"DeleteNamespace": func(tx *Tx, ns, _ string) error { return tx.DeleteNamespace(ns) },
		"RenameNamespace": func(tx *Tx, ns, _ string) error { return tx.RenameNamespace(ns, "target") },
	}
	for _, name := range sortedKeys(missing) {
		f := missing[name]
		add(name+"(missing)", ErrNamespaceNotFound, func(tx *Tx, id string) error { return f(tx, "nope", id) })
		add(name+"(missing child of existing)", ErrNamespaceNotFound, func(tx *Tx, id string) error { return f(tx, "ns.nope", id) })
		add(name+"(deleted in this transaction)", ErrNamespaceNotFound, func(tx *Tx, id string) error {
			if err := tx.DeleteNamespace("other"); err != nil {
				return err
			}
			return f(tx, "other", id)
		})
		add(name+"(renamed away in this transaction)", ErrNamespaceNotFound, func(tx *Tx, id string) error {
			if err := tx.RenameNamespace("other", "other2"); err != nil {
				return err
			}
			return f(tx, "other", id)
		})
	}
	add("ReadPage(missing page)", ErrNotFound, func(tx *Tx, _ string) error { _, err := tx.ReadPage("ns", "page999999"); return err })

	// Invalid names, for every operation that takes one.
	for _, bad := range invalidNames {
		for _, name := range sortedKeys(missing) {
			f := missing[name]
			add(fmt.Sprintf("%s(%q)", name, bad), ErrInvalidName, func(tx *Tx, id string) error { return f(tx, bad, id) })
		}
		add(fmt.Sprintf("CreateNamespace(%q)", bad), ErrInvalidName, func(tx *Tx, _ string) error { return tx.CreateNamespace(bad) })
		add(fmt.Sprintf("RenameNamespace(ns, %q)", bad), ErrInvalidName, func(tx *Tx, _ string) error { return tx.RenameNamespace("ns", bad) })
	}
	// Bad page IDs in an existing namespace.
	for _, bad := range badPageIDs {
		add(fmt.Sprintf("ReadPage(ns, %q)", bad), ErrInvalidName, func(tx *Tx, _ string) error { _, err := tx.ReadPage("ns", bad); return err })
		add(fmt.Sprintf("UpdatePage(ns, %q)", bad), ErrInvalidName, func(tx *Tx, _ string) error { return tx.UpdatePage("ns", bad, item{N: 1}) })
		add(fmt.Sprintf("DeletePage(ns, %q)", bad), ErrInvalidName, func(tx *Tx, _ string) error { return tx.DeletePage("ns", bad) })
	}

	dir := t.TempDir()
	db := mustOpen(t, dir, nil)
	id := seedPages(t, dir, "ns", 1)[0]
	seedPages(t, dir, "ns.child", 2)
	seedPages(t, dir, "other", 3)
	seedPages(t, dir, "deep.er.still", 4)
	wantNames := []string{"deep.er.still", "ns", "ns.child", "other"}
	require.Equal(t, wantNames, namespaces(t, db))
	before := lastTSN(t, db)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx := mustBegin(t, db, true)
			_, err := tx.ReadPage("ns", id) // the page counts as read: only the name can be wrong
			require.NoError(t, err)
			err = tt.do(tx, id)
			require.ErrorIs(t, err, tt.want, "%s = %v, want %v", tt.name, err, tt.want)
			require.NoError(t, tx.Rollback())
		})
	}
	assert.Equal(t, before, lastTSN(t, db), "refused operations committed something")
	assert.Equal(t, wantNames, namespaces(t, db), "Namespaces() after refused operations")
	assert.Equal(t, 1, committedN(t, db, "ns", id))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Listing the namespaces counts as a read of the set of names: a transaction that acts on the
// list conflicts with a concurrent create (no write skew through Namespaces).
func TestNamespacesListIsARead(t *testing.T) {
	for _, iso := range []Isolation{Serializable, Snapshot} {
		t.Run(iso.String(), func(t *testing.T) {
			dir := t.TempDir()
			ids := seedPages(t, dir, "a", 0)
			dbs := openN(t, dir, 2, &Options{Isolation: iso})
			t1 := mustBegin(t, dbs[0], true)
			names, err := t1.Namespaces()
			require.NoError(t, err)
			readN(t, t1, "a", ids[0])
			require.NoError(t, t1.UpdatePage("a", ids[0], len(names)))

			t2 := mustBegin(t, dbs[1], true)
			readN(t, t2, "a", ids[0])
			require.NoError(t, t2.CreateNamespace("b"))
			require.NoError(t, t2.Commit())

			err = t1.Commit()
			if iso == Serializable {
				require.ErrorIs(t, err, ErrConflict, "list of names changed after the snapshot")
			} else {
				require.NoError(t, err, "Snapshot isolation checks writes only")
			}
		})
	}
}
