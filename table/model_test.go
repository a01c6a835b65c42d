package table

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb"
)

// row is the model test's row: a key, a unique email and a non-unique team.
type row[K any] struct {
	ID    K      `json:"id"`
	Email string `json:"email"`
	Team  string `json:"team"`
	N     int32  `json:"n"`
}

// keyKind is one key type of the model test: how to draw a key and how keys order naturally
// (written independently of the encoding under test).
type keyKind[K any] struct {
	name string
	gen  func(r *rand.Rand) K
	cmp  func(a, b K) int
}

func seed(t *testing.T) uint64 {
	if s := os.Getenv("TXTDB_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		return n
	}
	return uint64(time.Now().UnixNano())
}

var zones = []*time.Location{time.UTC, time.FixedZone("east", 5*3600+1800), time.FixedZone("west", -8*3600)}

func cmpTime(a, b time.Time) int { return a.Compare(b) }

func cmpUUID(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }

func TestModel(t *testing.T) {
	strs := []string{"", "a", "ab", "abc", "b", "\x00", "a\x00", "é", "zz", "Z", "-1", "10", "9"}
	uuids := make([]uuid.UUID, 12)
	for i := range uuids {
		uuids[i] = uuid.New()
	}
	uuids[0] = uuid.Nil
	uuids[1] = uuid.Max
	base := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	t.Run("int64", func(t *testing.T) {
		runModel(t, keyKind[int64]{"int64", func(r *rand.Rand) int64 {
			return []int64{-1 << 63, -1, 0, 1, 1<<63 - 1, -300, 300, 7}[r.IntN(8)] + int64(r.IntN(3))
		}, cmp.Compare[int64]})
	})
	t.Run("int32", func(t *testing.T) {
		runModel(t, keyKind[int32]{"int32", func(r *rand.Rand) int32 { return int32(r.IntN(60) - 30) }, cmp.Compare[int32]})
	})
	t.Run("uint16", func(t *testing.T) {
		runModel(t, keyKind[uint16]{"uint16", func(r *rand.Rand) uint16 {
			return []uint16{0, 1, 2, 255, 256, 65535, 1000}[r.IntN(7)]
		}, cmp.Compare[uint16]})
	})
	t.Run("string", func(t *testing.T) {
		runModel(t, keyKind[string]{"string", func(r *rand.Rand) string { return strs[r.IntN(len(strs))] }, cmp.Compare[string]})
	})
	t.Run("uuid", func(t *testing.T) {
		runModel(t, keyKind[uuid.UUID]{"uuid", func(r *rand.Rand) uuid.UUID { return uuids[r.IntN(len(uuids))] }, cmpUUID})
	})
	t.Run("time", func(t *testing.T) {
		runModel(t, keyKind[time.Time]{"time", func(r *rand.Rand) time.Time {
			return base.Add(time.Duration(r.IntN(20)-10) * time.Hour).In(zones[r.IntN(len(zones))])
		}, cmpTime})
	})
	t.Run("key2", func(t *testing.T) {
		runModel(t, keyKind[Key2[string, int64]]{"key2", func(r *rand.Rand) Key2[string, int64] {
			return Key2[string, int64]{strs[r.IntN(5)], int64(r.IntN(5) - 2)}
		}, func(a, b Key2[string, int64]) int { return cmp.Or(cmp.Compare(a.A, b.A), cmp.Compare(a.B, b.B)) }})
	})
	t.Run("key3", func(t *testing.T) {
		runModel(t, keyKind[Key3[int8, uuid.UUID, time.Time]]{"key3", func(r *rand.Rand) Key3[int8, uuid.UUID, time.Time] {
			return Key3[int8, uuid.UUID, time.Time]{int8(r.IntN(3) - 1), uuids[r.IntN(3)], base.Add(time.Duration(r.IntN(3)) * time.Second).In(zones[r.IntN(3)])}
		}, func(a, b Key3[int8, uuid.UUID, time.Time]) int {
			return cmp.Or(cmp.Compare(a.A, b.A), cmpUUID(a.B, b.B), cmpTime(a.C, b.C))
		}})
	})
}

