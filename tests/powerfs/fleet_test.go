package powerfs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/procharness"
	"github.com/txtdb/txtdb/procharness/check"
	"github.com/txtdb/txtdb/procharness/elle"
	"github.com/txtdb/txtdb/procharness/history"
)

// The fleet tests run txtdb-worker processes through procharness on the mount: each round a
// process of a new boot opens the store and checks it (Check, the page files, a subscriber
// resuming with the last round's lineage), workers of several workloads commit, then every
// process is SIGKILLed, the layer cuts power and the next round boots. The workers' histories of
// all rounds together go to the workloads' checkers at the end. The workers are not the test
// binary, so their syncfs calls reach nobody: the engine must not need them.

const (
	fleetAccounts = 5
	fleetBalance  = 100
	fleetCounters = 3
)

// fleet is a fleet scenario.
type fleet struct {
	rounds    int
	workloads []string // one worker each
	ops       int64    // operations each worker completes in a round before the cut
	noSync    bool
	args      []string // more flags for every worker
	seg       int64    // the store's segment size, with no log retention (0: the defaults)
	cuts      []Cut
	lie       Lie
}

// fleetCheckResult is what a checking child prints.
type fleetCheckResult struct {
	verifyResult
	Resume string `json:"resume"` // resuming the last round's lineage: "ok", "lineage" (ErrLineage) or an error
}

// fleetRun is what a fleet run saw.
type fleetRun struct {
	violations []string
	hist       *history.History
	lineages   int // lineages the store went through
	cuts       []string
	lied       int
}

func (fl fleet) spec(wl string) procharness.Spec {
	args := []string{"-lineage", "-accounts", strconv.Itoa(fleetAccounts), "-balance", strconv.Itoa(fleetBalance)}
	switch wl {
	case "counter":
		args = append(args, "-keys", strconv.Itoa(fleetCounters))
	case "append":
		args = append(args, "-keys", "4", "-max-list", "16")
	}
	if fl.noSync {
		args = append(args, "-nosync")
	}
	if fl.seg > 0 {
		args = append(args, "-segment-bytes", strconv.FormatInt(fl.seg, 10), "-log-retention", "-1")
	}
	return procharness.Spec{Workload: wl, Args: append(args, fl.args...)}
}

