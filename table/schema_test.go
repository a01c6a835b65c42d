package table

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	stdmaps "maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/pages"
)

// userRow is the row of the schema tests.
type userRow struct {
	ID     int64  `json:"id"`
	Email  string `json:"email"`
	Team   string `json:"team"`
	Region string `json:"region"`
}

func userEmail(r *userRow) string  { return r.Email }
func userTeam(r *userRow) string   { return r.Team }
func userRegion(r *userRow) string { return r.Region }

func newUser(id int64) userRow {
	return userRow{ID: id, Email: fmt.Sprintf("u%d@example.com", id), Team: fmt.Sprintf("t%d", id%3), Region: fmt.Sprintf("r%d", id%4)}
}

// userCode is a version of the code defining table ns: which indexes it declares.
type userCode struct {
	name string
	def  func(ns string) *Table[int64, userRow]
}

// userCodes are the definitions other code may have of a table the store has with a unique
// "email" and a secondary "team" index: the same one, and fewer or different indexes.
var userCodes = []userCode{
	{"same", func(ns string) *Table[int64, userRow] {
		t := New(ns, func(r *userRow) int64 { return r.ID })
		Unique(t, "email", userEmail)
		Index(t, "team", userTeam)
		return t
	}},
	{"no indexes", func(ns string) *Table[int64, userRow] { return New(ns, func(r *userRow) int64 { return r.ID }) }},
	{"fewer indexes", func(ns string) *Table[int64, userRow] {
		t := New(ns, func(r *userRow) int64 { return r.ID })
		Unique(t, "email", userEmail)
		return t
	}},
	{"an index unique that is not", func(ns string) *Table[int64, userRow] {
		t := New(ns, func(r *userRow) int64 { return r.ID })
		Unique(t, "email", userEmail)
		Unique(t, "team", userTeam)
		return t
	}},
	{"an index of another type", func(ns string) *Table[int64, userRow] {
		t := New(ns, func(r *userRow) int64 { return r.ID })
		Unique(t, "email", userEmail)
		Index(t, "team", func(r *userRow) int { return len(r.Team) })
		return t
	}},
	{"an extra index", func(ns string) *Table[int64, userRow] {
		t := New(ns, func(r *userRow) int64 { return r.ID })
		Unique(t, "email", userEmail)
		Index(t, "team", userTeam)
		Index(t, "region", userRegion)
		return t
	}},
	{"an index renamed", func(ns string) *Table[int64, userRow] {
		t := New(ns, func(r *userRow) int64 { return r.ID })
		Unique(t, "email", userEmail)
		Index(t, "squad", userTeam)
		return t
	}},
}

type oldCodeConfig struct{ Dir, NS string }

// oldCodeResult is what one version of the code met: each write's error (all rolled back) and
// what Get returned.
type oldCodeResult struct {
	Code                   string
	Insert, Put, Delete    string // the errors ("" for none)
	InsertMM, PutMM, DelMM bool   // each matches ErrSchemaMismatch
	Get                    string // the row, rendered
	GetErr                 string
}

