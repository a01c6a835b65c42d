package procharness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"time"

	"github.com/txtdb/txtdb/procharness/check"
	"github.com/txtdb/txtdb/procharness/elle"
	"github.com/txtdb/txtdb/procharness/history"
)

// Config describes a Run.
type Config struct {
	Dir     string // the data directory (required; Run does not remove it)
	Binary  string // the worker binary; "" builds it
	Workers int    // worker processes (default 4)
	// Wrap changes every worker's command before it starts (Options.Wrap).
	Wrap func(*exec.Cmd)
	// Workloads are assigned to the workers round-robin (default: bank).
	Workloads []string
	// Length: the run stops once the workers completed Ops operations in total, or after
	// Duration, whichever comes first; at least one must be set.
	Ops      int64
	Duration time.Duration
	// Kills: Kills SIGKILLs at random points of the first 90% of Ops (needs Ops), and/or one
	// every KillEvery (with jitter). A killed worker is restarted at once in its slot.
	Kills     int
	KillEvery time.Duration
	// MinKills, with Duration and KillEvery: the run goes on past Duration until it has killed
	// this many workers.
	MinKills int
	// KillSlots restricts the kills to these slots (nil: any worker).
	KillSlots []int
	Seed      uint64        // schedule and worker seeds; 0: random (see SeedFromEnv)
	Deadline  time.Duration // bound on the whole run (default 5 minutes)
	// Workload parameters (defaults: 10 accounts of 100, 4 counters, 3 registers, 8 lists).
	Accounts     int
	Balance      int64
	CounterKeys  int
	RegisterKeys int
	AppendKeys   int
	// AppendMaxList is the list length at which append workers move to a new generation of
	// lists (0: the worker's default).
	AppendMaxList int
	// RegisterMaxWrites is the write count at which register workers move to a new generation
	// of registers (0: the worker's default).
	RegisterMaxWrites int
	NoSync            bool
	Args              []string // more flags for every worker
	// PlantViolation makes the first worker of every workload commit one wrong operation (bank,
	// counter, append, queue) or drop an event (events), so that its checkers must fail.
	PlantViolation bool
	// RegisterTimeout bounds the linearizability search (default 1 minute).
	RegisterTimeout time.Duration
	// Checkers replaces the checkers of a workload (the default for append is check.Lists and
	// check.Elle at serializable).
	Checkers map[string]func(*history.History) check.Result
	// Progress, if set, is called about every ProgressEvery (default 1s) from Run's goroutine.
	Progress      func(Progress)
	ProgressEvery time.Duration
}

// Progress is a progress sample of a run.
type Progress struct {
	Elapsed   time.Duration
	Ops       int64 // operations completed
	Commits   int64 // of them, commits (ok with a TSN)
	Conflicts int64 // commit attempts that lost validation
	Kills     int
	Restarts  int
	Workers   int
	Completed bool // the last sample
}

