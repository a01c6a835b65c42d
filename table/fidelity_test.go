package table

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb"
)

// fidelityRow holds a field of every scalar type, extreme values included, besides its key and
// an indexed value of the key's type.
type fidelityRow[K any] struct {
	ID   K         `json:"id"`
	Alt  K         `json:"alt"` // unique index "alt"; the key is also indexed ("same")
	I    int       `json:"i"`
	I8   int8      `json:"i8"`
	I16  int16     `json:"i16"`
	I32  int32     `json:"i32"`
	I64  int64     `json:"i64"`
	U    uint      `json:"u"`
	U8   uint8     `json:"u8"`
	U16  uint16    `json:"u16"`
	U32  uint32    `json:"u32"`
	U64  uint64    `json:"u64"`
	S    string    `json:"s"`
	UUID uuid.UUID `json:"uuid"`
	T    time.Time `json:"t"`
}

// east is a location other than UTC (and other than the machine's).
var east = time.FixedZone("east", 5*3600+1800)

// fidelityCase is one key type of the fidelity test: one table of rows keyed by it.
type fidelityCase interface {
	name() string
	create(tx *txtdb.Tx) error
	// report reads the table back by key, by Range, by Scan and through both indexes, and
	// renders what it got with its types.
	report(tx *txtdb.Tx) ([]string, error)
	// want is the report of a faithful store.
	want() []string
}

type fidelity[K any] struct {
	ns    string
	keys  []K
	cmp   func(a, b K) int
	canon func(K) K // the key as the store returns it (a time key in UTC)
}

func (c fidelity[K]) name() string { return c.ns }

func (c fidelity[K]) table() (*Table[K, fidelityRow[K]], *UniqueIndex[K, fidelityRow[K], K], *SecondaryIndex[K, fidelityRow[K], K]) {
	t := New(c.ns, func(r *fidelityRow[K]) K { return r.ID })
	return t, Unique(t, "alt", func(r *fidelityRow[K]) K { return r.Alt }), Index(t, "same", func(r *fidelityRow[K]) K { return r.ID })
}

// row is the i-th key's row; its fields cycle through extreme values.
func (c fidelity[K]) row(i int) fidelityRow[K] {
	j := i % 3
	return fidelityRow[K]{
		ID: c.keys[i], Alt: c.keys[len(c.keys)-1-i],
		I:    []int{math.MinInt, -1, math.MaxInt}[j],
		I8:   []int8{math.MinInt8, -1, math.MaxInt8}[j],
		I16:  []int16{math.MinInt16, -1, math.MaxInt16}[j],
		I32:  []int32{math.MinInt32, -7, math.MaxInt32}[j],
		I64:  []int64{math.MinInt64, -1, math.MaxInt64}[j],
		U:    []uint{0, 7, math.MaxUint}[j],
		U8:   []uint8{0, 7, math.MaxUint8}[j],
		U16:  []uint16{0, 7, math.MaxUint16}[j],
		U32:  []uint32{0, 7, math.MaxUint32}[j],
		U64:  []uint64{0, 1<<53 + 1, math.MaxUint64}[j],
		S:    []string{"", "7", "é\x00\n\"<&>"}[j],
		UUID: []uuid.UUID{uuid.Nil, uuid.MustParse("0190f2a4-1c2b-7d3e-8f40-5a6b7c8d9e0f"), uuid.Max}[j],
		T: []time.Time{time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(2026, 3, 4, 5, 6, 7, 8, east),
			time.Date(2262, 1, 2, 3, 4, 5, 6, time.FixedZone("west", -8*3600))}[j],
	}
}

func (c fidelity[K]) create(tx *txtdb.Tx) error {
	t, _, _ := c.table()
	if err := t.Create(tx); err != nil {
		return err
	}
	for i := range c.keys {
		r := c.row(i)
		if err := t.Insert(tx, &r); err != nil {
			return fmt.Errorf("%s: insert %d: %w", c.ns, i, err)
		}
	}
	return nil
}

