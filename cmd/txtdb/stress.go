package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/txtdb/txtdb"
)

const (
	bankNS         = "bank"
	initialBalance = 1000
)

// stress runs the multi-process stress job: it creates a store, starts worker processes that
// transfer money between accounts, SIGKILLs and restarts one of them now and then, shows a live
// progress line, and ends with a report that checks nothing was lost or invented. Every second it
// samples the data directory and the store's Stats, and the workers report their heap; the
// report shows both at the start, middle and end of the run (always on: a directory walk and
// a Stats call per second in the parent, one ReadMemStats per second in each worker).
func stress(args []string) error {
	fs := flag.NewFlagSet("stress", flag.ExitOnError)
	procs := fs.Int("procs", 4, "worker processes")
	duration := fs.Duration("duration", 10*time.Second, "length of the run")
	accounts := fs.Int("accounts", 100, "accounts (one page each)")
	killEvery := fs.Duration("kill", 2*time.Second, "SIGKILL and restart a random worker this often (0 = never)")
	noSync := fs.Bool("nosync", false, "commit without fsync")
	dir := fs.String("dir", "", "data directory (default: a new temporary directory, removed afterwards)")
	plant := fs.Bool("plant-violation", false, "one worker commits a half transfer once (shows the checks can fail)")
	_ = fs.Parse(args)

	if *dir == "" {
		d, err := os.MkdirTemp("", "txtdb-stress-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	db, err := txtdb.Open(*dir, &txtdb.Options{OneObjectPerPage: true})
	if err != nil {
		return err
	}
	setupTSN, err := createBank(db, *accounts)
	if err != nil {
		db.Close()
		return err
	}
	fmt.Printf("txtdb stress: %d processes, %d accounts, %v, kill every %v, dir %s\n",
		*procs, *accounts, *duration, *killEvery, *dir)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()

	r := &run{start: time.Now(), acked: make([]int64, *procs), conflicts: make([]int64, *procs),
		heap: make([][]heapSample, *procs)}
	disk := []diskSample{sampleDisk(db, *dir, 0)}
	workerArgs := []string{"stress-worker", "-dir", *dir, "-accounts", strconv.Itoa(*accounts)}
	if *noSync {
		workerArgs = append(workerArgs, "-nosync")
	}
	var wg sync.WaitGroup
	for i := 0; i < *procs; i++ {
		args := workerArgs
		if *plant && i == 0 {
			args = append(slices.Clone(args), "-plant-violation")
		}
		wg.Go(func() { r.keepRunning(ctx, i, args) })
	}
	var ticker <-chan time.Time
	if *killEvery > 0 {
		t := time.NewTicker(*killEvery)
		defer t.Stop()
		ticker = t.C
	}
	progress := time.NewTicker(250 * time.Millisecond)
	defer progress.Stop()
	sample := time.NewTicker(time.Second)
	defer sample.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			disk = append(disk, sampleDisk(db, *dir, time.Since(r.start)))
			break loop
		case <-ticker:
			r.killOne(rand.IntN(*procs))
		case <-progress.C:
			r.progress()
		case <-sample.C:
			disk = append(disk, sampleDisk(db, *dir, time.Since(r.start)))
		}
	}
	wg.Wait()
	r.progress()
	fmt.Println()
	after := sampleDisk(db, *dir, time.Since(r.start))
	return r.report(db, *accounts, setupTSN, disk, after)
}