// oldCodeRole tries every version of the code on the table with a handle of its own.
func oldCodeRole(config string) error {
	var cfg oldCodeConfig
	if err := decodeConfig(config, &cfg); err != nil {
		return err
	}
	db, err := txtdb.Open(cfg.Dir, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	errText := func(err error) string {
		if err == nil {
			return ""
		}
		return err.Error()
	}
	for _, code := range userCodes {
		t := code.def(cfg.NS)
		res := oldCodeResult{Code: code.name}
		try := func(fn func(tx *txtdb.Tx) error) (string, bool, error) {
			tx, err := db.Begin(context.Background(), true)
			if err != nil {
				return "", false, err
			}
			err = fn(tx)
			if rerr := tx.Rollback(); rerr != nil {
				return "", false, rerr
			}
			return errText(err), errors.Is(err, ErrSchemaMismatch), nil
		}
		ins, put := newUser(1000), newUser(1)
		put.Team = "t9"
		if res.Insert, res.InsertMM, err = try(func(tx *txtdb.Tx) error { return t.Insert(tx, &ins) }); err != nil {
			return err
		}
		if res.Put, res.PutMM, err = try(func(tx *txtdb.Tx) error { return t.Put(tx, &put) }); err != nil {
			return err
		}
		if res.Delete, res.DelMM, err = try(func(tx *txtdb.Tx) error { return t.Delete(tx, 2) }); err != nil {
			return err
		}
		err := db.View(context.Background(), func(tx *txtdb.Tx) error {
			r, err := t.Get(tx, 3)
			if err == nil {
				res.Get = render(*r)
			}
			res.GetErr = errText(err)
			return nil
		})
		if err != nil {
			return err
		}
		if err := emit(res); err != nil {
			return err
		}
	}
	return db.Close()
}

// A process whose code defines fewer or other indexes than the store (none, fewer, one unique
// that is not, one of another value type, one more, one renamed) gets ErrSchemaMismatch from
// Insert, Put and Delete, and still gets rows by key; code that matches writes.
func TestOtherIndexesAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := txtdb.Open(dir, nil)
	require.NoError(t, err)
	const ns = "s.users"
	tbl := userCodes[0].def(ns)
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error {
		if err := tbl.Create(tx); err != nil {
			return err
		}
		for id := range int64(10) {
			u := newUser(id)
			if err := tbl.Insert(tx, &u); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, db.Close())
	c := startChild(t, "oldcode", oldCodeConfig{Dir: dir, NS: ns})
	for _, code := range userCodes {
		var res oldCodeResult
		c.expect(t, &res)
		require.Equal(t, code.name, res.Code)
		require.Empty(t, res.GetErr, "%s: Get", code.name)
		require.Equal(t, render(newUser(3)), res.Get, "%s: Get", code.name)
		if code.name == "same" {
			require.Empty(t, res.Insert+res.Put+res.Delete, "matching code writes")
			continue
		}
		require.True(t, res.InsertMM, "%s: Insert: %q, want ErrSchemaMismatch", code.name, res.Insert)
		require.True(t, res.PutMM, "%s: Put: %q, want ErrSchemaMismatch", code.name, res.Put)
		require.True(t, res.DelMM, "%s: Delete: %q, want ErrSchemaMismatch", code.name, res.Delete)
	}
	require.NoError(t, c.wait(t))
}

// migCode is one version of the code of the migration test.
type migCode struct {
	tbl       *Table[int64, userRow]
	email     *UniqueIndex[int64, userRow, string]
	secondary map[string]*SecondaryIndex[int64, userRow, string]
}

// migCodes are three versions of the code of the migration test: a unique "email" index, then a
// "region" index too, then a "team" index too.
func migCodes(ns string) []migCode {
	var out []migCode
	for v := range 3 {
		c := migCode{tbl: New(ns, func(r *userRow) int64 { return r.ID }), secondary: map[string]*SecondaryIndex[int64, userRow, string]{}}
		c.email = Unique(c.tbl, "email", userEmail)
		if v >= 1 {
			c.secondary["region"] = Index(c.tbl, "region", userRegion)
		}
		if v >= 2 {
			c.secondary["team"] = Index(c.tbl, "team", userTeam)
		}
		out = append(out, c)
	}
	return out
}

const migNS = "s.mig"

type migrateConfig struct{ Dir string }

// migLine is a line of the migrator.
type migLine struct {
	Ack        int64  `json:"ack,omitempty"`        // this row's insert was acknowledged
	Version    int    `json:"version"`              // by this version of the code (0, 1, 2)
	Mismatches int    `json:"mismatches,omitempty"` // after this many ErrSchemaMismatch of older versions
	Pending    int64  `json:"pending,omitempty"`    // a transaction inserting this row is open
	Committed  int64  `json:"committed,omitempty"`  // that transaction's Commit returned
	Err        string `json:"err,omitempty"`
	Conflict   bool   `json:"conflict,omitempty"` // ... with ErrConflict
	Ran        bool   `json:"ran,omitempty"`      // a run of inserts ended
}

// readBack finds row u through every index of code, in a transaction of its own.
func readBack(db *txtdb.DB, code migCode, u userRow) error {
	return db.View(context.Background(), func(tx *txtdb.Tx) error {
		r, err := code.email.Get(tx, u.Email)
		if err != nil || *r != u {
			return fmt.Errorf("email %s: %v, %v", u.Email, r, err)
		}
		values := map[string]string{"region": u.Region, "team": u.Team}
		for name, ix := range code.secondary {
			keys, _, err := ix.Find(tx, values[name]).Collect()
			if err != nil || !slices.Contains(keys, u.ID) {
				return fmt.Errorf("index %s value %s: %v, %v (row %d missing)", name, values[name], keys, err, u.ID)
			}
		}
		return nil
	})
}

// migrateRole writes rows to the migration test's table with the oldest version of the code
// that the store accepts: on ErrSchemaMismatch it moves on to the next version, as a process
// being upgraded would. After each insert it finds the row through every index of its code. Commands: "begin ID" opens a transaction inserting row ID; "commit"
// commits it; "insert ID" inserts row ID (by Update); "run N ID" inserts N rows from ID on.
func migrateRole(config string) error {
	var cfg migrateConfig
	if err := decodeConfig(config, &cfg); err != nil {
		return err
	}
	ctx := context.Background()
	db, err := txtdb.Open(cfg.Dir, &txtdb.Options{MaxRetries: 10000})
	if err != nil {
		return err
	}
	defer db.Close()
	codes := migCodes(migNS)
	version := 0
	insert := func(id int64) error {
		mm := 0
		for {
			u := newUser(id)
			err := db.Update(ctx, func(tx *txtdb.Tx) error { return codes[version].tbl.Insert(tx, &u) })
			if errors.Is(err, ErrSchemaMismatch) && version+1 < len(codes) {
				version++
				mm++
				continue
			}
			if err != nil {
				return fmt.Errorf("insert %d with version %d: %w", id, version, err)
			}
			if err := readBack(db, codes[version], u); err != nil {
				return err
			}
			return emit(migLine{Ack: id, Version: version, Mismatches: mm})
		}
	}
	var pending *txtdb.Tx
	var pendingID int64
	defer func() {
		if pending != nil {
			_ = pending.Rollback()
		}
	}()
	for cmd := range commands() {
		f := strings.Fields(cmd)
		arg := func(i int) int64 {
			n, _ := strconv.ParseInt(f[i], 10, 64)
			return n
		}
		switch f[0] {
		case "begin":
			if pending, err = db.Begin(ctx, true); err != nil {
				return err
			}
			pendingID = arg(1)
			u := newUser(pendingID)
			if err := codes[version].tbl.Insert(pending, &u); err != nil {
				return err
			}
			err = emit(migLine{Pending: pendingID, Version: version})
		case "commit":
			cerr := pending.Commit()
			pending = nil
			l := migLine{Committed: pendingID, Version: version, Conflict: errors.Is(cerr, txtdb.ErrConflict)}
			if cerr != nil {
				l.Err = cerr.Error()
			}
			err = emit(l)
		case "insert":
			err = insert(arg(1))
		case "run":
			for i := range arg(1) {
				if err = insert(arg(2) + i); err != nil {
					break
				}
			}
			if err == nil {
				err = emit(migLine{Ran: true, Version: version})
			}
		default:
			err = fmt.Errorf("command %q", cmd)
		}
		if err != nil {
			return err
		}
	}
	return db.Close()
}

// Migrate adds an index filled from the rows there, in one transaction that conflicts with a
// write of another process in between; that process's transaction begun before the migration
// conflicts at commit, and its old code then gets ErrSchemaMismatch, so no row escapes the new
// index. A second migration runs while the other process inserts as fast as it can, moving to
// the new code when the store tells it to. Check is clean after each, and every row the other
// process acknowledged is found through the new indexes.
func TestMigrateWhileAnotherProcessWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := txtdb.Open(dir, &txtdb.Options{MaxRetries: 10000})
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	codes := migCodes(migNS)
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return codes[0].tbl.Create(tx) }))
	shrink(t, db, migNS, 2048)
	rows := map[int64]bool{}
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error {
		for id := range int64(40) {
			u := newUser(id)
			if err := codes[0].tbl.Insert(tx, &u); err != nil {
				return err
			}
			rows[id] = true
		}
		return nil
	}))
	c := startChild(t, "migrator", migrateConfig{Dir: dir})
	var l migLine
	expect := func() { l = migLine{}; c.expect(t, &l) }

	c.send(t, "begin 100") // a writer with the old code, begun before the migration
	expect()
	require.Equal(t, int64(100), l.Pending)
	mig, err := db.Begin(ctx, true)
	require.NoError(t, err)
	require.NoError(t, codes[1].tbl.Migrate(mig))
	c.send(t, "insert 101") // committed while the migration runs
	expect()
	require.Equal(t, migLine{Ack: 101, Version: 0}, l)
	rows[101] = true
	require.ErrorIs(t, mig.Commit(), txtdb.ErrConflict, "a migration that missed a row written meanwhile must not commit")
	require.NoError(t, db.Update(ctx, codes[1].tbl.Migrate))
	c.send(t, "commit")
	expect()
	require.Equal(t, int64(100), l.Committed)
	require.True(t, l.Conflict, "the old code's transaction begun before the migration commits after it: %s", l.Err)
	c.send(t, "insert 100")
	expect()
	require.Equal(t, migLine{Ack: 100, Version: 1, Mismatches: 1}, l, "the old code gets ErrSchemaMismatch, the new code inserts")
	rows[100] = true
	requireMigrated(t, db, codes[1], rows)

	// The second migration, while the other process inserts.
	n := 60
	if testing.Short() {
		n = 20
	}
	c.send(t, fmt.Sprintf("run %d 200", n))
	expect()
	require.Equal(t, int64(200), l.Ack)
	rows[200] = true
	migrations := 0
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { migrations++; return codes[2].tbl.Migrate(tx) }))
	before, after := 1, 0
	for {
		expect()
		if l.Ran {
			break
		}
		rows[l.Ack] = true
		if l.Version == 2 {
			after++
		} else {
			before++
		}
	}
	t.Logf("second migration: %d attempts; the other process inserted %d rows with the old code, %d with the new", migrations, before, after)
	require.Len(t, rows, 40+2+n)
	requireMigrated(t, db, codes[2], rows)
	c.stop()
	require.NoError(t, c.wait(t))
	requireNoOrphans(t, db, migNS)

	// The checker fails on an acknowledged row that is missing, and on a row missing from an
	// index (planted with raw page writes).
	extra := stdmaps.Clone(rows)
	extra[999] = true
	require.NotEmpty(t, failures(func(tb checkTB) { requireMigrated(tb, db, codes[2], extra) }), "a row missing")
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error {
		for _, id := range rawTreePages(t, tx, migNS, rawRootsOf(t, tx, migNS)["team"]) {
			objs, err := tx.ReadPage(migNS, id)
			require.NoError(t, err)
			for i, o := range objs[1:] {
				var e struct{ PK int64 }
				if o.Decode(&e) == nil && e.PK == 7 {
					return tx.UpdatePage(migNS, id, objectsOf(slices.Delete(objs, i+1, i+2))...)
				}
			}
		}
		return fmt.Errorf("no team entry of row 7")
	}))
	require.NotEmpty(t, failures(func(tb checkTB) { requireMigrated(tb, db, codes[2], rows) }), "an index entry missing")
}