func (fl fleet) run(t *testing.T) *fleetRun {
	t.Helper()
	if why := Available(); why != "" {
		t.Skip(why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	base := t.TempDir()
	backing, mnt := filepath.Join(base, "disk"), filepath.Join(base, "mnt")
	for _, d := range []string{backing, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(mnt, "db")
	var boot *Boot // the current round's; Wrap runs on this goroutine (Start, Restart)
	seed := procharness.SeedFromEnv()
	h, err := procharness.New(ctx, procharness.Options{Dir: dir, Seed: seed, Wrap: func(c *exec.Cmd) { boot.Wrap(c) }})
	if err != nil {
		t.Fatal(err)
	}
	defer h.KillAll()
	out := &fleetRun{hist: h.History()}
	bad := func(round int, format string, args ...any) {
		v := fmt.Sprintf("round %d: ", round) + fmt.Sprintf(format, args...)
		if len(out.violations) < 10 {
			t.Log(v)
		}
		out.violations = append(out.violations, v)
	}
	t.Logf("seed %d (%s=%d replays the worker seeds)", seed, procharness.SeedEnv, seed)
	var live []*procharness.Proc
	prevLin, prevTSN := "", uint64(0)
	for round := 0; round <= fl.rounds; round++ {
		last := round == fl.rounds // the last round stops the workers cleanly instead of a cut
		f, err := Mount(backing, mnt, Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Unmount() })
		if round == 0 {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			syncDir(t, mnt)
		}
		if boot, err = NewBoot(base); err != nil {
			t.Fatal(err)
		}
		f.SetLie(fl.lie)
		// A subscriber resumes where it would have stopped: at the last TSN acknowledged (or seen).
		acked := maxAcked(h.History())
		from := max(prevTSN, acked[prevLin])
		res, ok := fleetCheck(t, boot, mnt, dir, fl.seg, prevLin, from)
		if !ok {
			bad(round, "the checking process failed: %s", res.Resume)
			out.lied += f.Lied()
			f.Unmount()
			return out
		}
		switch {
		case res.Boot != boot.ID:
			bad(round, "the checking process saw boot id %q, want %q", res.Boot, boot.ID)
		case prevLin != "" && res.Lineage == prevLin && res.TSN < acked[prevLin]:
			bad(round, "lineage %.8s rewound from acknowledged TSN %d to %d without a new lineage", prevLin, acked[prevLin], res.TSN)
		case !fl.noSync && prevLin != "" && res.Lineage != prevLin:
			bad(round, "a new lineage (%.8s -> %.8s) with every commit synced", prevLin, res.Lineage)
		case !fl.noSync && res.TSN < acked[res.Lineage]:
			bad(round, "the store is at TSN %d, below the acknowledged %d", res.TSN, acked[res.Lineage])
		}
		if prevLin != "" {
			want := map[bool]string{true: "ok", false: "lineage"}[res.Lineage == prevLin]
			if res.Resume != want {
				bad(round, "a subscriber resuming lineage %.8s at TSN %d got %q, want %q (store: lineage %.8s, TSN %d)",
					prevLin, from, res.Resume, want, res.Lineage, res.TSN)
			}
		}
		if res.Lineage != prevLin {
			out.lineages++
		}
		for _, p := range res.Problems {
			bad(round, "check (store at TSN %d, checkpoint %d): %s", res.TSN, res.Ckpt, p)
		}
		if probs, err := pageFileProblems(dir, res.TSN); err != nil {
			bad(round, "page files: %v", err)
		} else {
			for _, p := range probs {
				bad(round, "page files: %s", p)
			}
		}
		prevLin, prevTSN = res.Lineage, res.TSN

		// The workers: a new slot each in round 0, a new incarnation of it afterwards.
		if round == 0 {
			for _, wl := range fl.workloads {
				p, err := h.StartNoWait(fl.spec(wl))
				if err != nil {
					t.Fatal(err)
				}
				live = append(live, p)
			}
			for _, p := range live {
				if _, err := p.WaitReady(ctx); err != nil {
					t.Fatal(err)
				}
			}
		} else {
			for i, p := range live {
				np, err := h.Restart(ctx, p)
				if err != nil {
					bad(round, "restart %s: %v", p.Name, err)
					return out
				}
				live[i] = np
			}
		}
		// Until every worker completed fl.ops operations.
		for done := false; !done; {
			done = true
			for _, p := range live {
				select {
				case <-p.Done():
					e, _ := p.Wait(ctx)
					bad(round, "%s exited: %s", p.Name, e)
					return out
				default:
				}
				done = done && p.Ops() >= fl.ops
			}
			if done {
				break
			}
			select {
			case <-h.Changed():
			case <-ctx.Done():
				t.Fatalf("round %d: workers did not complete %d operations each: %v", round, fl.ops, ctx.Err())
			}
		}
		if last {
			if err := h.StopAll(ctx); err != nil {
				bad(round, "stop: %v", err)
			}
			res, ok := fleetCheck(t, boot, mnt, dir, fl.seg, "", 0)
			if !ok {
				bad(round, "the final checking process failed: %s", res.Resume)
			}
			for _, p := range res.Problems {
				bad(round, "final check: %s", p)
			}
			out.lied += f.Lied()
			if err := f.Unmount(); err != nil {
				t.Fatal(err)
			}
			break
		}
		for _, p := range live { // SIGKILL all at once, then reap
			syscall.Kill(p.PID, syscall.SIGKILL)
		}
		h.KillAll()
		cut := fl.cuts[(round*7)%len(fl.cuts)] // 7 is prime to len(Cuts()): every mode, in a mixed order
		rep, err := f.Cut(cut)
		if err != nil {
			t.Fatal(err)
		}
		out.lied += f.Lied()
		out.cuts = append(out.cuts, cut.String())
		t.Logf("round %d: boot %.8s, store at TSN %d (checkpoint %d, lineage %.8s, %d leftovers), %d commits so far, %v: %+v, syncfs seen %d",
			round, boot.ID, res.TSN, res.Ckpt, res.Lineage, res.Leftovers, h.Commits(), cut, rep, f.Stats().Syncfs)
	}
	for _, v := range tsnReuse(h.History()) {
		bad(fl.rounds, "%s", v)
	}
	return out
}

// checks runs the workloads' checkers on the history of every round together (with sync on:
// every acknowledged commit is in every later read). Under NoSync a cut may lose acknowledged
// commits, so only the bank's invariant (no torn transfer: every read holds the whole total) is
// checked.
func (fl fleet) checks(hist *history.History) []check.Result {
	var out []check.Result
	seen := map[string]bool{}
	for _, wl := range fl.workloads {
		if seen[wl] {
			continue
		}
		seen[wl] = true
		sub := check.Select(hist, wl)
		switch {
		case wl == "bank" && fl.noSync:
			out = append(out, bankTotals(sub))
		case fl.noSync:
		case wl == "bank":
			out = append(out, check.Bank(sub, check.BankConfig{Accounts: fleetAccounts, Balance: fleetBalance}))
		case wl == "counter":
			out = append(out, check.Counter(sub, fleetCounters))
		case wl == "append":
			out = append(out, check.Lists(sub), check.Elle(sub, elle.Serializable))
		}
	}
	return out
}

// bankTotals checks that every bank read holds the whole total.
func bankTotals(h *history.History) check.Result {
	res := check.Result{Checker: "bank-totals", Verdict: check.Pass}
	ops, err := h.Ops()
	if err != nil {
		return check.Result{Checker: "bank-totals", Verdict: check.Unknown, Explanation: err.Error()}
	}
	reads := 0
	for _, o := range ops {
		if o.F != "read" || o.Type() != history.OK {
			continue
		}
		var bal history.Balances
		if err := o.Done.Decode(&bal); err != nil {
			return check.Result{Checker: "bank-totals", Verdict: check.Unknown, Explanation: err.Error()}
		}
		var sum int64
		for _, b := range bal {
			sum += b
		}
		reads++
		if sum != fleetAccounts*fleetBalance || len(bal) != fleetAccounts {
			res.Verdict = check.Fail
			res.Explanation = fmt.Sprintf("%s op %d at snapshot %d read %v: total %d, want %d", o.Worker, o.ID, o.Done.Snap, bal, sum, fleetAccounts*fleetBalance)
			return res
		}
	}
	res.Explanation = fmt.Sprintf("%d reads, each holding the total %d", reads, fleetAccounts*fleetBalance)
	return res
}

// lineages maps each worker of h to the lineage its ready line names.
func lineages(h *history.History) map[string]string {
	out := map[string]string{}
	for _, l := range h.Lines() {
		var ri history.ReadyInfo
		if l.Type == history.Ready && l.Decode(&ri) == nil {
			out[l.Worker] = ri.Lineage
		}
	}
	return out
}

// maxAcked returns, per lineage, the highest TSN a worker acknowledged.
func maxAcked(h *history.History) map[string]uint64 {
	lin := lineages(h)
	out := map[string]uint64{}
	for _, l := range h.Lines() {
		if l.Type == history.OK && l.TSN != 0 {
			out[lin[l.Worker]] = max(out[lin[l.Worker]], l.TSN)
		}
	}
	return out
}

// tsnReuse returns a violation for every TSN acknowledged to two commits under one lineage.
func tsnReuse(h *history.History) []string {
	lin := lineages(h)
	type key struct {
		lin string
		tsn uint64
	}
	first := map[key]string{}
	var out []string
	for _, l := range h.Lines() {
		if l.Type != history.OK || l.TSN == 0 {
			continue
		}
		k := key{lin[l.Worker], l.TSN}
		who := fmt.Sprintf("%s op %d", l.Worker, l.Op)
		if prev, dup := first[k]; dup {
			out = append(out, fmt.Sprintf("TSN %d acknowledged twice under lineage %.8s: %s and %s", l.TSN, k.lin, prev, who))
			continue
		}
		first[k] = who
	}
	return out
}

// fleetCheck runs a checking child under boot and returns what it printed.
func fleetCheck(t *testing.T, boot *Boot, mnt, dir string, seg int64, lin string, from uint64) (fleetCheckResult, bool) {
	t.Helper()
	c := startChild(t, boot, mnt, true, "POWERFS_CHILD=fleetcheck", "POWERFS_DIR="+dir, "POWERFS_SEG="+strconv.FormatInt(seg, 10),
		"POWERFS_LINEAGE="+lin, "POWERFS_FROM="+strconv.FormatUint(from, 10))
	line, _ := c.next()
	var res fleetCheckResult
	if err := c.wait(); err != nil || !strings.HasPrefix(line, "check ") {
		res.Resume = fmt.Sprintf("%q %v %s", line, err, c.stderr.String())
		return res, false
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "check ")), &res); err != nil {
		t.Fatal(err)
	}
	return res, true
}