func createBank(db *txtdb.DB, accounts int) (txtdb.TSN, error) {
	var tsn txtdb.TSN
	tx, err := db.Begin(context.Background(), true)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if err := tx.CreateNamespace(bankNS); err != nil {
		return 0, err
	}
	for i := 0; i < accounts; i++ {
		if _, err := tx.Insert(bankNS, initialBalance); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	tsn = tx.CommitTSN()
	return tsn, nil
}

// run is the parent's view of the workers.
type run struct {
	start     time.Time
	mu        sync.Mutex
	acked     []int64 // per worker slot: commits acknowledged to the parent (all its incarnations)
	conflicts []int64
	kills     int
	restarts  int
	failures  []string
	cmds      map[int]*exec.Cmd
	heap      [][]heapSample // per worker slot: the heap lines of all its incarnations
}

// keepRunning runs worker slot i until ctx ends, restarting it whenever it was killed.
func (r *run) keepRunning(ctx context.Context, i int, args []string) {
	var base, baseConf int64 // counts of earlier incarnations
	for ctx.Err() == nil {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err == nil {
			err = cmd.Start()
		}
		if err != nil {
			r.fail(fmt.Sprintf("worker %d: start: %v", i, err))
			return
		}
		r.mu.Lock()
		if r.cmds == nil {
			r.cmds = map[int]*exec.Cmd{}
		}
		r.cmds[i] = cmd
		r.mu.Unlock()
		started := time.Now()
		stopped := make(chan struct{})
		go func() {
			select {
			case <-ctx.Done():
				_ = cmd.Process.Signal(syscall.SIGTERM)
			case <-stopped:
			}
		}()
		var last, lastConf int64
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && f[0] == "n" {
				last, _ = strconv.ParseInt(f[1], 10, 64)
				lastConf, _ = strconv.ParseInt(f[2], 10, 64)
				r.mu.Lock()
				r.acked[i] = base + last
				r.conflicts[i] = baseConf + lastConf
				r.mu.Unlock()
			} else if len(f) == 3 && f[0] == "heap" {
				s := heapSample{at: time.Since(r.start), up: time.Since(started)}
				s.inuse, _ = strconv.ParseUint(f[1], 10, 64)
				s.alloc, _ = strconv.ParseUint(f[2], 10, 64)
				r.mu.Lock()
				r.heap[i] = append(r.heap[i], s)
				r.mu.Unlock()
			} else if len(f) > 0 && f[0] == "error" {
				r.fail(fmt.Sprintf("worker %d: %s", i, sc.Text()))
			}
		}
		err = cmd.Wait()
		close(stopped)
		base += last
		baseConf += lastConf
		var ee *exec.ExitError
		if err != nil && !(errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled()) {
			r.fail(fmt.Sprintf("worker %d: %v", i, err))
			return
		}
		if ctx.Err() == nil {
			r.mu.Lock()
			r.restarts++
			r.mu.Unlock()
		}
	}
}

func (r *run) killOne(i int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cmd := r.cmds[i]; cmd != nil && cmd.Process != nil {
		if cmd.Process.Signal(syscall.SIGKILL) == nil {
			r.kills++
		}
	}
}

func (r *run) fail(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, msg)
}

func (r *run) totals() (acked, conflicts int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.acked {
		acked += r.acked[i]
		conflicts += r.conflicts[i]
	}
	return acked, conflicts
}

func (r *run) progress() {
	acked, conflicts := r.totals()
	el := time.Since(r.start).Seconds()
	r.mu.Lock()
	kills := r.kills
	r.mu.Unlock()
	fmt.Printf("\r[%5.1fs] commits %8d  %7.0f/s  conflicts %6d  kills %3d ", el, acked, float64(acked)/el, conflicts, kills)
}

// report prints the disk and heap samples, then checks the store after the run: money is
// conserved, every acknowledged commit is there (the TSN counts at least as many transfers as
// were acknowledged), and the directory opens and commits again.
func (r *run) report(db *txtdb.DB, accounts int, setupTSN txtdb.TSN, disk []diskSample, after diskSample) error {
	acked, conflicts := r.totals()
	var sum, n int
	var snap txtdb.TSN
	err := db.View(context.Background(), func(tx *txtdb.Tx) error {
		snap = tx.Snapshot()
		pages, err := tx.Match(bankNS, "*")
		if err != nil {
			return err
		}
		for _, objs := range pages {
			for _, o := range objs {
				var v int
				if err := o.Decode(&v); err != nil {
					return err
				}
				sum += v
				n++
			}
		}
		return nil
	})
	committed := int64(snap - setupTSN)
	el := time.Since(r.start)
	per := make([]string, len(r.acked))
	for i, a := range r.acked {
		per[i] = strconv.FormatInt(a, 10)
	}
	fmt.Printf("run:        %v, %d processes, %d SIGKILLs, %d restarts\n", el.Round(time.Millisecond), len(r.acked), r.kills, r.restarts)
	fmt.Printf("commits:    %d acknowledged (%s per process), %d in the log, %.0f/s\n", acked, strings.Join(per, " "), committed, float64(committed)/el.Seconds())
	fmt.Printf("conflicts:  %d retried\n", conflicts)
	r.mu.Lock()
	writeMetrics(os.Stdout, disk, after, r.heap)
	r.mu.Unlock()
	checks := []struct {
		name string
		ok   bool
		got  string
	}{
		{"store readable", err == nil, fmt.Sprint(err)},
		{"every account present", n == accounts, fmt.Sprintf("%d of %d", n, accounts)},
		{"money conserved", sum == accounts*initialBalance, fmt.Sprintf("sum %d, want %d", sum, accounts*initialBalance)},
		{"no acknowledged commit lost", committed >= acked, fmt.Sprintf("log %d >= acked %d", committed, acked)},
		{"workers ran cleanly", len(r.failures) == 0, strings.Join(r.failures, "; ")},
	}
	failed := false
	for _, c := range checks {
		mark := "PASS"
		if !c.ok {
			mark, failed = "FAIL", true
		}
		fmt.Printf("check:      %-28s %s  (%s)\n", c.name, mark, c.got)
	}
	if cerr := db.Close(); cerr != nil {
		return cerr
	}
	if failed {
		return errors.New("stress run failed its checks")
	}
	return nil
}