func objectsOf(objs []txtdb.Object) []any {
	out := make([]any, len(objs))
	for i, o := range objs {
		out[i] = o
	}
	return out
}

// checkTB is what the checkers below need of a *testing.T.
type checkTB interface {
	require.TestingT
	Helper()
}

// tbRecorder is a checkTB that records failures instead of failing the test: it shows that a
// checker fails on a planted violation.
type tbRecorder struct{ errs []string }

func (r *tbRecorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *tbRecorder) FailNow() { panic(r) }
func (r *tbRecorder) Helper()  {}

// failures runs a checker and returns the failures it reported.
func failures(check func(tb checkTB)) (errs []string) {
	r := &tbRecorder{}
	defer func() {
		if p := recover(); p != nil && p != any(r) {
			panic(p)
		}
		errs = r.errs
	}()
	check(r)
	return r.errs
}

// requireMigrated requires Check to be clean and every index of code to find exactly the rows.
func requireMigrated(t checkTB, db *txtdb.DB, code migCode, rows map[int64]bool) {
	t.Helper()
	probs, err := Check(context.Background(), db)
	require.NoError(t, err)
	require.Empty(t, probs)
	var ids []int64
	for id := range rows {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	values := map[string]func(*userRow) string{"region": userRegion, "team": userTeam}
	require.NoError(t, db.View(context.Background(), func(tx *txtdb.Tx) error {
		keys, _, err := code.tbl.Scan(tx).Collect()
		require.NoError(t, err)
		require.Equal(t, ids, keys, "the rows")
		for _, id := range ids {
			u := newUser(id)
			r, err := code.email.Get(tx, u.Email)
			require.NoError(t, err, "email %s", u.Email)
			require.Equal(t, u, *r)
		}
		for name, ix := range code.secondary {
			byValue := map[string][]int64{}
			for _, id := range ids {
				u := newUser(id)
				byValue[values[name](&u)] = append(byValue[values[name](&u)], id)
			}
			for v, want := range byValue {
				got, _, err := ix.Find(tx, v).Collect()
				require.NoError(t, err)
				require.Equal(t, want, got, "index %s value %s", name, v)
			}
		}
		return nil
	}))
}

// rawTreePages returns every page of the tree at root in namespace ns, read with plain txtdb
// calls.
func rawTreePages(t checkTB, tx *txtdb.Tx, ns, root string) []string {
	t.Helper()
	objs, err := tx.ReadPage(ns, root)
	require.NoError(t, err)
	var h struct{ Node string }
	require.NoError(t, objs[0].Decode(&h))
	out := []string{root}
	if h.Node == "inner" {
		for _, o := range objs[1:] {
			var c struct{ Child string }
			require.NoError(t, o.Decode(&c))
			out = append(out, rawTreePages(t, tx, ns, c.Child)...)
		}
	}
	return out
}

// pageFiles returns, by page ID, the version files of namespace ns in dir, and every file of
// the attic.
func pageFiles(t checkTB, dir, ns string) (map[string][]string, []string) {
	t.Helper()
	byPage := map[string][]string{}
	folder := filepath.Join(dir, filepath.FromSlash(strings.ReplaceAll(ns, ".", "/")))
	entries, err := os.ReadDir(folder)
	if !errors.Is(err, fs.ErrNotExist) {
		require.NoError(t, err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		id, _, _, err := pages.ParseVersionFileName(e.Name())
		require.NoError(t, err, "a file that is no page version in %s: %s", ns, e.Name())
		byPage[id] = append(byPage[id], e.Name())
	}
	var attic []string
	err = filepath.WalkDir(filepath.Join(dir, pages.MetaDir, "attic"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			attic = append(attic, p)
		}
		return err
	})
	if !errors.Is(err, fs.ErrNotExist) {
		require.NoError(t, err)
	}
	return byPage, attic
}

// DropIndex removes the index: code that still defines it gets ErrSchemaMismatch on writes,
// code that does not writes, Check is clean, and after a checkpoint (which cleans up) no file of
// the index's pages is left in the table's folder, while the other trees' are.
func TestDropIndexLeavesNoFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := txtdb.Open(dir, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	const ns = "s.drop"
	with, without := userCodes[0].def(ns), userCodes[2].def(ns) // email and team; email only
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return with.Create(tx) }))
	shrink(t, db, ns, 512)
	for id := range int64(100) {
		u := newUser(id)
		require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return with.Insert(tx, &u) }))
	}
	var team, kept []string
	require.NoError(t, db.View(ctx, func(tx *txtdb.Tx) error {
		roots := rawRootsOf(t, tx, ns)
		team = rawTreePages(t, tx, ns, roots["team"])
		kept = append(rawTreePages(t, tx, ns, roots[""]), rawTreePages(t, tx, ns, roots["email"])...)
		return nil
	}))
	require.Greater(t, len(team), 2, "the team index has several pages")
	require.NoError(t, db.Checkpoint(ctx))
	files, _ := pageFiles(t, dir, ns)
	for _, id := range team {
		require.NotEmpty(t, files[id], "before the drop, page %s of the index has files", id)
	}

	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return without.DropIndex(tx, "team") }))
	u := newUser(100)
	err = db.Update(ctx, func(tx *txtdb.Tx) error { return with.Insert(tx, &u) })
	require.ErrorIs(t, err, ErrSchemaMismatch, "code that still defines the dropped index")
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return without.Insert(tx, &u) }))
	probs, err := Check(ctx, db)
	require.NoError(t, err)
	require.Empty(t, probs)
	require.NoError(t, db.View(ctx, func(tx *txtdb.Tx) error {
		info, err := Describe(tx, ns)
		require.NoError(t, err)
		require.Equal(t, []IndexInfo{{Name: "email", Unique: true, Key: "string"}}, info.Indexes)
		return nil
	}))

	require.NoError(t, db.Checkpoint(ctx))
	files, attic := pageFiles(t, dir, ns)
	for _, id := range team {
		require.Empty(t, files[id], "page %s of the dropped index still has files", id)
	}
	for _, id := range kept {
		require.Len(t, files[id], 1, "page %s of a kept tree has one version file", id)
	}
	require.Empty(t, attic)
	requireNoOrphans(t, db, ns)
	// ... which fails on a page nothing reaches.
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { _, err := tx.NewPage(ns, header{Node: "leaf"}); return err }))
	require.NotEmpty(t, failures(func(tb checkTB) { requireNoOrphans(tb, db, ns) }), "a page nothing reaches")
}

