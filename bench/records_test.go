package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// The table workloads: a table of records with an int64 primary key and one unique secondary
// index (the e-mail address), pre-filled with fillRows records whose keys are spread over the key
// space. Every key is a function of who wrote it, so the check after a cell knows exactly which
// records must be in the store: no worker has to report its keys.
const (
	workloadTableInsertRandom     = "table-insert-random"     // inserts of records with random keys
	workloadTableInsertIncreasing = "table-insert-increasing" // inserts of records whose keys all land at the right end
	workloadTableGetKey           = "table-get-key"           // point gets by primary key (P-1 processes insert)
	workloadTableGetUnique        = "table-get-unique"        // point gets by the unique index (P-1 processes insert)
	workloadTableRange            = "table-range"             // range scans of rangeRows records (P-1 processes insert)

	// tableWorkloads is the name TXTDB_BENCH_ROWS takes for all of the above.
	tableWorkloads = "tables"
)

// tableWorkloadList is every table workload, in the order of the table's rows.
var tableWorkloadList = []string{
	workloadTableInsertRandom, workloadTableInsertIncreasing,
	workloadTableGetKey, workloadTableGetUnique, workloadTableRange,
}

// isTableWorkload reports whether w runs on the records table (rather than the accounts).
func isTableWorkload(w string) bool { return slices.Contains(tableWorkloadList, w) }

// isTableRead reports whether w is a table workload whose measured process reads.
func isTableRead(w string) bool {
	return w == workloadTableGetKey || w == workloadTableGetUnique || w == workloadTableRange
}

// defaultFill is how many records the table holds before a cell; rangeRows is the length of a
// range scan.
const (
	defaultFill = 10_000
	rangeRows   = 1_000
)

// recordsNS is the txtdb table (a namespace) and the SQLite table of the records.
const recordsNS = "records"

// record is one row of the table workloads. Its e-mail address and note are functions of its ID,
// so a reader checks every row it gets.
type record struct {
	ID    int64  `json:"id"`
	Email string `json:"email"`
	Note  string `json:"note"`
}

// newRecord returns the record with key id.
func newRecord(id int64) record {
	return record{ID: id, Email: emailOf(id), Note: fmt.Sprintf("record %d, a short note", id)}
}

// check reports what is wrong with r as the record with key id ("" if nothing).
func (r record) check(id int64) string {
	if want := newRecord(id); r != want {
		return fmt.Sprintf("record %d is %+v, want %+v", id, r, want)
	}
	return ""
}

// emailOf is the unique index value of key id: a bijection of it, so no two keys share one, and
// in no relation to the key's order.
func emailOf(id int64) string { return fmt.Sprintf("u%016x@example.com", mix64(uint64(id))) }

// mix64 is splitmix64's finalizer, a bijection on uint64.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Keys. Random keys are scramble of a tag, so they are distinct, spread over [0, 2^62) and
// never equal to a pre-filled key (a different tag); increasing keys start at increasingBase,
// above all of them.
const (
	keyBits        = 62
	keyMask        = 1<<keyBits - 1
	fillTag        = 1 << 61 // pre-filled record i: scramble(fillTag | i)
	increasingBase = 1 << 62
)

// scramble is a bijection on [0, 2^62): odd multiplications modulo 2^62 and xor-shifts.
func scramble(x uint64) uint64 {
	x &= keyMask
	x = (x * 0x9e3779b97f4a7c15) & keyMask
	x ^= x >> 29
	x = (x * 0xbf58476d1ce4e5b9) & keyMask
	x ^= x >> 32
	x = (x * 0x94d049bb133111eb) & keyMask
	x ^= x >> 29
	return x
}

// fillKey is the key of pre-filled record i.
func fillKey(i int) int64 { return int64(scramble(fillTag | uint64(i))) }

// fillKeys returns the keys of n pre-filled records, sorted.
func fillKeys(n int) []int64 {
	ks := make([]int64, n)
	for i := range ks {
		ks[i] = fillKey(i)
	}
	slices.Sort(ks)
	return ks
}

// randomKey is the seq-th random key of client c in process p (p < 2^12, c < 2^8, seq < 2^40).
func randomKey(p, c, seq int) int64 {
	return int64(scramble(uint64(p)<<48 | uint64(c)<<40 | uint64(seq)))
}

// increasingKey is the seq-th increasing key of client c in process p of procs processes with
// clients clients each: the clients' sequences interleave, so every new key is near the largest.
func increasingKey(p, c, seq, procs, clients int) int64 {
	return increasingBase + int64(seq)*int64(procs*clients) + int64(p*clients+c)
}

