package table

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb"
)

// raceRow is the row of the insert race. Who inserted it rides along (Proc, and Seq, the
// insert's place in that process's plan), so the final table says which insert won.
type raceRow struct {
	ID    int64  `json:"id"`
	Email string `json:"email"`
	Proc  int    `json:"proc"`
	Seq   int    `json:"seq"`
}

func raceTable() *Table[int64, raceRow] {
	t := New("race.rows", func(r *raceRow) int64 { return r.ID })
	Unique(t, "email", func(r *raceRow) string { return r.Email })
	return t
}

// raceItem is one planned insert.
type raceItem struct {
	Key   int64  `json:"key"`
	Email string `json:"email"`
}

// raceOutcome is what a racer reports for one insert, once its Update returned.
type raceOutcome struct {
	Seq      int    `json:"seq"`
	Dup      bool   `json:"dup,omitempty"`   // ErrDuplicateKey
	Index    string `json:"index,omitempty"` // Dup: the index that refused it ("" for the primary key)
	Attempts int    `json:"attempts"`        // calls of the Update function
}

type raceConfig struct {
	Dir  string
	Plan string // a file holding the process's []raceItem
	Proc int
}

// raceRole inserts its plan's rows one per Update, from the moment the parent says "go", and
// reports each outcome.
func raceRole(config string) error {
	var cfg raceConfig
	if err := decodeConfig(config, &cfg); err != nil {
		return err
	}
	data, err := os.ReadFile(cfg.Plan)
	if err != nil {
		return err
	}
	var plan []raceItem
	if err := json.Unmarshal(data, &plan); err != nil {
		return err
	}
	db, err := txtdb.Open(cfg.Dir, &txtdb.Options{MaxRetries: 10000})
	if err != nil {
		return err
	}
	defer db.Close()
	tbl := raceTable()
	cmds := commands()
	if err := emit(map[string]bool{"ready": true}); err != nil {
		return err
	}
	if c := <-cmds; c != "go" {
		return fmt.Errorf("command %q, want go", c)
	}
	for i, it := range plan {
		o := raceOutcome{Seq: i}
		err := db.Update(context.Background(), func(tx *txtdb.Tx) error {
			o.Attempts++
			return tbl.Insert(tx, &raceRow{ID: it.Key, Email: it.Email, Proc: cfg.Proc, Seq: i})
		})
		var de *DuplicateKeyError
		switch {
		case err == nil:
		case errors.As(err, &de):
			o.Dup, o.Index = true, de.Index
		default:
			return fmt.Errorf("insert %d %+v: %w", i, it, err)
		}
		if err := emit(o); err != nil {
			return err
		}
	}
	return db.Close()
}

// racePlans plans n inserts for each of procs processes. Step j is of one kind in every plan:
// private (a key and an email no other process uses), or with a shared key, a shared email, or
// both (the same for every process at step j), so the processes, going through their plans at
// about the same pace, race for the same key or value at about the same moment. Keys are random
// int64s, or increasing: step j's keys are 8j + process (private) and 8j + 4 (shared), so every
// insert lands at the upper end of the table.
func racePlans(r *rand.Rand, procs, n int, increasing bool) [][]raceItem {
	used := map[int64]bool{}
	fresh := func() int64 {
		for {
			if k := int64(r.Uint64()); !used[k] {
				used[k] = true
				return k
			}
		}
	}
	plans := make([][]raceItem, procs)
	for j := range n {
		u := r.IntN(20)
		sharedKey, sharedEmail := u >= 11 && u < 14 || u >= 17, u >= 14
		var sk int64
		if increasing {
			sk = int64(8*j + 4)
		} else {
			sk = fresh()
		}
		for p := range procs {
			it := raceItem{Key: sk, Email: fmt.Sprintf("s%d", j)}
			if !sharedKey {
				if increasing {
					it.Key = int64(8*j + p)
				} else {
					it.Key = fresh()
				}
			}
			if !sharedEmail {
				it.Email = fmt.Sprintf("p%d-%d", p, j)
			}
			plans[p] = append(plans[p], it)
		}
	}
	return plans
}