// childFleetCheck opens the store the workers use, runs Check, resumes a subscription at
// POWERFS_FROM under POWERFS_LINEAGE (if set) and prints the result.
func childFleetCheck(ctx context.Context, dir string) error {
	opts := &txtdb.Options{OneObjectPerPage: true, LockTimeout: time.Minute}
	if n, _ := strconv.ParseInt(os.Getenv("POWERFS_SEG"), 10, 64); n > 0 {
		opts.SegmentSize, opts.LogRetention = n, -1
	}
	db, err := txtdb.Open(dir, opts)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer db.Close()
	res := fleetCheckResult{verifyResult: verifyResult{Boot: bootID()}}
	err = db.View(ctx, func(tx *txtdb.Tx) error {
		res.TSN = uint64(tx.Snapshot())
		return nil
	})
	if err != nil {
		return err
	}
	if res.Lineage, err = lineage(ctx, db); err != nil {
		return err
	}
	if lin := os.Getenv("POWERFS_LINEAGE"); lin != "" {
		from, _ := strconv.ParseUint(os.Getenv("POWERFS_FROM"), 10, 64)
		sub, err := db.Subscribe(ctx, txtdb.SubscribeOptions{From: txtdb.TSN(from), Lineage: lin})
		switch {
		case err == nil:
			res.Resume = "ok"
			sub.Close()
		case errors.Is(err, txtdb.ErrLineage):
			res.Resume = "lineage"
		default:
			res.Resume = err.Error()
		}
	}
	res.Ckpt = uint64(db.Stats().CheckpointTSN)
	probs, err := db.Check(ctx)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	for _, p := range probs {
		if errors.Is(p.Err, txtdb.ErrLeftover) {
			res.Leftovers++
			continue
		}
		res.Problems = append(res.Problems, fmt.Sprintf("%s: %v", p.Path, p.Err))
	}
	b, _ := json.Marshal(res)
	fmt.Printf("check %s\n", b)
	return nil
}

