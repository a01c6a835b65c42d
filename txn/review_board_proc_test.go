package txn

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

// boardHolderRole takes the commit lock for one commit (page000001 of "c" + 1) and, under it and
// after recovery, says "locked" and waits for a line on stdin before it goes on: the parent lets
// another process offer its commit meanwhile. It then says "ack <value> <tsn>", unless the armed
// crash point kills it first.
func boardHolderRole(ctx context.Context, db *DB) int {
	if err := view(ctx, db, func(tx *Tx) error { _, err := readInt(tx, "c", "page000001"); return err }); err != nil {
		fmt.Println("error", err)
		return 3
	}
	in := bufio.NewReader(os.Stdin)
	var once sync.Once
	rec := func(*DB, bool) {
		once.Do(func() {
			fmt.Println("locked")
			_, _ = in.ReadString('\n')
		})
	}
	faults.recovered.Store(&rec)
	var v int
	tsn, _, err := update(ctx, db, func(tx *Tx) error {
		var err error
		if v, err = readInt(tx, "c", "page000001"); err != nil {
			return err
		}
		v++
		return tx.UpdatePage("c", "page000001", v)
	})
	if err != nil {
		fmt.Println("error", err)
		return 3
	}
	fmt.Println("ack", v, tsn)
	return 0
}

// boardOffererRole says "id <handle>", then makes n commits of page <page> of "c" + 1, saying
// "ack <value> <tsn>" after each. When its first commit is offered it says "offered"; if it then
// holds the commit lock before that first commit returns it says "outcome <json>", what its slot
// held before it settled (a first commit whose outcome it learned without the lock says nothing).
// At the end: "delegated <n>" (commits another process wrote).
func boardOffererRole(ctx context.Context, db *DB, page string, n int) int {
	fmt.Println("id", db.ID())
	var offered, printed sync.Once
	var first atomic.Bool // the first commit is in progress
	first.Store(true)
	did := make(chan struct{})
	off := func(*DB) { offered.Do(func() { fmt.Println("offered"); close(did) }) }
	faults.offer.Store(&off)
	rec := func(d *DB, _ bool) {
		select {
		case <-did:
		default:
			return
		}
		if !first.Load() {
			return
		}
		printed.Do(func() {
			out, ok, err := d.board.readOutcome(d.board.own.req)
			b, _ := json.Marshal(out)
			fmt.Println("outcome", ok, err == nil, string(b))
		})
	}
	faults.recovered.Store(&rec)
	for range n {
		var v int
		tsn, _, err := update(ctx, db, func(tx *Tx) error {
			var err error
			if v, err = readInt(tx, "c", page); err != nil {
				return err
			}
			v++
			return tx.UpdatePage("c", page, v)
		})
		first.Store(false)
		if err != nil {
			fmt.Println("error", err)
			return 3
		}
		fmt.Println("ack", v, tsn)
	}
	fmt.Println("delegated", db.Stats().Delegated)
	return 0
}

// A commit lock holder that took the offers of other processes is killed at each point from
// deciding their outcomes to publishing state. Each offerer, waiting for the lock, ends with its
// commit written exactly once: by the dead holder's batch (adopted by recovery) when it reached
// the log whole, else by itself or by the next holder (which clears the stale outcome first);
// every Commit it acknowledged names the record that holds it, and the log holds nothing of it
// that it did not acknowledge.
func TestProcessesHolderKilledWithOffer(t *testing.T) {
	points := []struct {
		name   string
		landed bool // the dead holder's batch reaches the log whole (recovery adopts it)
	}{
		{crashAfterOutcomes, false},
		{crashMidRecord, false},
		{crashAfterAppend, true},
		{crashAfterSync, true},
		{crashAfterState, true},
	}
	for _, p := range points {
		for _, offerers := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/offerers=%d", p.name, offerers), func(t *testing.T) {
				holderKilledWithOffer(t, p.name, p.landed, offerers)
			})
		}
	}
}

// offererRun is what one offerer said.
type offererRun struct {
	id        string
	page      string
	out       offerOutcome
	delegated int
	acks      [][2]int // value, tsn
}

