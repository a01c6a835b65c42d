package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/procharness/history"
)

// params are the worker's flags.
type params struct {
	dir, workload, name, format string
	seed                        uint64
	uid                         int64
	ops                         int64
	accounts, keys              int
	balance                     int64
	noSync, checkpoint, rename  bool
	segmentBytes, logRetention  int64
	checkpointEvery             time.Duration
	plant, incrOnly, lineage    bool
	maxList                     int
	maxWrites                   int64
	role                        string
	lease                       time.Duration
	bound                       int
	filter                      string
	from                        uint64
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout))
}

func run(args []string, stdin io.Reader, stdout io.Writer) int {
	var p params
	fs := flag.NewFlagSet("txtdb-worker", flag.ContinueOnError)
	fs.StringVar(&p.dir, "dir", "", "data directory (required)")
	fs.StringVar(&p.workload, "workload", "", "bank, counter, register, append, queue, events or hold (required)")
	fs.StringVar(&p.name, "name", "", "worker name in the history (default w<pid>)")
	fs.Uint64Var(&p.seed, "seed", 0, "random seed (0: from the clock)")
	fs.Int64Var(&p.uid, "uid", 0, "unique id of this worker run, for unique appended values (default: pid)")
	fs.Int64Var(&p.ops, "ops", 0, "stop after this many operations, setup not counted (0: until stopped)")
	fs.IntVar(&p.accounts, "accounts", 10, "bank: accounts")
	fs.Int64Var(&p.balance, "balance", 100, "bank: initial balance of each account")
	fs.IntVar(&p.keys, "keys", 0, "counter, register, append: keys (default 4, 3, 8)")
	fs.StringVar(&p.format, "format", "", "store format for a new store: json, yaml, xml")
	fs.BoolVar(&p.noSync, "nosync", false, "commit without fsync")
	fs.BoolVar(&p.checkpoint, "checkpoint", false, "counter: checkpoint after every operation")
	fs.BoolVar(&p.rename, "rename", false, "counter: rename churn.a <-> churn.b every other operation")
	fs.Int64Var(&p.segmentBytes, "segment-bytes", 0, "log segment size (0: default)")
	fs.Int64Var(&p.logRetention, "log-retention", 0, "log retention in bytes (0: default, negative: none)")
	fs.DurationVar(&p.checkpointEvery, "checkpoint-every", 0, "checkpoint lag bound (0: default)")
	fs.IntVar(&p.maxList, "max-list", 200, "append: move to a new generation of lists once one holds this many values (0: never)")
	fs.Int64Var(&p.maxWrites, "max-writes", 500, "register: move to a new generation of registers once one has had this many writes (0: never)")
	fs.StringVar(&p.role, "role", "both", "queue: producer, consumer or both")
	fs.DurationVar(&p.lease, "lease", time.Second, "queue: a consumer may reclaim a job another handle claimed longer ago than this")
	fs.IntVar(&p.bound, "bound", 4, "queue: most jobs of one producer waiting at a time")
	fs.StringVar(&p.filter, "ns", "", "events: comma-separated namespaces to subscribe to (empty: all)")
	fs.Uint64Var(&p.from, "from", 0, "events: resume after this TSN (0: from now)")
	fs.BoolVar(&p.incrOnly, "incr-only", false, "counter: only increments (and the final read)")
	fs.BoolVar(&p.lineage, "lineage", false, "name the store's lineage in the ready line (opens the change feed)")
	fs.BoolVar(&p.plant, "plant-violation", false, "bank, counter, append, queue: commit one wrong operation (proves the checkers fail)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if p.dir == "" || p.workload == "" {
		fmt.Fprintln(os.Stderr, "txtdb-worker: -dir and -workload are required")
		return 2
	}
	if p.name == "" {
		p.name = fmt.Sprintf("w%d", os.Getpid())
	}
	if p.uid == 0 {
		p.uid = int64(os.Getpid())
	}
	if p.seed == 0 {
		p.seed = uint64(time.Now().UnixNano())
	}
	wl, err := newWorkload(p)
	if err != nil {
		fmt.Fprintln(os.Stderr, "txtdb-worker:", err)
		return 2
	}
	opts := &txtdb.Options{OneObjectPerPage: true, NoSync: p.noSync, SegmentSize: p.segmentBytes,
		LogRetention: p.logRetention, CheckpointEvery: p.checkpointEvery}
	if p.format != "" {
		if opts.Format, err = txtdb.ParseFormat(p.format); err != nil {
			fmt.Fprintln(os.Stderr, "txtdb-worker:", err)
			return 2
		}
	}
	db, err := txtdb.Open(p.dir, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "txtdb-worker: open:", err)
		return 1
	}
	defer db.Close()

	// stop ends when stdin reaches EOF or SIGTERM/SIGINT arrives.
	stop, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, bufio.NewReader(stdin))
		cancel()
	}()

	e := &env{db: db, w: history.NewWriter(stdout, p.name), rng: rand.New(rand.NewPCG(p.seed, uint64(p.uid))),
		p: p, stop: stop}
	setupCtx, setupDone := context.WithTimeout(context.Background(), opTimeout)
	err = setup(setupCtx, e, wl)
	setupDone()
	if err != nil {
		fmt.Fprintln(os.Stderr, "txtdb-worker: setup:", err)
		return 1
	}
	ri := history.ReadyInfo{PID: os.Getpid(), Workload: p.workload, Dir: p.dir, Format: db.Format().String(), ID: db.ID()}
	if r, ok := wl.(interface{ ready(*history.ReadyInfo) }); ok {
		r.ready(&ri)
	}
	if p.lineage {
		if ri.Lineage, err = lineage(db); err != nil {
			fmt.Fprintln(os.Stderr, "txtdb-worker: lineage:", err)
			return 1
		}
	}
	if err := e.w.Write(history.Line{Type: history.Ready, Value: history.Value(ri)}); err != nil {
		fmt.Fprintln(os.Stderr, "txtdb-worker:", err)
		return 1
	}
	for p.ops == 0 || e.sum.Ops-e.setups < p.ops {
		if stop.Err() != nil {
			break
		}
		if err := wl.step(e); err != nil {
			fmt.Fprintln(os.Stderr, "txtdb-worker:", err)
			return 3
		}
	}
	if err := wl.final(e); err != nil {
		fmt.Fprintln(os.Stderr, "txtdb-worker: final:", err)
		return 3
	}
	if err := e.w.Write(history.Line{Type: history.Summary, Value: history.Value(e.sum)}); err != nil {
		fmt.Fprintln(os.Stderr, "txtdb-worker:", err)
		return 1
	}
	if err := db.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "txtdb-worker: close:", err)
		return 1
	}
	return 0
}

