package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cellRole is the worker side of one table cell. It opens the store (once, or once per client
// when the engine's clients cannot share a handle), prints "ready", waits for "go", runs
// cfg.Clients clients that each start operations of cfg.Workload until cfg.Cell has passed,
// writes every operation's latency to cfg.Out and prints
//
//	done <operations> <attempts> <elapsed-ns> <engine-syncs>
//	acks <operations of client 0> <of client 1> ...
//
// elapsed running from "go" to the last operation's return, engine-syncs the fsyncs the engine
// counted in the window (-1: it counts none). Then it waits for "exit" and closes the store, so
// that what closing costs (txtdb's last checkpoint) stays out of the parent's sync count.
func cellRole(cfg workerConfig, in *bufio.Reader, out io.Writer) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), longStop)
	defer cancel()
	eng, err := newEngine(cfg.Engine, cfg.Sync)
	if err != nil {
		return err
	}
	if cfg.Clients < 1 {
		return fmt.Errorf("%d clients", cfg.Clients)
	}
	handles := cfg.Clients
	if eng.sharesHandle() {
		handles = 1
	}
	stores := make([]store, 0, handles)
	defer func() {
		for _, st := range stores {
			if cerr := st.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("close: %w", cerr)
			}
		}
	}()
	for range handles {
		st, err := eng.open(ctx, cfg.Dir, cfg.Workload)
		if err != nil {
			return fmt.Errorf("open: %w", err)
		}
		stores = append(stores, st)
	}
	op, err := cellOp(cfg)
	if err != nil {
		return err
	}

	syncs := func() int64 {
		n := int64(0)
		for _, st := range stores {
			s := st.syncs()
			if s < 0 {
				return -1
			}
			n += s
		}
		return n
	}
	syncsBefore := syncs()
	if _, err := fmt.Fprintln(out, "ready"); err != nil {
		return err
	}
	if err := expectCommand(in, "go"); err != nil {
		return err
	}

	stopProfile, err := startCellProfile(cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	deadline := start.Add(cfg.Cell)
	lats := make([][]time.Duration, cfg.Clients)
	attempts := make([]int, cfg.Clients)
	ends := make([]time.Time, cfg.Clients)
	errs := make([]error, cfg.Clients)
	var wg sync.WaitGroup
	for c := range cfg.Clients {
		st := stores[c%len(stores)]
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				n, err := op(ctx, st, rng, c, len(lats[c]))
				if err != nil {
					errs[c] = fmt.Errorf("client %d: %w", c, err)
					cancel()
					return
				}
				ends[c] = time.Now()
				lats[c] = append(lats[c], ends[c].Sub(t0))
				attempts[c] += n
			}
		})
	}
	wg.Wait()
	if err := errors.Join(append(errs, stopProfile())...); err != nil {
		return err
	}
	syncsAfter := syncs()
	all := slices.Concat(lats...)
	if err := writeLatencies(cfg.Out, all); err != nil {
		return err
	}
	var elapsed time.Duration
	for _, e := range ends {
		if !e.IsZero() {
			elapsed = max(elapsed, e.Sub(start))
		}
	}
	engineSyncs := int64(-1)
	if syncsBefore >= 0 && syncsAfter >= 0 {
		engineSyncs = syncsAfter - syncsBefore
	}
	acks := make([]string, cfg.Clients)
	for c := range lats {
		acks[c] = strconv.Itoa(len(lats[c]))
	}
	if _, err := fmt.Fprintln(out, "done", len(all), sumInts(attempts), int64(elapsed), engineSyncs); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(out, "acks", strings.Join(acks, " ")); err != nil {
		return err
	}
	return expectCommand(in, "exit")
}

// profileEnv names a folder: every cell worker writes a CPU profile of its measured window there,
// named after the engine, the workload, the sync level, the cell's processes and its own number.
const profileEnv = "TXTDB_BENCH_CPUPROFILE"

// startCellProfile starts the CPU profile TXTDB_BENCH_CPUPROFILE asks for and returns what stops
// it (a no-op when it is unset).
func startCellProfile(cfg workerConfig) (stop func() error, err error) {
	dir := os.Getenv(profileEnv)
	if dir == "" {
		return func() error { return nil }, nil
	}
	name := fmt.Sprintf("%s-%s-%s-P%d-%d.prof", cfg.Engine, cfg.Workload, cfg.Sync, cfg.Procs, cfg.Proc)
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// cellOp returns one operation of cfg's workload: client c's op-th (0-based) on st. It returns
// the attempts the operation took.
func cellOp(cfg workerConfig) (func(ctx context.Context, st store, rng *rand.Rand, c, op int) (int, error), error) {
	if isTableWorkload(cfg.Workload) {
		return tableOp(cfg)
	}
	switch cfg.Workload {
	case workloadTransfer:
		return func(ctx context.Context, st store, rng *rand.Rand, _, _ int) (int, error) {
			a, b := pickAccounts(rng)
			n, err := st.transfer(ctx, a, b)
			if err != nil {
				return n, fmt.Errorf("transfer %d -> %d: %w", a, b, err)
			}
			return n, nil
		}, nil
	case workloadInsert:
		return func(ctx context.Context, st store, _ *rand.Rand, c, op int) (int, error) {
			n, err := st.insert(ctx, newJob(cfg.Proc, c, op))
			if err != nil {
				return n, fmt.Errorf("insert job %d-%d-%d: %w", cfg.Proc, c, op, err)
			}
			return n, nil
		}, nil
	case workloadRead:
		return func(ctx context.Context, st store, rng *rand.Rand, _, _ int) (int, error) {
			a := 1 + rng.IntN(benchAccounts)
			if _, err := st.read(ctx, a); err != nil {
				return 1, fmt.Errorf("read %d: %w", a, err)
			}
			return 1, nil
		}, nil
	}
	return nil, fmt.Errorf("unknown workload %q", cfg.Workload)
}

// expectCommand reads the next command line from the parent and fails unless it is want.
func expectCommand(in *bufio.Reader, want string) error {
	cmd, err := in.ReadString('\n')
	if err != nil {
		return fmt.Errorf("read command: %w", err)
	}
	if strings.TrimSpace(cmd) != want {
		return fmt.Errorf("unexpected command %q, want %q", cmd, want)
	}
	return nil
}

// pickAccounts returns two distinct random accounts, 1-based.
func pickAccounts(rng *rand.Rand) (a, b int) {
	a = 1 + rng.IntN(benchAccounts)
	b = 1 + rng.IntN(benchAccounts-1)
	if b >= a {
		b++
	}
	return a, b
}

// writeLatencies writes lats to path as little-endian int64 nanoseconds.
func writeLatencies(path string, lats []time.Duration) error {
	buf := make([]byte, 0, 8*len(lats))
	for _, d := range lats {
		buf = binary.LittleEndian.AppendUint64(buf, uint64(d))
	}
	return os.WriteFile(path, buf, 0o644)
}

// readLatencies reads a file writeLatencies wrote.
func readLatencies(path string) ([]time.Duration, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(buf)%8 != 0 {
		return nil, fmt.Errorf("%s: %d bytes, not a multiple of 8", path, len(buf))
	}
	lats := make([]time.Duration, len(buf)/8)
	for i := range lats {
		lats[i] = time.Duration(binary.LittleEndian.Uint64(buf[8*i:]))
	}
	return lats, nil
}