func (c *Config) defaults() error {
	if c.Dir == "" {
		return errors.New("procharness: Config.Dir is required")
	}
	if c.Ops <= 0 && c.Duration <= 0 {
		return errors.New("procharness: Config needs Ops or Duration")
	}
	if c.Kills > 0 && c.Ops <= 0 {
		return errors.New("procharness: Config.Kills needs Ops")
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if len(c.Workloads) == 0 {
		c.Workloads = []string{"bank"}
	}
	if c.Deadline <= 0 {
		c.Deadline = 5 * time.Minute
	}
	if c.Accounts <= 0 {
		c.Accounts = 10
	}
	if c.Balance <= 0 {
		c.Balance = 100
	}
	if c.CounterKeys <= 0 {
		c.CounterKeys = 4
	}
	if c.RegisterKeys <= 0 {
		c.RegisterKeys = 3
	}
	if c.AppendKeys <= 0 {
		c.AppendKeys = 8
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = time.Second
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64() | 1
	}
	return nil
}

// spec returns the worker spec of slot.
func (c *Config) spec(slot int) Spec {
	wl := c.Workloads[slot%len(c.Workloads)]
	args := []string{"-accounts", strconv.Itoa(c.Accounts), "-balance", strconv.FormatInt(c.Balance, 10)}
	switch wl {
	case "counter":
		args = append(args, "-keys", strconv.Itoa(c.CounterKeys))
	case "register":
		args = append(args, "-keys", strconv.Itoa(c.RegisterKeys))
		if c.RegisterMaxWrites > 0 {
			args = append(args, "-max-writes", strconv.Itoa(c.RegisterMaxWrites))
		}
	case "append":
		args = append(args, "-keys", strconv.Itoa(c.AppendKeys))
		if c.AppendMaxList > 0 {
			args = append(args, "-max-list", strconv.Itoa(c.AppendMaxList))
		}
	case "queue":
		// Producers and consumers alternate; a lone queue worker is both.
		role := [2]string{"producer", "consumer"}[c.index(slot)%2]
		if c.count("queue") == 1 {
			role = "both"
		}
		args = append(args, "-role", role)
	case "events":
		// Every other events worker sees everything; the others filter on the namespace of the
		// first writing workload of the mix.
		if ns := c.firstNS(); ns != "" && c.index(slot)%2 == 1 {
			args = append(args, "-ns", ns)
		}
	}
	if c.NoSync {
		args = append(args, "-nosync")
	}
	// Every queue worker gets it: only consumers complete jobs.
	if c.PlantViolation && (c.index(slot) == 0 || wl == "queue") && wl != "register" && wl != "hold" {
		args = append(args, "-plant-violation")
	}
	return Spec{Workload: wl, Args: append(args, c.Args...)}
}

// index returns how many slots before slot run slot's workload.
func (c *Config) index(slot int) int {
	n := 0
	for i := range slot {
		if c.Workloads[i%len(c.Workloads)] == c.Workloads[slot%len(c.Workloads)] {
			n++
		}
	}
	return n
}

// count returns how many slots run workload wl.
func (c *Config) count(wl string) int {
	n := 0
	for i := range c.Workers {
		if c.Workloads[i%len(c.Workloads)] == wl {
			n++
		}
	}
	return n
}

// firstNS returns the namespace of the first workload of the mix that writes one ("" if none).
func (c *Config) firstNS() string {
	for _, wl := range c.Workloads {
		switch wl {
		case "bank", "counter", "register", "append", "queue":
			return wl // each writes the namespace of its name (append: below it)
		}
	}
	return ""
}

// killAt is one planned kill: once the run has completed ops operations, kill a worker.
type killAt struct{ ops int64 }

// plan returns the op-count kill schedule, sorted.
func (c *Config) plan(rng *rand.Rand) []killAt {
	out := make([]killAt, c.Kills)
	lo, hi := c.Ops/20, c.Ops*9/10
	for i := range out {
		out[i] = killAt{lo + rng.Int64N(max(1, hi-lo))}
	}
	slices.SortFunc(out, func(a, b killAt) int { return int(a.ops - b.ops) })
	return out
}

// Run runs a fleet on cfg.Dir: it starts the workers (waiting for every ready line), kills and
// restarts them on the schedule, stops them when the run is long enough, checks every workload's
// history and the directory (Checkpoint, Check), and returns the report. The error is for a run
// that could not be carried out (a worker that would not start, the deadline); violations are in
// the report (Report.OK). The report is returned also with an error, as far as it got.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Deadline)
	defer cancel()
	start := time.Now()
	rep := &Report{Dir: cfg.Dir, Seed: cfg.Seed, Workers: cfg.Workers, Workloads: cfg.Workloads}
	h, err := New(ctx, Options{Dir: cfg.Dir, Binary: cfg.Binary, Seed: cfg.Seed, Wrap: cfg.Wrap})
	if err != nil {
		return rep, err
	}
	rep.History = h.History()
	defer h.KillAll()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7478746462))

	// Start every worker at once: their setups race on purpose.
	live := make([]*Proc, cfg.Workers)
	errs := make([]error, cfg.Workers)
	for i := range live {
		live[i], errs[i] = h.StartNoWait(cfg.spec(i))
	}
	for i, p := range live {
		if errs[i] == nil {
			_, errs[i] = p.WaitReady(ctx)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return rep, err
	}

	plan := cfg.plan(rng)
	var nextTick <-chan time.Time
	var tick *time.Timer
	if cfg.KillEvery > 0 {
		tick = time.NewTimer(jitter(rng, cfg.KillEvery))
		defer tick.Stop()
		nextTick = tick.C
	}
	var stopAt <-chan time.Time
	if cfg.Duration > 0 {
		t := time.NewTimer(cfg.Duration)
		defer t.Stop()
		stopAt = t.C
	}
	overtime := false
	progress := time.NewTicker(cfg.ProgressEvery)
	defer progress.Stop()
	report := func(done bool) {
		if cfg.Progress != nil {
			cfg.Progress(rep.progress(time.Since(start), h, done))
		}
	}
	kill := func() error {
		slots := cfg.KillSlots
		if len(slots) == 0 {
			slots = make([]int, len(live))
			for i := range slots {
				slots[i] = i
			}
		}
		slot := slots[rng.IntN(len(slots))]
		p := live[slot]
		if _, err := p.Kill(ctx); err != nil {
			return err
		}
		rep.Kills++
		np, err := h.Restart(ctx, p)
		if err != nil {
			return err
		}
		rep.Restarts++
		live[slot] = np
		return nil
	}
loop:
	for {
		total := totalOps(h)
		for len(plan) > 0 && total >= plan[0].ops {
			plan = plan[1:]
			if err := kill(); err != nil {
				return rep, err
			}
		}
		if cfg.Ops > 0 && total >= cfg.Ops {
			break
		}
		for _, p := range live {
			select {
			case <-p.Done():
				return rep, fmt.Errorf("procharness: %s exited on its own: %s", p.Name, p.exit)
			default:
			}
		}
		select {
		case <-h.Changed():
		case <-nextTick:
			if err := kill(); err != nil {
				return rep, err
			}
			if overtime && rep.Kills >= cfg.MinKills {
				break loop
			}
			tick.Reset(jitter(rng, cfg.KillEvery))
		case <-stopAt:
			if tick == nil || rep.Kills >= cfg.MinKills {
				break loop
			}
			overtime, stopAt = true, nil // on until MinKills

		case <-progress.C:
			report(false)
		case <-ctx.Done():
			return rep, fmt.Errorf("procharness: run (seed %d): %w", cfg.Seed, ctx.Err())
		}
	}
	if err := h.StopAll(ctx); err != nil {
		return rep, err
	}
	rep.Elapsed = time.Since(start)
	rep.Results = checkAll(&cfg, h.History())
	rep.Problems, err = h.Verify(ctx)
	rep.fill(h)
	report(true)
	return rep, err
}