// 4 processes, each with its own handle on one directory, race to insert overlapping keys with
// overlapping values of a unique index. No duplicate commits, every acknowledged insert is
// there with its exact row, every ErrDuplicateKey is explained by a row in the final table, and
// the retries are logged as a rate (per insert, and for the inserts no other process competes
// with). For random keys and for increasing ones.
func TestProcessesInsertRace(t *testing.T) {
	for _, mode := range []string{"random", "increasing"} {
		t.Run(mode, func(t *testing.T) { runRace(t, mode == "increasing") })
	}
}

func runRace(t *testing.T, increasing bool) {
	s := seed(t)
	t.Logf("seed %d (TXTDB_SEED=%d to repeat)", s, s)
	r := rand.New(rand.NewPCG(s, 0))
	const procs = 4
	n := 100
	if testing.Short() {
		n = 40
	}
	ctx := context.Background()
	dir := t.TempDir()
	db, err := txtdb.Open(dir, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return raceTable().Create(tx) }))
	require.NoError(t, db.Close())

	plans := racePlans(r, procs, n, increasing)
	kids := make([]*proc, procs)
	for p := range procs {
		b, err := json.Marshal(plans[p])
		require.NoError(t, err)
		plan := filepath.Join(t.TempDir(), "plan.json")
		require.NoError(t, os.WriteFile(plan, b, 0o644))
		kids[p] = startChild(t, "racer", raceConfig{Dir: dir, Plan: plan, Proc: p})
	}
	for _, k := range kids {
		var ready struct{ Ready bool }
		k.expect(t, &ready)
		require.True(t, ready.Ready)
	}
	for _, k := range kids {
		k.send(t, "go")
	}
	outs := make([][]raceOutcome, procs)
	for p, k := range kids {
		for {
			l, ok := k.next(t)
			if !ok {
				break
			}
			var o raceOutcome
			require.NoError(t, json.Unmarshal([]byte(l), &o), "racer %d line %q", p, l)
			outs[p] = append(outs[p], o)
		}
		require.NoError(t, k.status(t), "racer %d", p)
	}

	db, err = txtdb.Open(dir, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	probs, err := Check(ctx, db)
	require.NoError(t, err)
	require.Empty(t, probs, "table.Check after the race")
	probs, err = db.Check(ctx)
	require.NoError(t, err)
	require.Empty(t, probs, "db.Check after the race")
	var keys []int64
	var rows []*raceRow
	require.NoError(t, db.View(ctx, func(tx *txtdb.Tx) error {
		keys, rows, err = raceTable().Scan(tx).Collect()
		return err
	}))
	require.Empty(t, checkRace(plans, outs, keys, rows))
	logRetries(t, increasing, plans, outs)
}

// logRetries logs how many extra attempts Update made: per insert, per acknowledged insert, and
// for the inserts no other process competed with (their key and email in one plan only).
func logRetries(t *testing.T, increasing bool, plans [][]raceItem, outs [][]raceOutcome) {
	keyUse, emailUse := map[int64]int{}, map[string]int{}
	for _, plan := range plans {
		for _, it := range plan {
			keyUse[it.Key]++
			emailUse[it.Email]++
		}
	}
	var inserts, acked, dups, retries, ackedRetries, private, privateRetries int
	for p, os := range outs {
		for _, o := range os {
			it := plans[p][o.Seq]
			inserts++
			retries += o.Attempts - 1
			if o.Dup {
				dups++
			} else {
				acked++
				ackedRetries += o.Attempts - 1
			}
			if keyUse[it.Key] == 1 && emailUse[it.Email] == 1 {
				private++
				privateRetries += o.Attempts - 1
			}
		}
	}
	mode := "random"
	if increasing {
		mode = "increasing"
	}
	rate := func(a, b int) float64 { return 100 * float64(a) / float64(max(b, 1)) }
	t.Logf("%s keys, %d processes: %d inserts (%d acknowledged, %d ErrDuplicateKey), retries %.1f%% per insert, %.1f%% per acknowledged insert, %.1f%% per uncontended insert (%d of them)",
		mode, len(plans), inserts, acked, dups, rate(retries, inserts), rate(ackedRetries, acked), rate(privateRetries, private), private)
}