// insertKey returns the key function of a cell's inserting clients: the insert workloads' own,
// and random keys for the writers beside a reader.
func insertKey(cfg workerConfig) func(c, seq int) int64 {
	if cfg.Workload == workloadTableInsertIncreasing {
		return func(c, seq int) int64 { return increasingKey(cfg.Proc, c, seq, cfg.Procs, cfg.Clients) }
	}
	return func(c, seq int) int64 { return randomKey(cfg.Proc, c, seq) }
}

// insertedKeys returns the keys the inserting clients of a cell had acknowledged: acks[p][c]
// inserts of client c of process p. A reader process has no inserts (its acks are zero).
func insertedKeys(w string, acks [][]int) []int64 {
	var ks []int64
	clients := 0
	for _, cs := range acks {
		clients = max(clients, len(cs))
	}
	for p, cs := range acks {
		for c, n := range cs {
			for seq := range n {
				if w == workloadTableInsertIncreasing {
					ks = append(ks, increasingKey(p, c, seq, len(acks), clients))
				} else {
					ks = append(ks, randomKey(p, c, seq))
				}
			}
		}
	}
	return ks
}

// checkRecords compares the records in a store (seen: how many times each key is there, with
// what is wrong with its record if anything) with the pre-filled ones and the acknowledged
// inserts, and says what is wrong, "" if nothing.
func checkRecords(seen map[int64]int, bad []string, fill int, inserted []int64) string {
	want := make(map[int64]bool, fill+len(inserted))
	for i := range fill {
		want[fillKey(i)] = true
	}
	for _, k := range inserted {
		want[k] = true
	}
	missing, dup, extra := 0, 0, 0
	for k := range want {
		switch n := seen[k]; {
		case n == 0:
			missing++
		case n > 1:
			dup += n - 1
		}
	}
	for k, n := range seen {
		if !want[k] {
			extra += n
		}
	}
	if missing == 0 && dup == 0 && extra == 0 && len(bad) == 0 {
		return ""
	}
	s := fmt.Sprintf("%d acknowledged records missing, %d extra copies, %d records never acknowledged", missing, dup, extra)
	if len(bad) > 0 {
		s += fmt.Sprintf("; %d wrong (first: %s)", len(bad), bad[0])
	}
	return s
}

// tableOp returns one operation of a table workload: client c's op-th (0-based) on st. Reads
// check what they got and fail on a wrong row.
func tableOp(cfg workerConfig) (func(ctx context.Context, st store, rng *rand.Rand, c, op int) (int, error), error) {
	switch cfg.Workload {
	case workloadTableInsertRandom, workloadTableInsertIncreasing:
		key := insertKey(cfg)
		return func(ctx context.Context, st store, _ *rand.Rand, c, op int) (int, error) {
			k := key(c, op)
			n, err := st.insertRecord(ctx, newRecord(k))
			if err != nil {
				return n, fmt.Errorf("insert record %d: %w", k, err)
			}
			return n, nil
		}, nil
	}
	if cfg.Fill <= rangeRows {
		return nil, fmt.Errorf("a table of %d records, want more than %d", cfg.Fill, rangeRows)
	}
	keys := fillKeys(cfg.Fill)
	// The pre-filled records as they must read, so that checking a read costs little beside it.
	want := make(map[int64]record, len(keys))
	for _, k := range keys {
		want[k] = newRecord(k)
	}
	check := func(r record, id int64) string {
		if w, ok := want[id]; ok && r == w {
			return ""
		}
		return r.check(id)
	}
	switch cfg.Workload {
	case workloadTableGetKey:
		return func(ctx context.Context, st store, rng *rand.Rand, _, _ int) (int, error) {
			k := keys[rng.IntN(len(keys))]
			r, err := st.getRecord(ctx, k)
			if err != nil {
				return 1, fmt.Errorf("get record %d: %w", k, err)
			}
			if bad := check(r, k); bad != "" {
				return 1, fmt.Errorf("get record %d: %s", k, bad)
			}
			return 1, nil
		}, nil
	case workloadTableGetUnique:
		return func(ctx context.Context, st store, rng *rand.Rand, _, _ int) (int, error) {
			k := keys[rng.IntN(len(keys))]
			r, err := st.getRecordByEmail(ctx, emailOf(k))
			if err != nil {
				return 1, fmt.Errorf("get record by e-mail %s: %w", emailOf(k), err)
			}
			if bad := check(r, k); bad != "" {
				return 1, fmt.Errorf("get record by e-mail %s: %s", emailOf(k), bad)
			}
			return 1, nil
		}, nil
	case workloadTableRange:
		return func(ctx context.Context, st store, rng *rand.Rand, _, _ int) (int, error) {
			j := rng.IntN(len(keys) - rangeRows)
			lo, hi := keys[j], keys[j+rangeRows]
			rs, err := st.rangeRecords(ctx, lo, hi)
			if err != nil {
				return 1, fmt.Errorf("range [%d, %d): %w", lo, hi, err)
			}
			if bad := checkRange(rs, keys[j:j+rangeRows], lo, hi, check); bad != "" {
				return 1, fmt.Errorf("range [%d, %d): %s", lo, hi, bad)
			}
			return 1, nil
		}, nil
	}
	return nil, fmt.Errorf("unknown workload %q", cfg.Workload)
}