// requireNoOrphans checkpoints and requires the pages with files in the table's folder to be
// exactly its schema page and the nodes reachable from its roots: nothing dropped, split or
// left behind by a failed writer lingers there.
func requireNoOrphans(t checkTB, db *txtdb.DB, ns string) {
	t.Helper()
	require.NoError(t, db.Checkpoint(context.Background()))
	files, _ := pageFiles(t, db.Dir(), ns)
	want := []string{"page000001"}
	require.NoError(t, db.View(context.Background(), func(tx *txtdb.Tx) error {
		for _, root := range rawRootsOf(t, tx, ns) {
			want = append(want, rawTreePages(t, tx, ns, root)...)
		}
		return nil
	}))
	slices.Sort(want)
	got := slices.Sorted(stdmaps.Keys(files))
	require.Equal(t, want, got, "the pages of %s with files, and its reachable pages", ns)
}

func rawRootsOf(t checkTB, tx *txtdb.Tx, ns string) map[string]string {
	t.Helper()
	objs, err := tx.ReadPage(ns, "page000001")
	require.NoError(t, err)
	var doc struct {
		Root    string
		Indexes []struct{ Name, Root string }
	}
	require.NoError(t, objs[0].Decode(&doc))
	roots := map[string]string{"": doc.Root}
	for _, ix := range doc.Indexes {
		roots[ix.Name] = ix.Root
	}
	return roots
}

