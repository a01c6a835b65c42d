package txtdb

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

// Transactions on several handles of one directory stand in for transactions in several
// processes: handles coordinate only through the files, exactly like processes.

func TestPageSizeOverflow(t *testing.T) {
	const pageSize = 128
	small := func(i int) any { return map[string]any{"i": i, "pad": "0123456789"} } // ~25 bytes
	big := map[string]any{"i": 1000, "pad": strings.Repeat("x", 3*pageSize)}
	tests := []struct {
		name     string
		opts     Options
		objs     []any
		oneTx    bool
		packs    bool // some page must hold more than one object
		alone    []int
		perPage1 bool // every page holds exactly one object
	}{
		{name: "small objects in one transaction", opts: Options{PageSize: pageSize},
			objs: seq(20, small), oneTx: true, packs: true},
		{name: "small objects in separate transactions", opts: Options{PageSize: pageSize},
			objs: seq(20, small)},
		{name: "oversized object in one transaction", opts: Options{PageSize: pageSize},
			objs: append(append(seq(3, small), big), small(3), small(4)), oneTx: true, packs: true, alone: []int{1000}},
		{name: "oversized object in separate transactions", opts: Options{PageSize: pageSize},
			objs: append(append(seq(3, small), big), small(3), small(4)), alone: []int{1000}},
		{name: "one object per page in one transaction", opts: Options{OneObjectPerPage: true},
			objs: seq(10, small), oneTx: true, perPage1: true},
		{name: "one object per page in separate transactions", opts: Options{OneObjectPerPage: true},
			objs: seq(10, small), perPage1: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			db := mustOpen(t, dir, &tt.opts)
			seedPages(t, dir, "ns")
			idOf := map[int]string{}
			insert := func(tx *Tx, v any) error {
				id, err := tx.Insert("ns", v)
				idOf[v.(map[string]any)["i"].(int)] = id
				return err
			}
			if tt.oneTx {
				require.NoError(t, db.Update(t.Context(), func(tx *Tx) error {
					for _, v := range tt.objs {
						if err := insert(tx, v); err != nil {
							return err
						}
					}
					return nil
				}))
			} else {
				for _, v := range tt.objs {
					require.NoError(t, db.Update(t.Context(), func(tx *Tx) error { return insert(tx, v) }))
				}
			}
			got, err := mustBegin(t, db, false).Match("ns", "*")
			require.NoError(t, err)
			limit := tt.opts.PageSize
			if limit == 0 {
				limit = pages.DefaultPageSize
			}
			seen := map[int]string{}
			packed := false
			for id, objs := range got {
				budget := 0
				for _, o := range objs {
					var v struct{ I int }
					require.NoError(t, o.Decode(&v))
					_, dup := seen[v.I]
					require.False(t, dup, "object %d stored twice", v.I)
					seen[v.I] = id
					budget += o.Size() + pages.ObjectOverhead
				}
				if len(objs) > 1 {
					packed = true
					assert.LessOrEqual(t, budget, limit, "page %s holds %d objects using %d bytes, over the page size", id, len(objs), budget)
					assert.False(t, tt.opts.OneObjectPerPage, "page %s holds %d objects with OneObjectPerPage", id, len(objs))
				}
			}
			require.Len(t, seen, len(tt.objs), "objects stored")
			assert.Equal(t, idOf, seen, "page of each object: as Insert reported")
			if tt.packs {
				assert.True(t, packed, "no page holds more than one object: inserts did not fill pages")
			}
			if tt.perPage1 {
				assert.Len(t, got, len(tt.objs), "pages with OneObjectPerPage")
			} else {
				assert.Greater(t, len(got), 1, "pages: inserts never spilled to a new page")
			}
			for _, i := range tt.alone {
				assert.Len(t, got[seen[i]], 1, "oversized object %d must have its page to itself", i)
			}
		})
	}
}