// checkRange says what is wrong with the records a range scan of [lo, hi) returned, "" if
// nothing: they must be in key order, inside the range, each one right (check), and include
// every pre-filled key of the range (filled, sorted). Records the writers inserted may lie in
// between.
func checkRange(rs []record, filled []int64, lo, hi int64, check func(r record, id int64) string) string {
	j := 0
	for i, r := range rs {
		if r.ID < lo || r.ID >= hi {
			return fmt.Sprintf("record %d outside the range", r.ID)
		}
		if i > 0 && r.ID <= rs[i-1].ID {
			return fmt.Sprintf("record %d after %d", r.ID, rs[i-1].ID)
		}
		if bad := check(r, r.ID); bad != "" {
			return bad
		}
		if j < len(filled) && r.ID == filled[j] {
			j++
		}
	}
	if j != len(filled) {
		return fmt.Sprintf("%d records, %d of the %d pre-filled ones", len(rs), j, len(filled))
	}
	return ""
}

func TestKeys(t *testing.T) {
	seen := map[int64]bool{}
	add := func(k int64, what string) {
		t.Helper()
		require.False(t, seen[k], "%s: key %d twice", what, k)
		require.GreaterOrEqual(t, k, int64(0), what)
		seen[k] = true
	}
	for i := range 5000 {
		add(fillKey(i), "fill")
	}
	for p := range 4 {
		for c := range 2 {
			for seq := range 1000 {
				add(randomKey(p, c, seq), "random")
				k := increasingKey(p, c, seq, 4, 2)
				require.GreaterOrEqual(t, k, int64(increasingBase))
				add(k, "increasing")
			}
		}
	}
	emails := map[string]bool{}
	for k := range seen {
		e := emailOf(k)
		require.False(t, emails[e], "e-mail %s twice", e)
		emails[e] = true
	}
	ks := fillKeys(5000)
	require.True(t, slices.IsSorted(ks))
	require.Less(t, ks[len(ks)-1], int64(increasingBase))
}

func TestCheckRecords(t *testing.T) {
	acks := [][]int{{0}, {2}, {1}} // a reader, then writers with 2 and 1 inserts
	ins := insertedKeys(workloadTableGetKey, acks)
	require.Equal(t, []int64{randomKey(1, 0, 0), randomKey(1, 0, 1), randomKey(2, 0, 0)}, ins)
	all := map[int64]int{fillKey(0): 1, fillKey(1): 1}
	for _, k := range ins {
		all[k] = 1
	}
	require.Empty(t, checkRecords(all, nil, 2, ins))
	delete(all, fillKey(1))
	all[ins[0]] = 2
	all[randomKey(2, 0, 1)] = 1
	require.Equal(t, "1 acknowledged records missing, 1 extra copies, 1 records never acknowledged; 1 wrong (first: x)",
		checkRecords(all, []string{"x"}, 2, ins))

	inc := insertedKeys(workloadTableInsertIncreasing, [][]int{{2}, {1}})
	require.Equal(t, []int64{increasingBase, increasingBase + 2, increasingBase + 1}, inc)

	filled := []int64{10, 20, 30}
	rs := []record{newRecord(10), newRecord(15), newRecord(20), newRecord(30)}
	check := record.check
	require.Empty(t, checkRange(rs, filled, 10, 31, check))
	require.NotEmpty(t, checkRange(rs[1:], filled, 10, 31, check), "a pre-filled record missing")
	require.NotEmpty(t, checkRange([]record{newRecord(10), newRecord(30), newRecord(20)}, filled, 10, 31, check), "out of order")
	require.NotEmpty(t, checkRange(rs, filled, 11, 31, check), "outside the range")
	bad := newRecord(20)
	bad.Note = "changed"
	require.NotEmpty(t, checkRange([]record{newRecord(10), bad, newRecord(30)}, filled, 10, 31, check), "a wrong record")
}