func holderKilledWithOffer(t *testing.T, point string, landed bool, offerers int) {
	dir := t.TempDir()
	setupPages(t, dir, 1+offerers)
	const n = 3
	a := startChild(t, "board-holder", configEnv(t, childConfig{Dir: dir, NoOffer: true}), crashEnv+"="+point)
	a.expect(t, "ready")
	a.expect(t, "locked")
	var kids []*child
	runs := make([]*offererRun, offerers)
	for i := range offerers {
		page := pages.PageID(uint64(i + 2))
		k := startChild(t, "board-offerer", configEnv(t, childConfig{Dir: dir, N: n, Own: i + 2}))
		runs[i] = &offererRun{id: k.expect(t, "id"), page: page, delegated: -1}
		k.expect(t, "offered")
		kids = append(kids, k)
	}
	a.send(t, "go")
	linesA, errA := a.all(t)
	requireCrashed(t, a, errA, point)
	for _, l := range linesA {
		require.False(t, strings.HasPrefix(l, "ack "), "the holder acknowledged before dying: %q", l)
	}
	selfCommitted := 0 // offerers whose first commit is not at the TSN of the dead holder's outcome
	for i, k := range kids {
		lines, err := k.all(t)
		require.NoError(t, err, "offerer %d: %v", i, tail(lines))
		r, sawOut := runs[i], false
		for _, l := range lines {
			f := strings.Fields(l)
			switch {
			case len(f) >= 4 && f[0] == "outcome":
				require.Equal(t, []string{"true", "true"}, f[1:3], "the offer's outcome was on the board: %q", l)
				require.NoError(t, json.Unmarshal([]byte(strings.Join(f[3:], " ")), &r.out))
				sawOut = true
			case len(f) == 3 && f[0] == "ack":
				r.acks = append(r.acks, [2]int{atoi(t, f[1]), atoi(t, f[2])})
			case len(f) == 2 && f[0] == "delegated":
				r.delegated = atoi(t, f[1])
			case f[0] == "error":
				t.Fatalf("offerer %d: %q", i, l)
			}
		}
		require.Len(t, r.acks, n)
		if !sawOut {
			// It never needed the lock: another offerer's group committed this one's offer again
			// (after clearing the dead holder's stale outcome) and woke it, or, where the dead
			// holder's batch landed, that group's recovery adopted it, and the outcome the dead
			// holder wrote then read as committed when this one looked again. The log check
			// below holds it to the TSNs it acknowledged either way.
			require.GreaterOrEqual(t, r.delegated, 1, "offerer %d learned from the board: %v", i, lines)
			continue
		}
		require.Equal(t, r.id, r.out.Owner)
		require.Len(t, r.out.Res, 1)
		tsn := r.out.Res[0].TSN
		if tsn == 0 {
			continue
		}
		if landed {
			require.GreaterOrEqual(t, r.delegated, 1, "offerer %d: the dead holder's batch holds its first commit", i)
			require.Equal(t, int(tsn), r.acks[0][1], "offerer %d: the acknowledged TSN is the outcome's", i)
		} else if r.acks[0][1] < int(tsn) {
			selfCommitted++ // committed before the TSN the dead holder had given it
		}
	}
	if point == crashAfterOutcomes { // nothing of the batch was written (mid-record: a prefix may land)
		require.NotZero(t, selfCommitted, "the dead holder's batch never landed: the first offerer to get the lock committed itself, at a TSN below its stale outcome's")
	}

	// The log: every record of an offerer is one it acknowledged, with the value it acknowledged.
	type change struct {
		proc string
		page string
		v    int
	}
	byTSN := map[int]change{}
	mine := map[string]int{}
	others := 0
	for _, r := range logRecords(t, dir, pages.JSON) {
		if r.IsReservation() || r.TSN == 1 { // 1: setupPages'
			continue
		}
		require.Len(t, r.Ops, 1, "record %d", r.TSN)
		o := r.Ops[0]
		require.Len(t, o.Objects, 1)
		var v int
		require.NoError(t, o.Objects[0].Decode(&v))
		byTSN[int(r.TSN)] = change{r.Proc, o.Page, v}
		mine[r.Proc]++
		if o.Page == "page000001" {
			others++
		}
	}
	for i, r := range runs {
		require.Equal(t, n, mine[r.id], "offerer %d's commits in the log, each exactly once", i)
		for j, ack := range r.acks {
			require.Equal(t, change{r.id, r.page, j + 1}, byTSN[ack[1]], "offerer %d, ack %v: the record at its TSN", i, ack)
			require.Equal(t, j+1, ack[0])
		}
	}
	require.LessOrEqual(t, others, 1, "the holder's own commit, in flight when it died, at most once")

	db := mustOpen(t, dir, Config{OneObjectPerPage: true})
	require.NoError(t, view(context.Background(), db, func(tx *Tx) error {
		v, err := readInt(tx, "c", "page000001")
		require.NoError(t, err)
		require.Equal(t, others, v)
		for _, r := range runs {
			v, err := readInt(tx, "c", r.page)
			require.NoError(t, err)
			require.Equal(t, n, v)
		}
		return nil
	}))
}