// stressWorker is one worker process: transfers until SIGTERM, printing "n <commits> <conflicts>"
// after every acknowledged commit batch of progress, and "heap <HeapInuse> <HeapAlloc>" once
// after Open and then about every second (no runtime.GC first: that would cost more than the
// work it measures).
func stressWorker(args []string) error {
	fs := flag.NewFlagSet("stress-worker", flag.ExitOnError)
	dir := fs.String("dir", "", "data directory")
	accounts := fs.Int("accounts", 100, "accounts")
	noSync := fs.Bool("nosync", false, "commit without fsync")
	plant := fs.Bool("plant-violation", false, "commit one half transfer")
	_ = fs.Parse(args)
	db, err := txtdb.Open(*dir, &txtdb.Options{NoSync: *noSync})
	if err != nil {
		fmt.Println("error open:", err)
		return err
	}
	defer db.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	out := bufio.NewWriter(os.Stdout)
	var commits, conflicts int64
	var ms runtime.MemStats
	reportHeap := func() {
		runtime.ReadMemStats(&ms)
		fmt.Fprintln(out, "heap", ms.HeapInuse, ms.HeapAlloc)
	}
	reportHeap()
	lastFlush, lastHeap := time.Now(), time.Now()
	for ctx.Err() == nil {
		a := 1 + rand.IntN(*accounts)
		b := 1 + rand.IntN(*accounts-1)
		if b >= a {
			b++
		}
		attempts := 0
		half := *plant && commits == 10
		err := db.Update(context.Background(), func(tx *txtdb.Tx) error {
			attempts++
			if half { // the planted violation: money appears from nowhere
				v, err := readBalance(tx, pageID(a))
				if err != nil {
					return err
				}
				return tx.UpdatePage(bankNS, pageID(a), v+1)
			}
			return transfer(tx, a, b, 1+rand.IntN(10))
		})
		if err != nil {
			fmt.Fprintln(out, "error", err)
			out.Flush()
			return err
		}
		commits++
		conflicts += int64(attempts - 1)
		// Only acknowledged commits are reported, so a SIGKILL never over-counts.
		if time.Since(lastHeap) >= time.Second {
			reportHeap()
			lastHeap = time.Now()
		}
		if time.Since(lastFlush) > 50*time.Millisecond {
			fmt.Fprintln(out, "n", commits, conflicts)
			out.Flush()
			lastFlush = time.Now()
		}
	}
	fmt.Fprintln(out, "n", commits, conflicts)
	return out.Flush()
}

func transfer(tx *txtdb.Tx, a, b, amount int) error {
	ida, idb := pageID(a), pageID(b)
	va, err := readBalance(tx, ida)
	if err != nil {
		return err
	}
	vb, err := readBalance(tx, idb)
	if err != nil {
		return err
	}
	if err := tx.UpdatePage(bankNS, ida, va-amount); err != nil {
		return err
	}
	return tx.UpdatePage(bankNS, idb, vb+amount)
}

func pageID(n int) string { return fmt.Sprintf("page%06d", n) }

func readBalance(tx *txtdb.Tx, id string) (int, error) {
	objs, err := tx.ReadPage(bankNS, id)
	if err != nil {
		return 0, err
	}
	if len(objs) != 1 {
		return 0, fmt.Errorf("account %s has %d objects", id, len(objs))
	}
	var v int
	err = objs[0].Decode(&v)
	return v, err
}
