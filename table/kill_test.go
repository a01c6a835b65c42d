package table

import (
	"context"
	"encoding/json"
	"fmt"
	stdmaps "maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb"
)

// batchRow is the row of the SIGKILL test: a unique email and a non-unique team.
type batchRow struct {
	ID    int64  `json:"id"`
	Email string `json:"email"`
	Team  string `json:"team"`
	V     int    `json:"v"`
}

const batchTeams = 4

func batchTable() (*Table[int64, batchRow], *UniqueIndex[int64, batchRow, string], *SecondaryIndex[int64, batchRow, string]) {
	t := New("batch.rows", func(r *batchRow) int64 { return r.ID })
	return t, Unique(t, "email", func(r *batchRow) string { return r.Email }), Index(t, "team", func(r *batchRow) string { return r.Team })
}

// batchOp is one write of a transaction: insert or put Row, or delete Key.
type batchOp struct {
	Op  string   `json:"op"`
	Row batchRow `json:"row,omitzero"`
	Key int64    `json:"key,omitempty"`
}

// batchLine is a line of the batcher: "state" (the rows of its key range as it starts), "tx"
// (a transaction it is about to run), "ack" (Update returned nil for it), "done".
type batchLine struct {
	Kind     string     `json:"kind"`
	Seq      int        `json:"seq,omitempty"`
	Ops      []batchOp  `json:"ops,omitempty"`
	Rows     []batchRow `json:"rows,omitempty"`
	Attempts int        `json:"attempts,omitempty"`
}

type batchConfig struct {
	Dir  string
	Proc int
	Inc  int // incarnation: how many times this process slot was started before
	Keys int // the process's keys are [1000*Proc, 1000*Proc+Keys)
	Seed uint64
}

func batchRange(proc, keys int) (int64, int64) {
	return int64(1000 * proc), int64(1000*proc + keys)
}

func applyOps(rows map[int64]batchRow, ops []batchOp) map[int64]batchRow {
	out := stdmaps.Clone(rows)
	for _, op := range ops {
		if op.Op == "delete" {
			delete(out, op.Key)
		} else {
			out[op.Row.ID] = op.Row
		}
	}
	return out
}

// planBatch draws 1 to 5 writes valid in sequence on rows (inserts of absent keys, puts,
// deletes of present keys); every email is new or the replaced row's own, so no write meets
// ErrDuplicateKey.
func planBatch(r *rand.Rand, rows map[int64]batchRow, cfg batchConfig, seq int) []batchOp {
	lo, hi := batchRange(cfg.Proc, cfg.Keys)
	cur := stdmaps.Clone(rows)
	var ops []batchOp
	for i := range 1 + r.IntN(5) {
		row := batchRow{ID: lo + r.Int64N(hi-lo), Email: fmt.Sprintf("p%d.%d.%d.%d@example.com", cfg.Proc, cfg.Inc, seq, i),
			Team: fmt.Sprintf("t%d", r.IntN(batchTeams)), V: r.IntN(1 << 20)}
		var op batchOp
		switch u := r.IntN(10); {
		case u < 4:
			for range 4 { // an absent key, if one is found quickly
				if _, ok := cur[row.ID]; !ok {
					break
				}
				row.ID = lo + r.Int64N(hi-lo)
			}
			if _, ok := cur[row.ID]; ok {
				op = batchOp{Op: "put", Row: row}
			} else {
				op = batchOp{Op: "insert", Row: row}
			}
		case u < 7:
			if old, ok := cur[row.ID]; ok && r.IntN(2) == 0 {
				row.Email = old.Email // a put that keeps the unique value
			}
			op = batchOp{Op: "put", Row: row}
		default:
			if len(cur) == 0 {
				op = batchOp{Op: "put", Row: row}
				break
			}
			keys := slices.Sorted(stdmaps.Keys(cur))
			op = batchOp{Op: "delete", Key: keys[r.IntN(len(keys))]}
		}
		ops = append(ops, op)
		cur = applyOps(cur, []batchOp{op})
	}
	return ops
}