// setupPages creates namespace "c" with pages page000001 to page<n>, each holding 0.
func setupPages(tb testing.TB, dir string, n int) {
	tb.Helper()
	db := mustOpen(tb, dir, Config{OneObjectPerPage: true})
	_, _, err := update(context.Background(), db, func(tx *Tx) error {
		if err := tx.CreateNamespace("c"); err != nil {
			return err
		}
		for range n {
			if _, err := tx.Insert("c", 0); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(tb, err)
	require.NoError(tb, db.Close())
}

// boardPairOffererRole says "id <handle>", then commits two transactions from two goroutines in
// one commit group (so that, offered, they are one request): the first adds 1 to page000002 of
// "c", the second writes {"v": n, "pad": 8 KiB} to page000003. It says "offered" when the group
// is offered and then "commit <i> <outcome> <tsn>" for each, without retrying.
func boardPairOffererRole(ctx context.Context, db *DB) int {
	fmt.Println("id", db.ID())
	var offered sync.Once
	off := func(*DB) { offered.Do(func() { fmt.Println("offered") }) }
	faults.offer.Store(&off)
	var mu sync.Mutex
	queued := 0
	both := make(chan struct{})
	q := func(delta int) {
		if delta < 0 {
			return
		}
		mu.Lock()
		queued++
		first, n := queued == 1, queued
		mu.Unlock()
		if n == 2 {
			close(both)
		}
		if first {
			<-both // the first request leads only once the second is queued: one group of two
		}
	}
	faults.queued.Store(&q)
	txs := make([]*Tx, 2)
	for i := range txs {
		tx, err := db.Begin(ctx, true)
		if err != nil {
			fmt.Println("error", err)
			return 3
		}
		txs[i] = tx
	}
	v, err := readInt(txs[0], "c", "page000002")
	if err == nil {
		err = txs[0].UpdatePage("c", "page000002", v+1)
	}
	if err == nil {
		if _, err = txs[1].ReadPage("c", "page000003"); err == nil {
			err = txs[1].UpdatePage("c", "page000003", map[string]any{"v": 1, "pad": strings.Repeat("p", 8<<10)})
		}
	}
	if err != nil {
		fmt.Println("error", err)
		return 3
	}
	var wg sync.WaitGroup
	res := make([]string, 2)
	for i, tx := range txs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := tx.Commit()
			res[i] = fmt.Sprintf("commit %d %s %d", i, strings.Fields(outcome(err))[0], tx.CommitTSN())
			if err != nil {
				res[i] += " " + err.Error()
			}
		}()
	}
	wg.Wait()
	for _, l := range res {
		fmt.Println(l)
	}
	return 0
}

// A holder dies while writing a batch that holds a two-transaction offer, after the first of the
// offer's records reached the log whole and inside the second: recovery adopts the whole records
// (the first is committed, at the TSN its outcome names) and erases the rest. The outcome then
// names one TSN state reached and one it did not. The offerer must report the first as
// committed, once, and never commit it again.
func TestProcessesOfferPartlyLanded(t *testing.T) {
	dir := t.TempDir()
	setupPages(t, dir, 3)
	a := startChild(t, "board-holder", configEnv(t, childConfig{Dir: dir, NoOffer: true}), crashEnv+"="+crashMidRecord)
	a.expect(t, "ready")
	a.expect(t, "locked")
	b := startChild(t, "board-pair-offerer", configEnv(t, childConfig{Dir: dir}))
	idB := b.expect(t, "id")
	b.expect(t, "offered")
	a.send(t, "go")
	_, errA := a.all(t)
	requireCrashed(t, a, errA, crashMidRecord)
	lines, err := b.all(t)
	require.NoError(t, err, "offerer: %v", tail(lines))
	said := map[int][]string{}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) >= 4 && f[0] == "commit" {
			said[atoi(t, f[1])] = f[2:]
		}
	}
	require.Len(t, said, 2, "offerer: %v", lines)
	inLog := map[string][]int{} // page -> TSNs of the offerer's records writing it
	for _, r := range logRecords(t, dir, pages.JSON) {
		if r.Proc == idB {
			for _, o := range r.Ops {
				inLog[o.Page] = append(inLog[o.Page], int(r.TSN))
			}
		}
	}
	for i, page := range []string{"page000002", "page000003"} {
		got := said[i]
		switch tsns := inLog[page]; len(tsns) {
		case 0:
			require.NotEqual(t, "committed", got[0], "transaction %d reported committed, not in the log", i)
		case 1:
			require.Equal(t, []string{"committed", fmt.Sprint(tsns[0])}, got[:2],
				"transaction %d is in the log once, at %d; its Commit said %v", i, tsns[0], got)
		default:
			t.Fatalf("transaction %d is in the log %d times (%v); its Commit said %v", i, len(tsns), tsns, got)
		}
	}
	require.Len(t, inLog["page000002"], 1, "the offer's first transaction landed with the dead holder's batch")
}