func seq(n int, f func(int) any) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func TestOptionsMismatch(t *testing.T) {
	tests := []struct {
		name string
		opts *Options
		want error // nil: accepted
	}{
		{"nil", nil, nil},
		{"zero", &Options{}, nil},
		{"same format", &Options{Format: JSON}, nil},
		{"same page size", &Options{PageSize: 4096}, nil},
		{"same format and page size", &Options{Format: JSON, PageSize: 4096}, nil},
		{"process settings differ", &Options{Isolation: Snapshot, OneObjectPerPage: true, NoSync: true, MaxRetries: 1, LockTimeout: time.Second, FileMode: 0o600}, nil},
		{"other format YAML", &Options{Format: YAML}, ErrOptionsMismatch},
		{"other format XML", &Options{Format: XML}, ErrOptionsMismatch},
		{"other page size", &Options{PageSize: 8192}, ErrOptionsMismatch},
		{"same format, other page size", &Options{Format: JSON, PageSize: 1}, ErrOptionsMismatch},
		{"DefaultOptions", DefaultOptions(), ErrOptionsMismatch},
	}
	dir := t.TempDir()
	creator := mustOpen(t, dir, &Options{Format: JSON, PageSize: 4096})
	seedPages(t, dir, "ns", 1)
	for _, stillOpen := range []bool{true, false} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/creator open=%v", tt.name, stillOpen), func(t *testing.T) {
				db, err := Open(dir, tt.opts)
				if tt.want != nil {
					assert.ErrorIs(t, err, tt.want, "Open(%+v) = %v, want %v", tt.opts, err, tt.want)
					assert.Nil(t, db, "Open returned a handle with an error")
					if db != nil {
						_ = db.Close()
					}
					return
				}
				require.NoError(t, err, "Open(%+v)", tt.opts)
				defer func() { require.NoError(t, db.Close()) }()
				assert.Equal(t, JSON, db.Format(), "Format()")
				assert.Equal(t, []int{1}, nsValues(t, mustBegin(t, db, false), "ns"), "contents")
			})
		}
		if stillOpen {
			require.NoError(t, creator.Close())
		}
	}
	// The store kept its settings through all the refused opens.
	db := mustOpen(t, dir, &Options{Format: JSON, PageSize: 4096})
	assert.Equal(t, JSON, db.Format())

	t.Run("format persists", func(t *testing.T) {
		for _, f := range []Format{YAML, XML} {
			t.Run(f.String(), func(t *testing.T) {
				dir := t.TempDir()
				db, err := Open(dir, &Options{Format: f, PageSize: 1024})
				require.NoError(t, err)
				require.NoError(t, db.Close())
				db2 := mustOpen(t, dir, nil)
				assert.Equal(t, f, db2.Format(), "Format() of a store reopened with nil Options")
				var id string
				require.NoError(t, db2.Update(t.Context(), func(tx *Tx) error {
					if err := tx.CreateNamespace("ns"); err != nil {
						return err
					}
					id, err = tx.Insert("ns", item{N: 42})
					return err
				}))
				objs := mustRead(t, mustBegin(t, db2, false), "ns", id)
				require.Len(t, objs, 1)
				assert.Equal(t, f, objs[0].Format(), "Format of a stored object")
				assert.ErrorIs(t, openErr(dir, &Options{Format: JSON}), ErrOptionsMismatch, "Open with JSON on a %v store", f)
				assert.ErrorIs(t, openErr(dir, &Options{PageSize: 2048}), ErrOptionsMismatch, "Open with another page size")
				assert.NoError(t, openErr(dir, &Options{Format: f, PageSize: 1024}), "Open with the store's own settings")
			})
		}
	})
}

// openErr opens dir and closes the handle at once, returning Open's error.
func openErr(dir string, opts *Options) error {
	db, err := Open(dir, opts)
	if err != nil {
		return err
	}
	return db.Close()
}

// record carries the values whose type and digits must survive the store.
type record struct {
	XMLName xml.Name  `json:"-" yaml:"-" xml:"record"`
	Big     int64     `json:"big" yaml:"big" xml:"big"`
	Max     int64     `json:"max" yaml:"max" xml:"max"`
	Min     int64     `json:"min" yaml:"min" xml:"min"`
	Umax    uint64    `json:"umax" yaml:"umax" xml:"umax"`
	Digits  string    `json:"digits" yaml:"digits" xml:"digits"`
	ID      uuid.UUID `json:"id" yaml:"id" xml:"id"`
	At      time.Time `json:"at" yaml:"at" xml:"at"`
}