// lineage returns the store's lineage, which the TSNs of this worker's commits belong to (the
// lineage changes only at a recovery that may have rewound history, before any process commits).
func lineage(db *txtdb.DB) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	sub, err := db.Subscribe(ctx, txtdb.SubscribeOptions{})
	if err != nil {
		return "", err
	}
	defer sub.Close()
	return sub.Lineage(), nil
}

// setup runs the workload's setup, again when it fails because another worker set up the same
// namespace at the same moment (the loser's commit fails; the retry sees the winner's pages).
func setup(ctx context.Context, e *env, wl workload) error {
	var err error
	for range 20 {
		if err = wl.setup(ctx, e); err == nil || ctx.Err() != nil || errors.Is(err, errSetupMismatch) {
			return err
		}
	}
	return err
}

func newWorkload(p params) (workload, error) {
	keys := func(def int) int {
		if p.keys > 0 {
			return p.keys
		}
		return def
	}
	switch p.workload {
	case "bank":
		return &bank{n: p.accounts, balance: p.balance}, nil
	case "counter":
		return &counter{n: keys(4)}, nil
	case "register":
		return &register{n: keys(3), maxWrites: p.maxWrites}, nil
	case "append":
		return &appendLists{n: keys(8), maxLen: p.maxList}, nil
	case "hold":
		return &hold{}, nil
	case "events":
		return newFeedWatch(p), nil
	case "queue":
		if p.role != "producer" && p.role != "consumer" && p.role != "both" {
			return nil, fmt.Errorf("queue: unknown -role %q", p.role)
		}
		return &queue{produce: p.role != "consumer", consume: p.role != "producer", bound: max(1, p.bound), lease: p.lease}, nil
	}
	return nil, fmt.Errorf("unknown workload %q", p.workload)
}