func jitter(rng *rand.Rand, d time.Duration) time.Duration {
	return d/2 + time.Duration(rng.Int64N(int64(d)))
}

func totalOps(h *Harness) int64 {
	var n int64
	for _, p := range h.Procs() {
		n += p.Ops()
	}
	return n
}

// checkAll runs the checkers of every workload in the run.
func checkAll(cfg *Config, h *history.History) []check.Result {
	var out []check.Result
	seen := map[string]bool{}
	for _, wl := range cfg.Workloads {
		if seen[wl] {
			continue
		}
		seen[wl] = true
		sub := check.Select(h, wl)
		if fn, ok := cfg.Checkers[wl]; ok {
			out = append(out, fn(sub))
			continue
		}
		switch wl {
		case "bank":
			out = append(out, check.Bank(sub, check.BankConfig{Accounts: cfg.Accounts, Balance: cfg.Balance}))
		case "counter":
			out = append(out, check.Counter(sub, cfg.CounterKeys))
		case "register":
			out = append(out, check.Register(sub, cfg.RegisterTimeout))
		case "append":
			// The cheap check against TSN order, then Elle's cycle search at serializable.
			out = append(out, check.Lists(sub), check.Elle(sub, elle.Serializable))
		case "hold":
			out = append(out, check.Hold(sub))
		case "queue":
			out = append(out, check.Queue(sub))
		case "events":
			out = append(out, check.Events(h)) // against every worker's commits
		default:
			out = append(out, check.Result{Checker: wl, Verdict: check.Unknown,
				Explanation: "no checker for workload " + wl + " (Config.Checkers)"})
		}
	}
	return out
}
