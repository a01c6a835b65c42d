package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/txtdb/txtdb/procharness"
)

// defaultWorkloads is the stress run's mix; allWorkloads what the soak runs.
const (
	defaultWorkloads = "bank,counter,register,append"
	allWorkloads     = "bank,counter,register,append,queue,events,hold"
)

// stressConfig is what the stress flags say.
type stressConfig struct {
	run     procharness.Config
	dir     string // -dir: keep the data there
	history string // where the history goes
}

// stress runs the multi-process stress job on procharness: a fleet of txtdb-worker processes on
// one data directory, one SIGKILLed and restarted about every -kill, a live progress line, and a
// report with the verdict of every workload's checkers and Check on the directory. The exit
// status is non-zero when a checker fails or the run could not be carried out.
func stress(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("stress", flag.ContinueOnError)
	workers := fs.Int("workers", 4, "worker processes")
	duration := fs.Duration("duration", 20*time.Second, "length of the run")
	workloads := fs.String("workloads", defaultWorkloads, "comma-separated workloads, assigned to the workers in turn (all: "+allWorkloads+")")
	killEvery := fs.Duration("kill", 2*time.Second, "SIGKILL and restart a random worker about this often (0: never)")
	minKills := fs.Int("min-kills", 0, "go on past -duration until this many workers were killed")
	seed := fs.Uint64("seed", 0, "seed of the kill schedule and the workers (0: random; printed, replays the schedule)")
	dir := fs.String("dir", "", "data directory, kept afterwards (default: a temporary directory, removed when the run passes)")
	hist := fs.String("history", "", "write the history here (default: next to the data directory)")
	plant := fs.Bool("plant-violation", false, "workers commit one wrong operation each (shows the checks can fail)")
	noSync := fs.Bool("nosync", false, "commit without fsync")
	maxList := fs.Int("append-max-list", 0, "append: list length at which workers move to new lists (0: the worker's default)")
	worker := fs.String("worker", "", "a built txtdb-worker binary (default: build it with the go command, which needs the module's source)")
	deadline := fs.Duration("deadline", 0, "bound on the whole run (default: 3x -duration + 5m)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *workers <= 0 || *duration <= 0 {
		return errors.New("stress: -workers and -duration must be positive")
	}
	if *seed == 0 {
		*seed = procharness.SeedFromEnv()
	}
	if *deadline <= 0 {
		*deadline = 3**duration + 5*time.Minute
	}
	if *workloads == "all" {
		*workloads = allWorkloads
	}
	cfg := stressConfig{dir: *dir, history: *hist, run: procharness.Config{
		Binary: *worker, Workers: *workers, Workloads: strings.Split(*workloads, ","), Duration: *duration,
		KillEvery: *killEvery, MinKills: *minKills, Seed: *seed, Deadline: *deadline, NoSync: *noSync,
		PlantViolation: *plant, AppendMaxList: *maxList,
	}}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return runStress(ctx, cfg, stdout, isTerminal(stdout))
}

// runStress carries out one stress run and prints its report on out; live selects the
// terminal's progress line (\r updates) over plain lines every few seconds.
func runStress(ctx context.Context, cfg stressConfig, out io.Writer, live bool) (err error) {
	root := ""
	if cfg.dir == "" {
		if root, err = os.MkdirTemp("", "txtdb-stress-"); err != nil {
			return err
		}
		cfg.run.Dir = filepath.Join(root, "data")
	} else {
		cfg.run.Dir = cfg.dir
	}
	if cfg.history == "" {
		cfg.history = filepath.Join(filepath.Dir(cfg.run.Dir), filepath.Base(cfg.run.Dir)+".history.jsonl")
	}
	if cfg.run.Binary == "" {
		fmt.Fprintf(out, "txtdb stress: building the worker (%s)\n", procharness.WorkerPackage)
		if cfg.run.Binary, err = procharness.Binary(ctx); err != nil {
			return err
		}
		defer func() { _ = procharness.RemoveBinary() }()
	}
	fmt.Fprintf(out, "txtdb stress: %d workers (%s), %v, kill every %v, seed %d (replay: -seed %d)\n",
		cfg.run.Workers, strings.Join(cfg.run.Workloads, ","), cfg.run.Duration, cfg.run.KillEvery, cfg.run.Seed, cfg.run.Seed)
	p := &progressLine{out: out, live: live, every: 5 * time.Second}
	cfg.run.ProgressEvery = time.Second
	if live {
		cfg.run.ProgressEvery = 250 * time.Millisecond
	}
	cfg.run.Progress = p.show
	rep, rerr := procharness.Run(ctx, cfg.run)
	p.end()
	if rep == nil {
		return rerr
	}
	if rep.History != nil {
		if werr := writeHistory(cfg.history, rep); werr != nil && rerr == nil {
			rerr = werr
		}
	}
	fmt.Fprint(out, rep)
	failed := rerr != nil || !rep.OK()
	switch {
	case root != "" && !failed:
		fmt.Fprintf(out, "  removed the temporary data directory and history (-dir keeps them)\n")
		_ = os.RemoveAll(root)
		_ = os.Remove(cfg.history)
	default:
		fmt.Fprintf(out, "  history %s\n", cfg.history)
	}
	if rerr != nil {
		return fmt.Errorf("stress run (seed %d): %w", cfg.run.Seed, rerr)
	}
	if !rep.OK() {
		return fmt.Errorf("stress run failed its checks (seed %d, replay: -seed %d)", cfg.run.Seed, cfg.run.Seed)
	}
	return nil
}

func writeHistory(path string, rep *procharness.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = rep.History.WriteTo(f)
	return errors.Join(err, f.Close())
}

// progressLine prints the run's progress: on a terminal one line rewritten in place, otherwise
// a plain line every few seconds (and the last sample).
type progressLine struct {
	out   io.Writer
	live  bool
	every time.Duration

	mu      sync.Mutex
	printed time.Duration // guarded by mu: elapsed at the last plain line
	drawn   bool          // guarded by mu: a live line is on the screen
}

func (p *progressLine) show(s procharness.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rate := 0.0
	if s.Elapsed > 0 {
		rate = float64(s.Commits) / s.Elapsed.Seconds()
	}
	line := fmt.Sprintf("[%6.1fs] commits %7d  %6.0f/s  conflicts %6d  kills %4d  restarts %4d",
		s.Elapsed.Seconds(), s.Commits, rate, s.Conflicts, s.Kills, s.Restarts)
	if p.live {
		fmt.Fprintf(p.out, "\r%s ", line)
		p.drawn = true
		return
	}
	if s.Completed || s.Elapsed-p.printed >= p.every {
		fmt.Fprintln(p.out, line)
		p.printed = s.Elapsed
	}
}

// end ends a live line.
func (p *progressLine) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.out)
		p.drawn = false
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
