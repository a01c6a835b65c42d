package table

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/txtdb/txtdb"
)

type benchRow struct {
	ID    int64  `json:"id"`
	Email string `json:"email"`
	Team  string `json:"team"`
	Note  string `json:"note"`
}

// benchTable fills a table of n rows (inserted in random order, 1,000 per transaction).
func benchTable(b *testing.B, n int) (*txtdb.DB, *Table[int64, benchRow], *UniqueIndex[int64, benchRow, string]) {
	b.Helper()
	db, err := txtdb.Open(b.TempDir(), &txtdb.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	t := New("bench.rows", func(r *benchRow) int64 { return r.ID })
	byEmail := Unique(t, "email", func(r *benchRow) string { return r.Email })
	Index(t, "team", func(r *benchRow) string { return r.Team })
	ctx := context.Background()
	if err := db.Update(ctx, func(tx *txtdb.Tx) error { return t.Create(tx) }); err != nil {
		b.Fatal(err)
	}
	perm := rand.New(rand.NewPCG(1, 2)).Perm(n)
	for i := 0; i < n; i += 1000 {
		err := db.Update(ctx, func(tx *txtdb.Tx) error {
			for _, k := range perm[i:min(i+1000, n)] {
				if err := t.Insert(tx, &benchRow{ID: int64(k), Email: fmt.Sprintf("u%d@example.com", k), Team: fmt.Sprintf("t%d", k%16), Note: "some text of a row"}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return db, t, byEmail
}

func BenchmarkGet(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			db, t, byEmail := benchTable(b, n)
			ctx := context.Background()
			r := rand.New(rand.NewPCG(3, 4))
			b.Run("key", func(b *testing.B) {
				for b.Loop() {
					k := int64(r.IntN(n))
					err := db.View(ctx, func(tx *txtdb.Tx) error { _, err := t.Get(tx, k); return err })
					if err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("unique", func(b *testing.B) {
				for b.Loop() {
					k := r.IntN(n)
					err := db.View(ctx, func(tx *txtdb.Tx) error { _, err := byEmail.Get(tx, fmt.Sprintf("u%d@example.com", k)); return err })
					if err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("range1000", func(b *testing.B) {
				for b.Loop() {
					lo := int64(r.IntN(max(n-1000, 1)))
					err := db.View(ctx, func(tx *txtdb.Tx) error { _, _, err := t.Range(tx, lo, lo+1000).Collect(); return err })
					if err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("insert", func(b *testing.B) {
				next := int64(n)
				for b.Loop() {
					k := next
					next++
					err := db.Update(ctx, func(tx *txtdb.Tx) error {
						return t.Insert(tx, &benchRow{ID: k, Email: fmt.Sprintf("u%d@example.com", k), Team: "t1", Note: "some text of a row"})
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

var benchSizes = []int{1_000, 10_000}