func requireFleetClean(t *testing.T, fl fleet, r *fleetRun) {
	t.Helper()
	if r.lied != 0 {
		t.Fatalf("%d fsyncs lied in a run without a planted bug", r.lied)
	}
	for _, res := range fl.checks(r.hist) {
		if !res.OK() {
			r.violations = append(r.violations, fmt.Sprintf("checker %s: %s", res.Checker, res.Explanation))
		} else {
			t.Logf("checker %s: %s", res.Checker, res.Explanation)
		}
	}
	t.Logf("%d rounds, %d cuts (%s), %d lineages, %d history lines", fl.rounds, len(r.cuts), strings.Join(slices.Compact(slices.Sorted(slices.Values(r.cuts))), ", "), r.lineages, r.hist.Len())
	if len(r.violations) > 0 {
		t.Fatalf("%d violations, first: %s", len(r.violations), r.violations[0])
	}
}

// TestFleetPowerCut: bank, counter and append workers with sync on, a new boot each round,
// every cut mode in turn.
func TestFleetPowerCut(t *testing.T) {
	fl := fleet{rounds: rounds(3, 32), workloads: []string{"bank", "bank", "counter", "counter", "append", "append"},
		ops: 25, cuts: Cuts(500)}
	requireFleetClean(t, fl, fl.run(t))
}