// checkRace returns the race's rules that the outcomes and the final table (a full Scan's keys
// and rows) break.
func checkRace(plans [][]raceItem, outs [][]raceOutcome, keys []int64, rows []*raceRow) []string {
	var bad []string
	f := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	type insert struct{ proc, seq int }
	outcome := map[insert]raceOutcome{}
	for p := range plans {
		if p >= len(outs) || len(outs[p]) != len(plans[p]) {
			f("process %d reported %d outcomes for %d inserts", p, len(outs[min(p, len(outs)-1)]), len(plans[p]))
		}
	}
	for p, os := range outs {
		for i, o := range os {
			if o.Seq != i || p >= len(plans) || o.Seq >= len(plans[p]) {
				f("process %d: outcome %d is for insert %d", p, i, o.Seq)
				continue
			}
			outcome[insert{p, o.Seq}] = o
		}
	}
	byKey, byEmail := map[int64]*raceRow{}, map[string]*raceRow{}
	if len(keys) != len(rows) {
		f("scan returned %d keys and %d rows", len(keys), len(rows))
	}
	for i, row := range rows {
		if i < len(keys) && keys[i] != row.ID {
			f("scan position %d: key %d, row %+v", i, keys[i], *row)
		}
		if i > 0 && row.ID <= rows[i-1].ID {
			f("scan position %d: key %d after %d", i, row.ID, rows[i-1].ID)
		}
		if o := byKey[row.ID]; o != nil {
			f("key %d committed twice: %+v and %+v", row.ID, *o, *row)
		}
		if o := byEmail[row.Email]; o != nil {
			f("email %q committed twice: %+v and %+v", row.Email, *o, *row)
		}
		byKey[row.ID], byEmail[row.Email] = row, row
		o, ok := outcome[insert{row.Proc, row.Seq}]
		switch {
		case !ok:
			f("row %+v names no insert with an outcome", *row)
		case o.Dup:
			f("row %+v committed, but its insert reported ErrDuplicateKey", *row)
		case plans[row.Proc][row.Seq] != raceItem{Key: row.ID, Email: row.Email}:
			f("row %+v is not the insert it names, %+v", *row, plans[row.Proc][row.Seq])
		}
	}
	ackedKey, ackedEmail := map[int64]insert{}, map[string]insert{}
	for in, o := range outcome {
		it := plans[in.proc][in.seq]
		if !o.Dup {
			if row := byKey[it.Key]; row == nil || *row != (raceRow{ID: it.Key, Email: it.Email, Proc: in.proc, Seq: in.seq}) {
				f("acknowledged insert %d/%d %+v: the table holds %v at its key", in.proc, in.seq, it, row)
			}
			if o, dup := ackedKey[it.Key]; dup {
				f("inserts %v and %v of key %d both acknowledged", o, in, it.Key)
			}
			if o, dup := ackedEmail[it.Email]; dup {
				f("inserts %v and %v of email %q both acknowledged", o, in, it.Email)
			}
			ackedKey[it.Key], ackedEmail[it.Email] = in, in
			continue
		}
		switch o.Index {
		case "":
			if byKey[it.Key] == nil {
				f("insert %d/%d %+v: ErrDuplicateKey on the key, but no row has it", in.proc, in.seq, it)
			}
		case "email":
			if byEmail[it.Email] == nil {
				f("insert %d/%d %+v: ErrDuplicateKey on the email, but no row has it", in.proc, in.seq, it)
			}
		default:
			f("insert %d/%d %+v: ErrDuplicateKey on index %q, which the table does not have", in.proc, in.seq, it, o.Index)
		}
	}
	return bad
}