// batchRole runs transactions of several writes on its own key range until stdin ends,
// announcing each before it runs and acknowledging it once Update returned nil. Now and then it
// checkpoints before the acknowledgement, so kills land in checkpoints, and after commits.
func batchRole(config string) error {
	var cfg batchConfig
	if err := decodeConfig(config, &cfg); err != nil {
		return err
	}
	ctx := context.Background()
	db, err := txtdb.Open(cfg.Dir, &txtdb.Options{MaxRetries: 10000})
	if err != nil {
		return err
	}
	defer db.Close()
	tbl, _, _ := batchTable()
	lo, hi := batchRange(cfg.Proc, cfg.Keys)
	var got []*batchRow
	if err := db.View(ctx, func(tx *txtdb.Tx) error {
		_, got, err = tbl.Range(tx, lo, hi).Collect()
		return err
	}); err != nil {
		return err
	}
	rows := map[int64]batchRow{}
	state := batchLine{Kind: "state", Rows: []batchRow{}}
	for _, row := range got {
		rows[row.ID] = *row
		state.Rows = append(state.Rows, *row)
	}
	if err := emit(state); err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.Proc)<<32|uint64(cfg.Inc)))
	cmds := commands()
	for seq := 1; ; seq++ {
		select {
		case _, ok := <-cmds:
			if !ok {
				if err := emit(batchLine{Kind: "done"}); err != nil {
					return err
				}
				return db.Close()
			}
		default:
		}
		ops := planBatch(r, rows, cfg, seq)
		if err := emit(batchLine{Kind: "tx", Seq: seq, Ops: ops}); err != nil {
			return err
		}
		attempts := 0
		err := db.Update(ctx, func(tx *txtdb.Tx) error {
			attempts++
			for _, op := range ops {
				var err error
				switch op.Op {
				case "insert":
					err = tbl.Insert(tx, &op.Row)
				case "put":
					err = tbl.Put(tx, &op.Row)
				case "delete":
					err = tbl.Delete(tx, op.Key)
				}
				if err != nil {
					return fmt.Errorf("%s %+v: %w", op.Op, op, err)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("transaction %d: %w", seq, err)
		}
		rows = applyOps(rows, ops)
		if r.IntN(4) == 0 { // between the commit and its acknowledgement, so a kill lands there too
			if err := db.Checkpoint(ctx); err != nil {
				return err
			}
		}
		if err := emit(batchLine{Kind: "ack", Seq: seq, Attempts: attempts}); err != nil {
			return err
		}
	}
}

// batchModel is the parent's account of one process slot's key range: the rows every
// acknowledged transaction left, and the transaction announced and not acknowledged, if any
// (after a kill it may or may not have committed).
type batchModel struct {
	rows       map[int64]batchRow
	pending    []batchOp
	pendingSeq int // 0: none
	acked      int
	attempts   int
	// How restarts found the transaction a kill left unacknowledged: committed or not.
	committed, lost int
}

func newBatchModel() *batchModel { return &batchModel{rows: map[int64]batchRow{}} }

// line takes one line of the slot's current process.
func (m *batchModel) line(l batchLine) error {
	switch l.Kind {
	case "state":
		got := map[int64]batchRow{}
		for _, row := range l.Rows {
			got[row.ID] = row
		}
		switch {
		case stdmaps.Equal(got, m.rows):
			if m.pendingSeq != 0 {
				m.lost++
			}
		case m.pendingSeq != 0 && stdmaps.Equal(got, applyOps(m.rows, m.pending)):
			m.rows = got
			m.committed++
		default:
			return fmt.Errorf("the range holds %v; acknowledged: %v, then maybe transaction %d %v", got, m.rows, m.pendingSeq, m.pending)
		}
		m.pending, m.pendingSeq = nil, 0
	case "tx":
		if m.pendingSeq != 0 {
			return fmt.Errorf("transaction %d announced while %d is not acknowledged", l.Seq, m.pendingSeq)
		}
		m.pending, m.pendingSeq = l.Ops, l.Seq
	case "ack":
		if l.Seq != m.pendingSeq || l.Seq == 0 {
			return fmt.Errorf("transaction %d acknowledged, %d was announced", l.Seq, m.pendingSeq)
		}
		m.rows = applyOps(m.rows, m.pending)
		m.pending, m.pendingSeq = nil, 0
		m.acked++
		m.attempts += l.Attempts
	case "done":
		if m.pendingSeq != 0 {
			return fmt.Errorf("done with transaction %d not acknowledged", m.pendingSeq)
		}
	default:
		return fmt.Errorf("line of kind %q", l.Kind)
	}
	return nil
}

// batchEvent is a line (or the end of the output) of one incarnation of a process slot.
type batchEvent struct {
	proc, inc int
	line      string
	eof       bool
}

// Processes run transactions of several inserts, puts and deletes (a unique and a secondary
// index) on disjoint key ranges while one of them at a time is killed with SIGKILL at a random
// moment (after a seeded number of lines of all the processes: in Open, in a commit, in a
// checkpoint) and restarted, for several rounds. After each kill Check is clean (at a snapshot,
// while the others write), and each restarted process reads its range: it holds exactly what the
// acknowledged transactions left, with the last unacknowledged one applied whole or not at all.
// At the end Check and (after a checkpoint) db.Check find nothing, no page is left that the trees
// do not reach, and the table and its indexes hold exactly the acknowledged state.
func TestKillBatches(t *testing.T) {
	s := seed(t)
	t.Logf("seed %d (TXTDB_SEED=%d to repeat)", s, s)
	r := rand.New(rand.NewPCG(s, 1))
	const procs, keys = 3, 24
	rounds := 60
	if testing.Short() {
		rounds = 8
	}
	ctx := context.Background()
	dir := t.TempDir()
	db, err := txtdb.Open(dir, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { tbl, _, _ := batchTable(); return tbl.Create(tx) }))
	require.NoError(t, db.Close())
	shrinkDir(t, dir, "batch.rows", 1024)
	watcher, err := txtdb.Open(dir, nil) // checks the table between the rounds
	require.NoError(t, err)
	defer func() { _ = watcher.Close() }()

	stop := make(chan struct{})
	events := make(chan batchEvent, 1<<10)
	start := func(p, inc int) *proc {
		c := startChild(t, "batcher", batchConfig{Dir: dir, Proc: p, Inc: inc, Keys: keys, Seed: s})
		go func() {
			send := func(ev batchEvent) bool {
				select {
				case events <- ev:
					return true
				case <-stop:
					return false
				}
			}
			for l := range c.lines {
				if !send(batchEvent{proc: p, inc: inc, line: l}) {
					return
				}
			}
			send(batchEvent{proc: p, inc: inc, eof: true})
		}()
		return c
	}
	t.Cleanup(func() { close(stop) }) // runs before the processes' cleanups: forwarders stop first
	models := make([]*batchModel, procs)
	kids := make([]*proc, procs)
	incs := make([]int, procs)
	for p := range procs {
		models[p] = newBatchModel()
		kids[p] = start(p, 0)
	}
	// handle takes one event; it reports whether it was the end of incarnation inc of slot p.
	handle := func(ev batchEvent, p, inc int) bool {
		if ev.eof {
			if ev.proc != p || ev.inc != inc {
				t.Fatalf("process %d.%d ended by itself: %v", ev.proc, ev.inc, kids[ev.proc].status(t))
			}
			return true
		}
		var l batchLine
		require.NoError(t, json.Unmarshal([]byte(ev.line), &l), "process %d.%d: line %q", ev.proc, ev.inc, ev.line)
		require.NoError(t, models[ev.proc].line(l), "process %d.%d", ev.proc, ev.inc)
		return false
	}
	next := func() batchEvent {
		select {
		case ev := <-events:
			return ev
		case <-time.After(longStop):
			t.Fatalf("no line from any process within %v", longStop)
			return batchEvent{}
		}
	}
	kills := 0
	for round := range rounds {
		// The kill comes after a seeded number of lines of any process (0: at once, in Open),
		// so it lands anywhere in the victim's cycle.
		p := r.IntN(procs)
		after := r.IntN(8 * procs)
		if after == 0 {
			kids[p].kill(t)
		}
		for seen := 1; ; seen++ {
			if handle(next(), p, incs[p]) {
				break
			}
			if seen == after {
				kids[p].kill(t)
			}
		}
		err := kids[p].status(t)
		require.True(t, killedBySIGKILL(err), "round %d: process %d.%d ended with %v, not by SIGKILL", round, p, incs[p], err)
		kills++
		// While the others go on: every snapshot is consistent.
		probs, err := Check(ctx, watcher)
		require.NoError(t, err)
		require.Empty(t, probs, "round %d: table.Check after the kill", round)
		incs[p]++
		kids[p] = start(p, incs[p])
	}
	for _, k := range kids {
		k.stop()
	}
	for ended := 0; ended < procs; {
		ev := next()
		if ev.eof {
			require.Equal(t, incs[ev.proc], ev.inc)
			require.NoError(t, kids[ev.proc].status(t), "process %d.%d", ev.proc, ev.inc)
			ended++
			continue
		}
		handle(ev, -1, -1)
	}
	want := map[int64]batchRow{}
	acked, attempts, committed, lost := 0, 0, 0, 0
	for p, m := range models {
		require.Zero(t, m.pendingSeq, "process %d: a transaction left unresolved", p)
		stdmaps.Copy(want, m.rows)
		acked += m.acked
		attempts += m.attempts
		committed += m.committed
		lost += m.lost
	}
	t.Logf("%d kills (unacknowledged transactions found committed %d times, not committed %d times), %d acknowledged transactions, %.1f%% retries, %d rows at the end",
		kills, committed, lost, acked, 100*float64(attempts-acked)/float64(max(acked, 1)), len(want))

	require.NoError(t, watcher.Close())
	db, err = txtdb.Open(dir, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	probs, err := Check(ctx, db)
	require.NoError(t, err)
	require.Empty(t, probs, "table.Check after the kills")
	requireNoOrphans(t, db, "batch.rows")
	require.NoError(t, db.Checkpoint(ctx)) // removes the registry entries the killed processes left
	probs, err = db.Check(ctx)
	require.NoError(t, err)
	require.Empty(t, probs, "db.Check after the kills and a checkpoint")
	requireBatchTable(t, db, want)
}

// requireBatchTable requires the table, read by Scan, Count, the unique index and the
// secondary index, to hold exactly want.
func requireBatchTable(t *testing.T, db *txtdb.DB, want map[int64]batchRow) {
	t.Helper()
	tbl, byEmail, byTeam := batchTable()
	require.NoError(t, db.View(context.Background(), func(tx *txtdb.Tx) error {
		keys, rows, err := tbl.Scan(tx).Collect()
		require.NoError(t, err)
		require.Empty(t, diffRows(want, keys, rows), "Scan")
		n, err := tbl.Count(tx)
		require.NoError(t, err)
		require.Equal(t, len(want), n, "Count")
		for _, w := range want {
			got, err := byEmail.Get(tx, w.Email)
			require.NoError(t, err, "email %s", w.Email)
			require.Equal(t, w, *got, "by email %s", w.Email)
		}
		for team := range batchTeams {
			name := fmt.Sprintf("t%d", team)
			in := map[int64]batchRow{}
			for k, w := range want {
				if w.Team == name {
					in[k] = w
				}
			}
			keys, rows, err := byTeam.Find(tx, name).Collect()
			require.NoError(t, err)
			require.Empty(t, diffRows(in, keys, rows), "team %s", name)
		}
		return nil
	}))
}

// diffRows returns how keys and rows, read in key order, differ from want.
func diffRows(want map[int64]batchRow, keys []int64, rows []*batchRow) []string {
	var bad []string
	if len(keys) != len(rows) {
		bad = append(bad, fmt.Sprintf("%d keys, %d rows", len(keys), len(rows)))
	}
	order := slices.Sorted(stdmaps.Keys(want))
	for i, row := range rows {
		switch {
		case i >= len(order):
			bad = append(bad, fmt.Sprintf("position %d: %+v, want nothing more", i, *row))
		case *row != want[order[i]] || (i < len(keys) && keys[i] != order[i]):
			bad = append(bad, fmt.Sprintf("position %d: key %d row %+v, want %+v", i, keys[min(i, len(keys)-1)], *row, want[order[i]]))
		}
	}
	for i := len(rows); i < len(order); i++ {
		bad = append(bad, fmt.Sprintf("position %d: nothing, want %+v", i, want[order[i]]))
	}
	return bad
}

// The SIGKILL test's checkers catch what is planted: half a transaction, an acknowledged
// transaction lost, a transaction announced before the last one was acknowledged, a row too
// many, missing, changed or out of order.
func TestBatchCheckersCatchPlanted(t *testing.T) {
	a := batchRow{ID: 1, Email: "a", Team: "t0"}
	b := batchRow{ID: 2, Email: "b", Team: "t1"}
	c := batchRow{ID: 3, Email: "c", Team: "t1"}
	setup := func(t *testing.T) *batchModel {
		m := newBatchModel()
		require.NoError(t, m.line(batchLine{Kind: "state"}))
		require.NoError(t, m.line(batchLine{Kind: "tx", Seq: 1, Ops: []batchOp{{Op: "insert", Row: a}, {Op: "insert", Row: b}}}))
		require.NoError(t, m.line(batchLine{Kind: "ack", Seq: 1}))
		require.NoError(t, m.line(batchLine{Kind: "tx", Seq: 2, Ops: []batchOp{{Op: "delete", Key: 1}, {Op: "insert", Row: c}}}))
		return m // killed here: transaction 2 may or may not have committed
	}
	for _, rows := range [][]batchRow{{a, b}, {b, c}} {
		require.NoError(t, setup(t).line(batchLine{Kind: "state", Rows: rows}), "state %v is allowed", rows)
	}
	for name, rows := range map[string][]batchRow{
		"half a transaction": {b},
		"other half":         {a, b, c},
		"acknowledged lost":  {a},
		"a row changed":      {a, {ID: 2, Email: "b", Team: "t2"}},
	} {
		require.Error(t, setup(t).line(batchLine{Kind: "state", Rows: rows}), name)
	}
	require.Error(t, setup(t).line(batchLine{Kind: "tx", Seq: 3}), "a transaction announced before the last was acknowledged")
	require.Error(t, setup(t).line(batchLine{Kind: "ack", Seq: 3}), "an acknowledgement of another transaction")
	require.Error(t, setup(t).line(batchLine{Kind: "done"}), "done with a transaction unacknowledged")

	want := map[int64]batchRow{1: a, 2: b}
	require.Empty(t, diffRows(want, []int64{1, 2}, []*batchRow{&a, &b}))
	for name, got := range map[string][]*batchRow{
		"missing":      {&a},
		"too many":     {&a, &b, &c},
		"changed":      {&a, {ID: 2, Email: "x", Team: "t1"}},
		"out of order": {&b, &a},
	} {
		keys := make([]int64, len(got))
		for i, row := range got {
			keys[i] = row.ID
		}
		require.NotEmpty(t, diffRows(want, keys, got), name)
	}
}

// shrinkDir is shrink on a store no handle of this process has open.
func shrinkDir(t *testing.T, dir, ns string, nodeBytes int) {
	t.Helper()
	db, err := txtdb.Open(dir, nil)
	require.NoError(t, err)
	shrink(t, db, ns, nodeBytes)
	require.NoError(t, db.Close())
}