// Drop deletes the table: after a checkpoint no file of it is left, in its folder or in the
// attic, and the table beside it is untouched.
func TestDropLeavesNoFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := txtdb.Open(dir, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	gone, stays := userCodes[0].def("s.gone"), userCodes[0].def("s.stays")
	for _, tbl := range []*Table[int64, userRow]{gone, stays} {
		require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return tbl.Create(tx) }))
		shrink(t, db, tbl.Name(), 512)
		for id := range int64(30) {
			u := newUser(id)
			require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return tbl.Insert(tx, &u) }))
		}
	}
	require.NoError(t, db.Checkpoint(ctx))
	files, _ := pageFiles(t, dir, "s.gone")
	require.Greater(t, len(files), 3, "before the drop, the table has files")

	require.NoError(t, db.Update(ctx, gone.Drop))
	require.NoError(t, db.View(ctx, func(tx *txtdb.Tx) error {
		names, err := Tables(tx)
		require.NoError(t, err)
		require.Equal(t, []string{"s.stays"}, names)
		return nil
	}))
	require.NoError(t, db.Checkpoint(ctx))
	files, attic := pageFiles(t, dir, "s.gone")
	require.Empty(t, files, "files of the dropped table")
	require.Empty(t, attic, "the attic")
	_, err = os.Stat(filepath.Join(dir, "s", "gone"))
	require.ErrorIs(t, err, fs.ErrNotExist, "the dropped table's folder")
	kept, _ := pageFiles(t, dir, "s.stays")
	require.Greater(t, len(kept), 3, "the other table's files")
	requireNoOrphans(t, db, "s.stays")
	probs, err := Check(ctx, db)
	require.NoError(t, err)
	require.Empty(t, probs)
	probs, err = db.Check(ctx)
	require.NoError(t, err)
	require.Empty(t, probs)
}