func TestTypeFidelity(t *testing.T) {
	want := record{
		Big:    1<<53 + 1,
		Max:    math.MaxInt64,
		Min:    math.MinInt64,
		Umax:   math.MaxUint64,
		Digits: "123",
		ID:     uuid.MustParse("0190c5a1-7b3e-7c2d-9f00-00000000abcd"),
		At:     time.Date(2024, 2, 29, 13, 14, 15, 123456789, time.FixedZone("IST", 5*3600+30*60)),
	}
	wantDigits := map[string]string{
		"big": "9007199254740993", "max": "9223372036854775807",
		"min": "-9223372036854775808", "umax": "18446744073709551615",
	}
	check := func(t *testing.T, where string, objs []Object) {
		t.Helper()
		require.Len(t, objs, 1, "%s: objects", where)
		var got record
		require.NoError(t, objs[0].Decode(&got), "%s: Decode(%s)", where, objs[0].Text())
		assert.Equal(t, want.Big, got.Big, "%s: Big (2^53+1)", where)
		assert.Equal(t, want.Max, got.Max, "%s: Max", where)
		assert.Equal(t, want.Min, got.Min, "%s: Min", where)
		assert.Equal(t, want.Umax, got.Umax, "%s: Umax", where)
		assert.Equal(t, want.Digits, got.Digits, "%s: Digits", where)
		assert.Equal(t, want.ID, got.ID, "%s: ID", where)
		assert.True(t, want.At.Equal(got.At), "%s: At = %v, want %v", where, got.At, want.At)
		_, gotOff := got.At.Zone()
		_, wantOff := want.At.Zone()
		assert.Equal(t, wantOff, gotOff, "%s: At zone offset", where)
	}
	for _, f := range []Format{JSON, YAML, XML} {
		t.Run(f.String(), func(t *testing.T) {
			dir := t.TempDir()
			a := mustOpen(t, dir, &Options{Format: f})
			b := mustOpen(t, dir, nil)
			var id string
			require.NoError(t, a.Update(t.Context(), func(tx *Tx) error {
				if err := tx.CreateNamespace("types"); err != nil {
					return err
				}
				var err error
				if id, err = tx.Insert("types", want); err != nil {
					return err
				}
				check(t, "own write", mustRead(t, tx, "types", id))
				return nil
			}))
			check(t, "same handle", mustRead(t, mustBegin(t, a, false), "types", id))
			check(t, "other handle", mustRead(t, mustBegin(t, b, false), "types", id))
			check(t, "new handle", mustRead(t, mustBegin(t, mustOpen(t, dir, nil), false), "types", id))

			if f != XML { // XML cannot decode into a map
				var m map[string]any
				objs := mustRead(t, mustBegin(t, b, false), "types", id)
				require.NoError(t, objs[0].Decode(&m), "Decode into map[string]any")
				for k, digits := range wantDigits {
					assert.Equal(t, digits, fmt.Sprint(m[k]), "map[%q] must keep its digits exactly (%T)", k, m[k])
				}
				assert.Equal(t, "123", m["digits"], "map[\"digits\"]: a string of digits stays a string")
			}

			// An Object read back and handed to UpdatePage is stored verbatim.
			var text string
			require.NoError(t, b.Update(t.Context(), func(tx *Tx) error {
				objs, err := tx.ReadPage("types", id)
				if err != nil {
					return err
				}
				text = objs[0].Text()
				return tx.UpdatePage("types", id, item{N: 1}, objs[0])
			}))
			objs := mustRead(t, mustBegin(t, a, false), "types", id)
			require.Len(t, objs, 2)
			assert.Equal(t, text, objs[1].Text(), "Text() of an Object stored through UpdatePage")
			check(t, "after UpdatePage", objs[1:])
		})
	}
	t.Run("JSON text kept verbatim", func(t *testing.T) {
		// Text a re-encoding would change: key order, number spelling, escapes.
		const text = `{"z":1.50,"a":1e3,"big":9007199254740993,"s":"\u00e9<>"}`
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(text), &m))
		reencoded, err := json.Marshal(m)
		require.NoError(t, err)
		require.NotEqual(t, text, string(reencoded), "the test text must differ from its re-encoding")

		dir := t.TempDir()
		dbs := openN(t, dir, 2, nil)
		seedPages(t, dir, "raw")
		var id string
		require.NoError(t, dbs[0].Update(t.Context(), func(tx *Tx) error {
			id, err = tx.Insert("raw", json.RawMessage(text))
			return err
		}))
		objs := mustRead(t, mustBegin(t, dbs[1], false), "raw", id)
		require.Len(t, objs, 1)
		assert.Equal(t, text, objs[0].Text(), "Text() after Insert")
		require.NoError(t, dbs[1].Update(t.Context(), func(tx *Tx) error {
			objs, err := tx.ReadPage("raw", id)
			if err != nil {
				return err
			}
			return tx.UpdatePage("raw", id, objs[0], objs[0])
		}))
		objs = mustRead(t, mustBegin(t, dbs[0], false), "raw", id)
		require.Len(t, objs, 2)
		for i, o := range objs {
			assert.Equal(t, text, o.Text(), "Text() of object %d after UpdatePage with read Objects", i)
		}
		var n struct{ Big json.Number }
		require.NoError(t, objs[0].Decode(&n))
		assert.Equal(t, "9007199254740993", n.Big.String())
	})
}