func (c fidelity[K]) sorted() []K {
	return slices.SortedFunc(slices.Values(c.keys), c.cmp)
}

func (c fidelity[K]) index(k K) int {
	return slices.IndexFunc(c.keys, func(x K) bool { return c.cmp(x, k) == 0 })
}

func (c fidelity[K]) report(tx *txtdb.Tx) ([]string, error) {
	t, byAlt, bySame := c.table()
	var out []string
	for _, k := range c.keys {
		r, err := t.Get(tx, k)
		if err != nil {
			return nil, fmt.Errorf("Get(%v): %w", k, err)
		}
		out = append(out, "get "+render(*r))
	}
	rows := func(via string, rs *Rows[K, fidelityRow[K]]) error {
		for k, r := range rs.All() {
			out = append(out, via+" "+render(k)+" "+render(*r))
		}
		return rs.Err()
	}
	s := c.sorted()
	if err := rows("range", t.Range(tx, s[1], s[len(s)-1])); err != nil {
		return nil, err
	}
	if err := rows("scan", t.Scan(tx)); err != nil {
		return nil, err
	}
	for _, k := range c.keys {
		r, err := byAlt.Get(tx, c.row(c.index(k)).Alt)
		if err != nil {
			return nil, fmt.Errorf("alt Get: %w", err)
		}
		out = append(out, "alt "+render(*r))
		if err := rows("find", bySame.Find(tx, k)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c fidelity[K]) want() []string {
	var out []string
	for i := range c.keys {
		out = append(out, "get "+render(c.row(i)))
	}
	s := c.sorted()
	for _, k := range s[1 : len(s)-1] {
		out = append(out, "range "+render(c.canon(k))+" "+render(c.row(c.index(k))))
	}
	for _, k := range s {
		out = append(out, "scan "+render(c.canon(k))+" "+render(c.row(c.index(k))))
	}
	for i, k := range c.keys {
		out = append(out, "alt "+render(c.row(i)), "find "+render(c.canon(k))+" "+render(c.row(i)))
	}
	return out
}

// render writes v with the type of every part: "int32(-7)", "uuid.UUID(...)", a time as its
// instant and offset (a location's name does not survive any text format), a struct field by
// field.
func render(v any) string {
	var b strings.Builder
	var walk func(rv reflect.Value)
	walk = func(rv reflect.Value) {
		switch x := rv.Interface().(type) {
		case time.Time:
			_, off := x.Zone()
			fmt.Fprintf(&b, "time.Time(%d%+d)", x.UnixNano(), off)
			return
		case uuid.UUID:
			fmt.Fprintf(&b, "uuid.UUID(%s)", x)
			return
		}
		if rv.Kind() != reflect.Struct {
			fmt.Fprintf(&b, "%T(%#v)", rv.Interface(), rv.Interface())
			return
		}
		fmt.Fprintf(&b, "%T{", rv.Interface())
		for i := range rv.NumField() {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(rv.Type().Field(i).Name + ": ")
			walk(rv.Field(i))
		}
		b.WriteString("}")
	}
	walk(reflect.ValueOf(v))
	return b.String()
}

func same[K any](k K) K { return k }

// fidelityCases covers every key type: strings, each integer type with its extremes, UUIDs, times
// in locations other than UTC, Key2 and Key3.
func fidelityCases() []fidelityCase {
	utc := func(t time.Time) time.Time { return t.UTC() }
	return []fidelityCase{
		fidelity[string]{"fid.string", []string{"7", "", "a", "ab", "é", "\x00", "Z", "a\x00"}, cmp.Compare[string], same[string]},
		fidelity[int]{"fid.int", []int{7, math.MinInt, -1, 0, math.MaxInt}, cmp.Compare[int], same[int]},
		fidelity[int8]{"fid.int8", []int8{7, math.MinInt8, -1, 0, math.MaxInt8}, cmp.Compare[int8], same[int8]},
		fidelity[int16]{"fid.int16", []int16{7, math.MinInt16, -1, 0, math.MaxInt16}, cmp.Compare[int16], same[int16]},
		fidelity[int32]{"fid.int32", []int32{7, math.MinInt32, -1, 0, math.MaxInt32}, cmp.Compare[int32], same[int32]},
		fidelity[int64]{"fid.int64", []int64{7, math.MinInt64, -1, 0, math.MaxInt64, 1<<53 + 1}, cmp.Compare[int64], same[int64]},
		fidelity[uint]{"fid.uint", []uint{7, 0, math.MaxUint}, cmp.Compare[uint], same[uint]},
		fidelity[uint8]{"fid.uint8", []uint8{7, 0, math.MaxUint8}, cmp.Compare[uint8], same[uint8]},
		fidelity[uint16]{"fid.uint16", []uint16{7, 0, math.MaxUint16}, cmp.Compare[uint16], same[uint16]},
		fidelity[uint32]{"fid.uint32", []uint32{7, 0, math.MaxUint32}, cmp.Compare[uint32], same[uint32]},
		fidelity[uint64]{"fid.uint64", []uint64{7, 0, 1<<53 + 1, math.MaxUint64}, cmp.Compare[uint64], same[uint64]},
		fidelity[uuid.UUID]{"fid.uuid", []uuid.UUID{uuid.MustParse("0190f2a4-1c2b-7d3e-8f40-5a6b7c8d9e0f"), uuid.Nil, uuid.Max,
			uuid.MustParse("f47ac10b-58cc-4372-a567-0e02b2c3d479")}, cmpUUID, same[uuid.UUID]},
		fidelity[time.Time]{"fid.time", []time.Time{time.Date(2026, 3, 4, 5, 6, 7, 8, east), time.Unix(0, math.MinInt64).In(east),
			time.Unix(0, math.MaxInt64).In(east), time.Date(1969, 12, 31, 23, 59, 59, 999999999, east), time.Unix(0, 0).In(east)}, cmpTime, utc},
		fidelity[Key2[string, int32]]{"fid.key2", []Key2[string, int32]{{"7", 7}, {"7", -7}, {"", math.MinInt32}, {"a", math.MaxInt32}, {"7", 0}},
			func(a, b Key2[string, int32]) int { return cmp.Or(cmp.Compare(a.A, b.A), cmp.Compare(a.B, b.B)) }, same[Key2[string, int32]]},
		fidelity[Key3[int64, uuid.UUID, time.Time]]{"fid.key3", []Key3[int64, uuid.UUID, time.Time]{
			{-1, uuid.Max, time.Date(2026, 3, 4, 5, 6, 7, 8, east)}, {-1, uuid.Nil, time.Date(2026, 3, 4, 5, 6, 7, 8, east)},
			{-1, uuid.Nil, time.Date(2026, 3, 4, 5, 6, 7, 9, east)}, {math.MaxInt64, uuid.Nil, time.Unix(0, 0).In(east)},
			{math.MinInt64, uuid.Max, time.Unix(0, math.MaxInt64).In(east)}},
			func(a, b Key3[int64, uuid.UUID, time.Time]) int {
				return cmp.Or(cmp.Compare(a.A, b.A), bytes.Compare(a.B[:], b.B[:]), a.C.Compare(b.C))
			},
			func(k Key3[int64, uuid.UUID, time.Time]) Key3[int64, uuid.UUID, time.Time] { k.C = k.C.UTC(); return k }},
	}
}

type fidelityConfig struct{ Dir string }

// fidelityReport is the reader's line per table.
type fidelityReport struct {
	Table string   `json:"table"`
	Lines []string `json:"lines"`
}

// fidelityRole reads every fidelity table back with a handle of its own and reports what it got.
func fidelityRole(config string) error {
	var cfg fidelityConfig
	if err := decodeConfig(config, &cfg); err != nil {
		return err
	}
	db, err := txtdb.Open(cfg.Dir, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, c := range fidelityCases() {
		var lines []string
		if err := db.View(context.Background(), func(tx *txtdb.Tx) error {
			lines, err = c.report(tx)
			return err
		}); err != nil {
			return fmt.Errorf("%s: %w", c.name(), err)
		}
		if err := emit(fidelityReport{Table: c.name(), Lines: lines}); err != nil {
			return err
		}
	}
	return db.Close()
}

// Rows written by this process with every key type come back unchanged, with their types, in
// another process: by key, by Range, by Scan, through a unique index and a secondary index on
// values of the key's type. A time key comes back as the same instant, in UTC. In a JSON store
// and in a YAML store.
func TestTypeFidelityAcrossProcesses(t *testing.T) {
	for _, f := range []txtdb.Format{txtdb.JSON, txtdb.YAML} {
		t.Run(f.String(), func(t *testing.T) { runFidelity(t, f) })
	}
}

func runFidelity(t *testing.T, f txtdb.Format) {
	dir := t.TempDir()
	db, err := txtdb.Open(dir, &txtdb.Options{Format: f})
	require.NoError(t, err)
	cases := fidelityCases()
	for _, c := range cases {
		require.NoError(t, db.Update(context.Background(), c.create), c.name())
	}
	require.NoError(t, db.Close())
	reader := startChild(t, "reader", fidelityConfig{Dir: dir})
	for _, c := range cases {
		var rep fidelityReport
		reader.expect(t, &rep)
		require.Equal(t, c.name(), rep.Table)
		require.Equal(t, c.want(), rep.Lines, "what another process read from %s", c.name())
	}
	require.NoError(t, reader.wait(t))
}

// render tells apart what the fidelity test must tell apart.
func TestRenderTellsApart(t *testing.T) {
	pairs := [][2]any{
		{int32(7), int64(7)},
		{int64(7), "7"},
		{uuid.Nil, uuid.Nil.String()},
		{int64(math.MaxInt64), int64(math.MaxInt64 - 1)},
		{time.Unix(0, 1).In(east), time.Unix(0, 1).UTC()},
		{time.Unix(0, 1), time.Unix(0, 2)},
		{Key2[string, int32]{"7", 7}, Key2[string, int64]{"7", 7}},
		{fidelityRow[int32]{I64: 1}, fidelityRow[int32]{I64: 2}},
	}
	for _, p := range pairs {
		require.NotEqual(t, render(p[0]), render(p[1]), "%#v and %#v", p[0], p[1])
	}
	require.Equal(t, render(time.Date(2026, 1, 2, 3, 4, 5, 6, east)), render(time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", 5*3600+1800))),
		"a location's name is not rendered")
}

// noteRow is the row of the key type mismatch tests.
type noteRow[K any] struct {
	ID   K      `json:"id"`
	Note string `json:"note"`
}

func noteTable[K any](ns string) *Table[K, noteRow[K]] {
	return New(ns, func(r *noteRow[K]) K { return r.ID })
}

var noteUUID = uuid.MustParse("6ba7b810-9dad-11d1-80b4-00c04fd430c8")

// mismatchResult is one check of the mismatch role: the error it met, and the row it got.
type mismatchResult struct {
	Check    string `json:"check"`
	Err      string `json:"err,omitempty"`
	Mismatch bool   `json:"mismatch,omitempty"` // errors.Is(err, ErrSchemaMismatch)
	NotFound bool   `json:"not_found,omitempty"`
	Got      string `json:"got,omitempty"` // the row (or key, for scans) as render writes it
}

// mismatchChecks are the mismatch role's checks: code that declares a key type, used on a table
// created with that type or another one.
func mismatchChecks() []struct {
	name string
	fn   func(tx *txtdb.Tx) (any, error)
} {
	i64 := noteTable[int64]("m.i32") // an int32 table read as int64
	wrongStr := noteTable[string]("m.i64")
	wrongI64 := noteTable[int64]("m.str")
	wrongUUID := noteTable[string]("m.uuid")
	get := func(err error) (any, error) { return nil, err }
	return []struct {
		name string
		fn   func(tx *txtdb.Tx) (any, error)
	}{
		{"int32 table: Get as int32", func(tx *txtdb.Tx) (any, error) { r, err := noteTable[int32]("m.i32").Get(tx, 7); return deref(r), err }},
		{"int32 table: Scan as int32", func(tx *txtdb.Tx) (any, error) {
			ks, _, err := noteTable[int32]("m.i32").Scan(tx).Collect()
			return ks, err
		}},
		{"int32 table: Get as int64", func(tx *txtdb.Tx) (any, error) { r, err := i64.Get(tx, 7); return deref(r), err }},
		{"int32 table: Range as int64", func(tx *txtdb.Tx) (any, error) { _, _, err := i64.Range(tx, 0, 100).Collect(); return get(err) }},
		{"int32 table: empty Range as int64", func(tx *txtdb.Tx) (any, error) { _, _, err := i64.Range(tx, 7, 7).Collect(); return get(err) }},
		{"int32 table: From as int64", func(tx *txtdb.Tx) (any, error) { _, _, err := i64.From(tx, 7).Collect(); return get(err) }},
		{"int32 table: Scan as int64", func(tx *txtdb.Tx) (any, error) { _, _, err := i64.Scan(tx).Collect(); return get(err) }},
		{"int32 table: Count as int64", func(tx *txtdb.Tx) (any, error) { _, err := i64.Count(tx); return get(err) }},
		{"int32 table: Insert as int64", func(tx *txtdb.Tx) (any, error) { return get(i64.Insert(tx, &noteRow[int64]{ID: 8})) }},
		{"int32 table: Put as int64", func(tx *txtdb.Tx) (any, error) { return get(i64.Put(tx, &noteRow[int64]{ID: 7})) }},
		{"int32 table: Delete as int64", func(tx *txtdb.Tx) (any, error) { return get(i64.Delete(tx, 7)) }},
		{"int64 table: Get 7", func(tx *txtdb.Tx) (any, error) { r, err := noteTable[int64]("m.i64").Get(tx, 7); return deref(r), err }},
		{"string table: Get \"7\"", func(tx *txtdb.Tx) (any, error) {
			r, err := noteTable[string]("m.str").Get(tx, "7")
			return deref(r), err
		}},
		{"int64 table: Get \"7\"", func(tx *txtdb.Tx) (any, error) { r, err := wrongStr.Get(tx, "7"); return deref(r), err }},
		{"int64 table: Insert \"7\"", func(tx *txtdb.Tx) (any, error) { return get(wrongStr.Insert(tx, &noteRow[string]{ID: "7"})) }},
		{"string table: Get 7", func(tx *txtdb.Tx) (any, error) { r, err := wrongI64.Get(tx, 7); return deref(r), err }},
		{"string table: Put 7", func(tx *txtdb.Tx) (any, error) { return get(wrongI64.Put(tx, &noteRow[int64]{ID: 7})) }},
		{"uuid table: Get as string", func(tx *txtdb.Tx) (any, error) { r, err := wrongUUID.Get(tx, noteUUID.String()); return deref(r), err }},
		{"uuid table: Scan as string", func(tx *txtdb.Tx) (any, error) { _, _, err := wrongUUID.Scan(tx).Collect(); return get(err) }},
		{"uuid table: Insert as string", func(tx *txtdb.Tx) (any, error) {
			return get(wrongUUID.Insert(tx, &noteRow[string]{ID: uuid.NewString()}))
		}},
		{"uuid table: Get as uuid", func(tx *txtdb.Tx) (any, error) {
			r, err := noteTable[uuid.UUID]("m.uuid").Get(tx, noteUUID)
			return deref(r), err
		}},
		{"uuid table: Scan as uuid", func(tx *txtdb.Tx) (any, error) {
			ks, _, err := noteTable[uuid.UUID]("m.uuid").Scan(tx).Collect()
			return ks, err
		}},
	}
}

func deref[V any](p *V) any {
	if p == nil {
		return nil
	}
	return *p
}

// mismatchRole runs the mismatch checks with a handle of its own, each in a transaction it rolls
// back, and reports each result.
func mismatchRole(config string) error {
	var cfg fidelityConfig
	if err := decodeConfig(config, &cfg); err != nil {
		return err
	}
	db, err := txtdb.Open(cfg.Dir, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, c := range mismatchChecks() {
		tx, err := db.Begin(context.Background(), true)
		if err != nil {
			return err
		}
		got, err := c.fn(tx)
		if rerr := tx.Rollback(); rerr != nil {
			return rerr
		}
		res := mismatchResult{Check: c.name, Mismatch: errors.Is(err, ErrSchemaMismatch), NotFound: errors.Is(err, txtdb.ErrNotFound)}
		if err != nil {
			res.Err = err.Error()
		}
		if got != nil && err == nil {
			res.Got = render(got)
		}
		if err := emit(res); err != nil {
			return err
		}
	}
	return db.Close()
}

// The earlier system's failures, through a second process: (a) a table created with int32 keys,
// used by code that declares int64 keys, answers ErrSchemaMismatch to every call, not a lookup
// that finds nothing; the int64 7 and the string "7" are never confused, and a key of the
// other type is refused with ErrSchemaMismatch; (b) a table created with uuid.UUID keys, used by
// code that declares string keys, answers ErrSchemaMismatch, and the UUID key comes back as a
// uuid.UUID.
func TestKeyTypeMismatchAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	db, err := txtdb.Open(dir, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(context.Background(), func(tx *txtdb.Tx) error {
		return errors.Join(
			createNotes(tx, noteTable[int32]("m.i32"), noteRow[int32]{7, "int32 seven"}, noteRow[int32]{-7, "int32 minus seven"}),
			createNotes(tx, noteTable[int64]("m.i64"), noteRow[int64]{7, "int64 seven"}),
			createNotes(tx, noteTable[string]("m.str"), noteRow[string]{"7", "string seven"}),
			createNotes(tx, noteTable[uuid.UUID]("m.uuid"), noteRow[uuid.UUID]{noteUUID, "a uuid"}),
		)
	}))
	require.NoError(t, db.Close())
	want := map[string]mismatchResult{
		"int32 table: Get as int32":  {Got: render(noteRow[int32]{7, "int32 seven"})},
		"int32 table: Scan as int32": {Got: render([]int32{-7, 7})},
		"int64 table: Get 7":         {Got: render(noteRow[int64]{7, "int64 seven"})},
		"string table: Get \"7\"":    {Got: render(noteRow[string]{"7", "string seven"})},
		"uuid table: Get as uuid":    {Got: render(noteRow[uuid.UUID]{noteUUID, "a uuid"})},
		"uuid table: Scan as uuid":   {Got: render([]uuid.UUID{noteUUID})},
	}
	c := startChild(t, "mismatch", fidelityConfig{Dir: dir})
	for _, check := range mismatchChecks() {
		var res mismatchResult
		c.expect(t, &res)
		require.Equal(t, check.name, res.Check)
		w, ok := want[check.name]
		if !ok {
			require.True(t, res.Mismatch, "%s: %q, want ErrSchemaMismatch", res.Check, res.Err)
			require.False(t, res.NotFound, "%s: %q is not a lookup that finds nothing", res.Check, res.Err)
			continue
		}
		require.Empty(t, res.Err, res.Check)
		require.Equal(t, w.Got, res.Got, res.Check)
	}
	require.NoError(t, c.wait(t))
}

func createNotes[K any](tx *txtdb.Tx, t *Table[K, noteRow[K]], rows ...noteRow[K]) error {
	if err := t.Create(tx); err != nil {
		return err
	}
	for _, r := range rows {
		if err := t.Insert(tx, &r); err != nil {
			return err
		}
	}
	return nil
}