// TestFleetPowerCutNoSync: NoSync workers; a cut loses the commits since the last fsync. Each
// rewind must start a new lineage, a subscriber resuming the old one must get ErrLineage, no TSN
// may be acknowledged twice under one lineage, and no transfer may be torn.
func TestFleetPowerCutNoSync(t *testing.T) {
	cuts := append([]Cut{{Data: DataNone, Meta: MetaAll}}, Cuts(600)...)
	fl := fleet{rounds: rounds(3, 24), workloads: []string{"bank", "bank", "counter"}, noSync: true, ops: 25, cuts: cuts[:1]}
	if !testing.Short() {
		fl.cuts = cuts
	}
	r := fl.run(t)
	if r.lineages < 2 {
		r.violations = append(r.violations, fmt.Sprintf("%d lineages: no cut rewound the store, so the rewind was not tested", r.lineages))
	}
	requireFleetClean(t, fl, r)
}

// TestFleetCheckpointCut: checkpoints every millisecond, 16 KiB segments and no log retention,
// the counter workers renaming a namespace every other operation, so that cuts land in
// checkpoints, moves and log trimming. Every page must read back right (the checkers), Check
// must be clean and no page file may name a TSN neither the catalog nor the log has.
func TestFleetCheckpointCut(t *testing.T) {
	fl := fleet{rounds: rounds(3, 24), workloads: []string{"bank", "counter", "counter", "append"}, ops: 30,
		args: []string{"-checkpoint-every", "1ms", "-rename"}, seg: 16 << 10,
		cuts: Cuts(700)}
	requireFleetClean(t, fl, fl.run(t))
}

// TestFleetPlantedMissingLogFsync: the fleet tests catch a store whose log fsyncs do nothing.
func TestFleetPlantedMissingLogFsync(t *testing.T) {
	fl := fleet{rounds: 2, workloads: []string{"bank", "counter"}, ops: 20, args: []string{"-checkpoint-every", "1h"},
		cuts: []Cut{{Data: DataNone, Meta: MetaAll}},
		lie:  Lie{Match: func(p string, dir bool) bool { return !dir && strings.HasPrefix(p, "db/.txtdb/log/") }}}
	r := fl.run(t)
	if r.lied == 0 {
		t.Fatal("no log fsync reached the lie")
	}
	for _, res := range fl.checks(r.hist) {
		if !res.OK() {
			r.violations = append(r.violations, res.String())
		}
	}
	if len(r.violations) == 0 {
		t.Fatalf("a store whose log fsyncs did nothing (%d) passed every check", r.lied)
	}
	t.Logf("caught: %s", r.violations[0])
}

// TestTSNReuseChecker: two commits acknowledged with one TSN under one lineage are reported;
// under two lineages (a rewind) they are not.
func TestTSNReuseChecker(t *testing.T) {
	var h history.History
	ready := func(w, lin string) {
		h.Add(history.Line{Type: history.Ready, Worker: w, Value: history.Value(history.ReadyInfo{Workload: "bank", Lineage: lin})})
	}
	ok := func(w string, op int64, tsn uint64) {
		h.Add(history.Line{Type: history.OK, Worker: w, Op: op, F: "transfer", TSN: tsn})
	}
	ready("w0.1", "L1")
	ready("w1.1", "L2")
	ok("w0.1", 1, 5)
	ok("w1.1", 1, 5)
	if v := tsnReuse(&h); len(v) != 0 {
		t.Fatalf("TSN 5 under two lineages reported: %v", v)
	}
	ready("w2.1", "L1")
	ok("w2.1", 1, 5) // the planted reuse
	if v := tsnReuse(&h); len(v) != 1 {
		t.Fatalf("planted reuse: got %v, want one violation", v)
	}
}