// user is a struct every format can store.
type user struct {
	XMLName xml.Name `json:"-" yaml:"-" xml:"user"`
	Name    string   `json:"name" yaml:"name" xml:"name"`
	Age     int      `json:"age" yaml:"age" xml:"age,attr"`
	Tags    []string `json:"tags" yaml:"tags" xml:"tag"`
}

func TestFormatsEndToEnd(t *testing.T) {
	for _, f := range []Format{JSON, YAML, XML} {
		t.Run(f.String(), func(t *testing.T) {
			dir := t.TempDir()
			a := mustOpen(t, dir, &Options{Format: f})
			b := mustOpen(t, dir, nil) // takes the store's format
			require.Equal(t, f, b.Format(), "Format() of a handle opened with nil Options")
			users := []user{
				{Name: "ann", Age: 31, Tags: []string{"admin", "ops"}},
				{Name: "bob <&> \"quoted\"", Age: 42, Tags: []string{"x"}},
				{Name: "ünïcode ✓", Age: 7, Tags: []string{"ü"}},
			}
			ids := make([]string, len(users))
			require.NoError(t, a.Update(t.Context(), func(tx *Tx) error {
				if err := tx.CreateNamespace("app.users"); err != nil {
					return err
				}
				for i, u := range users {
					var err error
					if ids[i], err = tx.Insert("app.users", u); err != nil {
						return err
					}
				}
				return nil
			}))
			decodeAll := func(tx *Tx) []user {
				pages, err := tx.Match("app.users", "*")
				require.NoError(t, err)
				var out []user
				for _, objs := range pages {
					for _, o := range objs {
						assert.Equal(t, f, o.Format(), "Object.Format()")
						var u user
						require.NoError(t, o.Decode(&u), "Decode(%s)", o.Text())
						u.XMLName = xml.Name{}
						out = append(out, u)
					}
				}
				slices.SortFunc(out, func(x, y user) int { return x.Age - y.Age })
				return out
			}
			want := slices.Clone(users)
			slices.SortFunc(want, func(x, y user) int { return x.Age - y.Age })
			assert.Equal(t, want, decodeAll(mustBegin(t, b, false)), "users read by the other handle")

			// b renames ann (read-modify-write of her page, other objects kept as read), a sees it.
			require.NoError(t, b.Update(t.Context(), func(tx *Tx) error {
				objs, err := tx.ReadPage("app.users", ids[0])
				if err != nil {
					return err
				}
				next := make([]any, len(objs))
				for i, o := range objs {
					next[i] = o
					var u user
					if err := o.Decode(&u); err != nil {
						return err
					}
					if u.Name == "ann" {
						u.Name = "anne"
						next[i] = u
					}
				}
				return tx.UpdatePage("app.users", ids[0], next...)
			}))
			want = slices.Clone(users)
			want[0].Name = "anne"
			slices.SortFunc(want, func(x, y user) int { return x.Age - y.Age })
			assert.Equal(t, want, decodeAll(mustBegin(t, a, false)), "users after the update")

			if f == XML {
				err := a.Update(t.Context(), func(tx *Tx) error {
					_, err := tx.Insert("app.users", map[string]any{"name": "map"})
					return err
				})
				assert.ErrorIs(t, err, ErrUnsupported, "Insert of a map into an XML store")
				assert.Len(t, decodeAll(mustBegin(t, a, false)), len(users), "users after the refused insert")
			}
		})
	}
}