// A NoSync handle that holds the commit lock takes the offers of durable handles too; it must then
// fsync the batch before their Commits return. Every acknowledged commit of the durable bumpers
// is covered by an fsync, whichever process made it (the NoSync bumper's own acks promise none).
func TestProcessesFsyncCoverageNoSyncHolder(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	const durable, each = 3, 60
	bumpers := []childConfig{{Dir: dir, N: 2 * each, NoSync: true}}
	for range durable {
		bumpers = append(bumpers, childConfig{Dir: dir, N: each})
	}
	foreign, acks := coverageRun(t, dir, bumpers)
	require.Equal(t, durable*each, acks)
	t.Logf("%d of %d acknowledged durable commits were first covered by another process's fsync", foreign, durable*each)
}

// startUnderStrace is startChild with the child run under strace(1), whose arguments (fault
// injection, say) come first. It skips the test where strace is missing or cannot trace.
func startUnderStrace(t *testing.T, strace []string, role string, env ...string) *child {
	t.Helper()
	path, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace is not installed")
	}
	if out, err := exec.Command(path, "-f", "-o", os.DevNull, "true").CombinedOutput(); err != nil {
		t.Skipf("strace cannot trace here: %v: %s", err, out)
	}
	args := append(append([]string{"-f", "-qq", "-o", os.DevNull}, strace...), os.Args[0], "-test.run=^$")
	cmd := exec.Command(path, args...)
	cmd.Env = append(append(os.Environ(), "TXN_ROLE="+role), env...)
	return startCmd(t, cmd)
}

// An I/O error on a board file of the commit lock holder (strace injects EIO into its pwrite of
// the offerer's outcome, or into its read of the slots file) fails the holder's group before it
// writes anything: its own commit reports the error and is not in the log; the offerer commits
// its transaction itself, exactly once.
func TestProcessesBoardIOErrorOfHolder(t *testing.T) {
	for _, c := range []struct{ name, file, inject string }{
		{"outcome-pwrite", "1.req", "inject=pwrite64:error=EIO"},
		// The slots file is read from a mapping: mmap fails too, so reads use pread.
		{"slots-pread", "slots", "inject=pread64,mmap:error=EIO"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			setupPages(t, dir, 2)
			board := filepath.Join(dir, pages.MetaDir, boardDirName)
			// The holder opens first: it claims slot 0, the offerer slot 1 (the holder never
			// writes 1.req but for the outcome, and reads the slots file only to collect).
			a := startUnderStrace(t, []string{"-P", filepath.Join(board, c.file), "-e", "trace=pwrite64,pread64,mmap", "-e", c.inject},
				"board-holder", configEnv(t, childConfig{Dir: dir, NoOffer: true}))
			a.expect(t, "ready")
			a.expect(t, "locked")
			b := startChild(t, "board-offerer", configEnv(t, childConfig{Dir: dir, N: 2, Own: 2}))
			idB := b.expect(t, "id")
			b.expect(t, "offered")
			a.send(t, "go")
			linesA, errA := a.all(t)
			require.Error(t, errA, "the holder's commit failed: %v", linesA)
			require.Contains(t, strings.Join(linesA, "\n"), "input/output error")
			linesB, errB := b.all(t)
			require.NoError(t, errB, "offerer: %v", tail(linesB))
			var acks []int
			for _, l := range linesB {
				if f := strings.Fields(l); len(f) == 3 && f[0] == "ack" {
					acks = append(acks, atoi(t, f[2]))
				}
			}
			require.Len(t, acks, 2)
			var byB []int
			for _, r := range logRecords(t, dir, pages.JSON) {
				if r.TSN == 1 || r.IsReservation() {
					continue
				}
				require.Equal(t, idB, r.Proc, "record %d: only the offerer's commits are in the log", r.TSN)
				byB = append(byB, int(r.TSN))
			}
			require.Equal(t, acks, byB, "each acknowledged commit exactly once, at its TSN")
		})
	}
}