// runModel runs random transactions of inserts, puts, deletes, gets, ranges and index lookups
// against a table and against a map, and compares everything after every transaction. Small
// nodes make the trees split often.
func runModel[K any](t *testing.T, kk keyKind[K]) {
	s := seed(t)
	t.Logf("seed %d (TXTDB_SEED=%d to repeat)", s, s)
	r := rand.New(rand.NewPCG(s, 0))
	ctx := context.Background()
	db, err := txtdb.Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer db.Close()

	tbl := New("model.rows", func(x *row[K]) K { return x.ID })
	byEmail := Unique(tbl, "email", func(x *row[K]) string { return x.Email })
	byTeam := Index(tbl, "team", func(x *row[K]) string { return x.Team })
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return tbl.Create(tx) }))
	shrink(t, db, tbl.ns, 600)

	enc := func(k K) string {
		e, err := tbl.kc.kt.enc(tbl.kc.toDyn(k))
		require.NoError(t, err)
		return e
	}
	model := map[string]row[K]{}
	emailPool := 40
	newRow := func() row[K] {
		return row[K]{ID: kk.gen(r), Email: fmt.Sprintf("u%d@example.com", r.IntN(emailPool)),
			Team: fmt.Sprintf("team%d", r.IntN(4)), N: r.Int32()}
	}
	emailTaken := func(m map[string]row[K], email, except string) bool {
		for e, x := range m {
			if x.Email == email && e != except {
				return true
			}
		}
		return false
	}
	steps := 400
	if testing.Short() {
		steps = 150
	}
	for step := range steps {
		next := copyModel(model)
		var want error // the error the model expects from the transaction
		var log []string
		err := db.Update(ctx, func(tx *txtdb.Tx) error {
			next, want, log = copyModel(model), nil, nil
			for range 1 + r.IntN(6) {
				switch op := r.IntN(10); {
				case op < 3: // insert
					x := newRow()
					e := enc(x.ID)
					log = append(log, fmt.Sprintf("insert %v %s", x.ID, x.Email))
					_, dup := next[e]
					err := tbl.Insert(tx, &x)
					if dup || emailTaken(next, x.Email, "") {
						require.ErrorIs(t, err, ErrDuplicateKey, "step %d %v", step, log)
						var de *DuplicateKeyError
						require.ErrorAs(t, err, &de)
						want = err
						return err
					}
					require.NoError(t, err, "step %d %v", step, log)
					next[e] = x
				case op < 5: // put
					x := newRow()
					e := enc(x.ID)
					log = append(log, fmt.Sprintf("put %v %s", x.ID, x.Email))
					err := tbl.Put(tx, &x)
					if emailTaken(next, x.Email, e) {
						require.ErrorIs(t, err, ErrDuplicateKey, "step %d %v", step, log)
						want = err
						return err
					}
					require.NoError(t, err, "step %d %v", step, log)
					next[e] = x
				case op < 7: // delete
					k := kk.gen(r)
					e := enc(k)
					log = append(log, fmt.Sprintf("delete %v", k))
					err := tbl.Delete(tx, k)
					if _, ok := next[e]; !ok {
						require.ErrorIs(t, err, txtdb.ErrNotFound, "step %d %v", step, log)
						continue
					}
					require.NoError(t, err, "step %d %v", step, log)
					delete(next, e)
				case op < 8: // get
					k := kk.gen(r)
					got, err := tbl.Get(tx, k)
					x, ok := next[enc(k)]
					if !ok {
						require.ErrorIs(t, err, txtdb.ErrNotFound)
						continue
					}
					require.NoError(t, err)
					requireRow(t, kk, x, got)
				case op < 9: // range
					lo, hi := kk.gen(r), kk.gen(r)
					var want []row[K]
					for _, x := range next {
						if kk.cmp(x.ID, lo) >= 0 && kk.cmp(x.ID, hi) < 0 {
							want = append(want, x)
						}
					}
					slices.SortFunc(want, func(a, b row[K]) int { return kk.cmp(a.ID, b.ID) })
					ks, vs, err := tbl.Range(tx, lo, hi).Collect()
					require.NoError(t, err)
					require.Len(t, vs, len(want), "range [%v, %v)", lo, hi)
					for i := range want {
						require.Zero(t, kk.cmp(want[i].ID, ks[i]))
						requireRow(t, kk, want[i], vs[i])
					}
				default: // index lookups
					email := fmt.Sprintf("u%d@example.com", r.IntN(emailPool))
					got, err := byEmail.Get(tx, email)
					var holder *row[K]
					for _, x := range next {
						if x.Email == email {
							holder = &x
						}
					}
					if holder == nil {
						require.ErrorIs(t, err, txtdb.ErrNotFound)
					} else {
						require.NoError(t, err)
						requireRow(t, kk, *holder, got)
					}
				}
			}
			return nil
		})
		if want != nil {
			require.ErrorIs(t, err, want)
			continue
		}
		require.NoError(t, err, "step %d %v", step, log)
		model = next
		if step%10 == 0 || step == steps-1 {
			verify(t, db, tbl, byTeam, kk, model)
		}
	}
	verify(t, db, tbl, byTeam, kk, model)
	probs, err := Check(ctx, db)
	require.NoError(t, err)
	require.Empty(t, probs)
}