func TestContextBoundsTransaction(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir, nil)
	id := seedPages(t, dir, "ns", 1)[0]
	before := lastTSN(t, db)

	ctx, cancel := context.WithCancel(t.Context())
	tx, err := db.Begin(ctx, true)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	require.NoError(t, incr(tx, "ns", id))
	_, err = tx.Insert("ns", item{N: 2})
	require.NoError(t, err)
	cancel()
	_, err = tx.ReadPage("ns", id)
	assert.ErrorIs(t, err, context.Canceled, "ReadPage after the transaction's context ended")
	assert.ErrorIs(t, tx.Commit(), context.Canceled, "Commit after the transaction's context ended")
	assert.Equal(t, before, lastTSN(t, db), "a commit refused for its context must not happen")
	assert.Equal(t, []int{1}, nsValues(t, mustBegin(t, db, false), "ns"))

	_, err = db.Begin(ctx, false)
	assert.ErrorIs(t, err, context.Canceled, "Begin with an ended context")
	calls := 0
	err = db.Update(ctx, func(tx *Tx) error { calls++; return nil })
	assert.ErrorIs(t, err, context.Canceled, "Update with an ended context")
	assert.Zero(t, calls, "fn calls of Update with an ended context")
}

func TestClosedHandle(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir, nil)
	other := mustOpen(t, dir, nil)
	id := seedPages(t, dir, "ns", 1)[0]
	tx := mustBegin(t, db, true)
	require.NoError(t, incr(tx, "ns", id))
	ro := mustBegin(t, db, false)
	require.NoError(t, db.Close())

	_, err := ro.ReadPage("ns", id)
	assert.ErrorIs(t, err, ErrClosed, "ReadPage in a transaction of a closed handle")
	assert.ErrorIs(t, tx.Commit(), ErrClosed, "Commit in a transaction of a closed handle")
	_, err = db.Begin(t.Context(), false)
	assert.ErrorIs(t, err, ErrClosed, "Begin on a closed handle")
	assert.ErrorIs(t, db.Update(t.Context(), func(*Tx) error { return nil }), ErrClosed, "Update on a closed handle")
	assert.ErrorIs(t, db.View(t.Context(), func(*Tx) error { return nil }), ErrClosed, "View on a closed handle")
	assert.Equal(t, 1, committedN(t, other, "ns", id), "the closed handle's open transaction must not have committed")
}

// A store of another layout version (here version 6, whose readers rebuild a version from at
// most 16 append records, in txtdb.json) is refused with ErrVersion, the root package's
// re-export, and left as it was.
func TestOtherLayoutVersion(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, nil)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	path := filepath.Join(dir, "txtdb.json")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	old := bytes.Replace(data, []byte(`"txtdb": 7,`), []byte(`"txtdb": 6,`), 1)
	require.NotEqual(t, data, old, "txtdb.json names layout version 7")
	require.NoError(t, os.WriteFile(path, old, 0o644))
	_, err = Open(dir, nil)
	require.ErrorIs(t, err, ErrVersion)
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, old, after)
}