// checkRace catches each kind of violation planted into a consistent race.
func TestCheckRaceCatchesPlanted(t *testing.T) {
	plans := [][]raceItem{{{1, "a"}, {2, "b"}}, {{1, "c"}, {3, "b"}}}
	good := func() ([][]raceOutcome, []int64, []*raceRow) {
		return [][]raceOutcome{
				{{Seq: 0, Attempts: 1}, {Seq: 1, Attempts: 2}},
				{{Seq: 0, Dup: true, Attempts: 1}, {Seq: 1, Dup: true, Index: "email", Attempts: 3}},
			}, []int64{1, 2},
			[]*raceRow{{1, "a", 0, 0}, {2, "b", 0, 1}}
	}
	outs, keys, rows := good()
	require.Empty(t, checkRace(plans, outs, keys, rows), "the unplanted race")
	plants := map[string]func(outs [][]raceOutcome, keys []int64, rows []*raceRow) ([][]raceOutcome, []int64, []*raceRow){
		"duplicate key committed": func(o [][]raceOutcome, k []int64, r []*raceRow) ([][]raceOutcome, []int64, []*raceRow) {
			o[1][0].Dup = false
			return o, []int64{1, 1, 2}, []*raceRow{r[0], {1, "c", 1, 0}, r[1]}
		},
		"duplicate email committed": func(o [][]raceOutcome, k []int64, r []*raceRow) ([][]raceOutcome, []int64, []*raceRow) {
			o[1][1].Dup = false
			return o, []int64{1, 2, 3}, append(r, &raceRow{3, "b", 1, 1})
		},
		"acknowledged row missing": func(o [][]raceOutcome, k []int64, r []*raceRow) ([][]raceOutcome, []int64, []*raceRow) {
			return o, k[:1], r[:1]
		},
		"acknowledged row changed": func(o [][]raceOutcome, k []int64, r []*raceRow) ([][]raceOutcome, []int64, []*raceRow) {
			r[1].Email = "x"
			return o, k, r
		},
		"unjustified duplicate": func(o [][]raceOutcome, k []int64, r []*raceRow) ([][]raceOutcome, []int64, []*raceRow) {
			o[1][1].Index = ""
			return o, k, r
		},
		"duplicate on an unknown index": func(o [][]raceOutcome, k []int64, r []*raceRow) ([][]raceOutcome, []int64, []*raceRow) {
			o[1][1].Index = "name"
			return o, k, r
		},
		"row nobody acknowledged": func(o [][]raceOutcome, k []int64, r []*raceRow) ([][]raceOutcome, []int64, []*raceRow) {
			o[0][1].Dup = true
			return o, k, r
		},
		"row of no insert": func(o [][]raceOutcome, k []int64, r []*raceRow) ([][]raceOutcome, []int64, []*raceRow) {
			return o, append(k, 9), append(r, &raceRow{9, "z", 1, 5})
		},
		"outcome missing": func(o [][]raceOutcome, k []int64, r []*raceRow) ([][]raceOutcome, []int64, []*raceRow) {
			o[1] = o[1][:1]
			return o, k, r
		},
		"scan out of order": func(o [][]raceOutcome, k []int64, r []*raceRow) ([][]raceOutcome, []int64, []*raceRow) {
			return o, []int64{2, 1}, []*raceRow{r[1], r[0]}
		},
	}
	for name, plant := range plants {
		t.Run(name, func(t *testing.T) {
			outs, keys, rows := plant(good())
			require.NotEmpty(t, checkRace(plans, outs, keys, rows))
		})
	}
}