func copyModel[K any](m map[string]row[K]) map[string]row[K] {
	out := make(map[string]row[K], len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func requireRow[K any](t *testing.T, kk keyKind[K], want row[K], got *row[K]) {
	t.Helper()
	require.NotNil(t, got)
	require.Zero(t, kk.cmp(want.ID, got.ID), "key: want %v, got %v", want.ID, got.ID)
	require.Equal(t, want.Email, got.Email)
	require.Equal(t, want.Team, got.Team)
	require.Equal(t, want.N, got.N)
}

// verify compares the whole table, its count and every team's rows with the model.
func verify[K any](t *testing.T, db *txtdb.DB, tbl *Table[K, row[K]], byTeam *SecondaryIndex[K, row[K], string], kk keyKind[K], model map[string]row[K]) {
	t.Helper()
	want := slices.Collect(mapsValues(model))
	slices.SortFunc(want, func(a, b row[K]) int { return kk.cmp(a.ID, b.ID) })
	require.NoError(t, db.View(context.Background(), func(tx *txtdb.Tx) error {
		ks, vs, err := tbl.Scan(tx).Collect()
		require.NoError(t, err)
		require.Len(t, vs, len(want))
		for i := range want {
			require.Zero(t, kk.cmp(want[i].ID, ks[i]), "position %d: want %v, got %v", i, want[i].ID, ks[i])
			requireRow(t, kk, want[i], vs[i])
		}
		n, err := tbl.Count(tx)
		require.NoError(t, err)
		require.Equal(t, len(want), n)
		for team := range 4 {
			name := fmt.Sprintf("team%d", team)
			var in []row[K]
			for _, x := range want {
				if x.Team == name {
					in = append(in, x)
				}
			}
			_, got, err := byTeam.Find(tx, name).Collect()
			require.NoError(t, err)
			require.Len(t, got, len(in), "team %s", name)
			for i := range in {
				requireRow(t, kk, in[i], got[i])
			}
		}
		return nil
	}))
}

func mapsValues[K any](m map[string]row[K]) func(func(row[K]) bool) {
	return func(yield func(row[K]) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

// shrink rewrites a table's node size so small tables have deep trees.
func shrink(t *testing.T, db *txtdb.DB, ns string, nodeBytes int) {
	t.Helper()
	require.NoError(t, db.Update(context.Background(), func(tx *txtdb.Tx) error {
		objs, err := tx.ReadPage(ns, schemaPage)
		if err != nil {
			return err
		}
		var doc schemaDoc
		if err := objs[0].Decode(&doc); err != nil {
			return err
		}
		doc.NodeBytes = nodeBytes
		return tx.UpdatePage(ns, schemaPage, doc)
	}))
}

var _ = errors.Is
