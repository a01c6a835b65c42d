package powerfs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/procharness"
	"golang.org/x/sys/unix"
)

// The test binary is also the child processes of these tests: Main sets a child up (boot id,
// syncfs), then POWERFS_CHILD selects what it does. Children print one line per fact on stdout.
func TestMain(m *testing.M) {
	Main()
	if mode := os.Getenv("POWERFS_CHILD"); mode != "" {
		if err := runChild(mode); err != nil {
			fmt.Printf("err %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	_ = procharness.RemoveBinary()
	os.Exit(code)
}

const (
	accounts     = 4
	startBalance = 100
)

type account struct {
	Acct int `json:"acct"`
	Bal  int `json:"bal"`
}

type seqObj struct {
	W   int `json:"w"`
	Seq int `json:"seq"`
}

// verifyResult is what a verifying child prints after it opened the store.
type verifyResult struct {
	TSN       uint64      `json:"tsn"`
	Lineage   string      `json:"lineage"`
	Total     int         `json:"total"`
	Accounts  int         `json:"accounts"`
	Seqs      map[int]int `json:"seqs"`
	Problems  []string    `json:"problems"`  // Check's findings, leftovers of dead processes aside
	Leftovers int         `json:"leftovers"` // Check's ErrLeftover findings
	Boot      string      `json:"boot"`
	Ckpt      uint64      `json:"ckpt"` // the checkpoint TSN when Check ran
	// Scratch holds the pages of each namespace of the fault workload's churn (scratch*).
	Scratch map[string]int `json:"scratch,omitempty"`
}

func childOptions() *txtdb.Options {
	o := &txtdb.Options{OneObjectPerPage: true, NoSync: os.Getenv("POWERFS_NOSYNC") == "1", LockTimeout: time.Minute}
	if d, err := time.ParseDuration(os.Getenv("POWERFS_CKPT")); err == nil {
		o.CheckpointEvery = d
	}
	if n, err := strconv.ParseInt(os.Getenv("POWERFS_SEG"), 10, 64); err == nil {
		o.SegmentSize = n
		o.LogRetention = -1
	}
	return o
}

func bootID() string {
	b, _ := os.ReadFile(BootIDPath)
	return strings.TrimSpace(string(b))
}

func runChild(mode string) error {
	ctx := context.Background()
	dir := os.Getenv("POWERFS_DIR")
	switch mode {
	case "bootid":
		fmt.Printf("boot %s\n", bootID())
		return nil
	case "syncfs":
		if err := os.WriteFile(filepath.Join(dir, "f"), []byte("synced by syncfs"), 0o644); err != nil {
			return err
		}
		d, err := os.Open(dir)
		if err != nil {
			return err
		}
		defer d.Close()
		if err := unix.Syncfs(int(d.Fd())); err != nil {
			return err
		}
		fmt.Println("ok")
		return nil
	case "mapwrite":
		return childMapWrite(dir)
	case "verify":
		return childVerify(ctx, dir)
	case "fleetcheck":
		return childFleetCheck(ctx, dir)
	case "faultwork":
		return childFaultWork(ctx, dir)
	case "work":
		w, _ := strconv.Atoi(os.Getenv("POWERFS_W"))
		return childWork(ctx, dir, w)
	}
	return fmt.Errorf("unknown child mode %q", mode)
}

func lineage(ctx context.Context, db *txtdb.DB) (string, error) {
	sub, err := db.Subscribe(ctx, txtdb.SubscribeOptions{})
	if err != nil {
		return "", err
	}
	defer sub.Close()
	return sub.Lineage(), nil
}

// childVerify opens the store (creating the bank if there is none), reads everything, checks
// the directory and prints the result.
func childVerify(ctx context.Context, dir string) error {
	db, err := txtdb.Open(dir, childOptions())
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer db.Close()
	err = db.Update(ctx, func(tx *txtdb.Tx) error {
		if _, err := tx.Match("bank", "*"); !errors.Is(err, txtdb.ErrNamespaceNotFound) {
			return err
		}
		for _, ns := range []string{"bank", "seq"} {
			if err := tx.CreateNamespace(ns); err != nil {
				return err
			}
		}
		for i := range accounts {
			if _, err := tx.Insert("bank", account{i, startBalance}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create the bank: %w", err)
	}
	res := verifyResult{Seqs: map[int]int{}, Boot: bootID()}
	err = db.View(ctx, func(tx *txtdb.Tx) error {
		res.TSN = uint64(tx.Snapshot())
		bank, err := tx.Match("bank", "*")
		if err != nil {
			return err
		}
		for _, objs := range bank {
			for _, o := range objs {
				var a account
				if err := o.Decode(&a); err != nil {
					return err
				}
				res.Total += a.Bal
				res.Accounts++
			}
		}
		seqs, err := tx.Match("seq", "*")
		if err != nil {
			return err
		}
		for _, objs := range seqs {
			for _, o := range objs {
				var s seqObj
				if err := o.Decode(&s); err != nil {
					return err
				}
				if s.Seq > res.Seqs[s.W] {
					res.Seqs[s.W] = s.Seq
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	err = db.View(ctx, func(tx *txtdb.Tx) error {
		names, err := tx.Namespaces()
		if err != nil {
			return err
		}
		for _, ns := range names {
			if !strings.HasPrefix(ns, "scratch") {
				continue
			}
			m, err := tx.Match(ns, "*")
			if err != nil {
				return err
			}
			if res.Scratch == nil {
				res.Scratch = map[string]int{}
			}
			res.Scratch[ns] = len(m)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the namespaces: %w", err)
	}
	if res.Lineage, err = lineage(ctx, db); err != nil {
		return err
	}
	res.Ckpt = uint64(db.Stats().CheckpointTSN)
	probs, err := db.Check(ctx)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	for _, p := range probs {
		if errors.Is(p.Err, txtdb.ErrLeftover) {
			res.Leftovers++ // normal between a SIGKILL and the next cleanup (docs/CHECK.md)
			continue
		}
		res.Problems = append(res.Problems, fmt.Sprintf("%s: %v", p.Path, p.Err))
	}
	b, _ := json.Marshal(res)
	fmt.Printf("verify %s\n", b)
	return nil
}

// childWork commits transfers between accounts, each bumping this worker's sequence page, and
// prints "ack <w> <seq> <tsn> <lineage>" once each commit returned nil, until it is killed.
func childWork(ctx context.Context, dir string, w int) error {
	db, err := txtdb.Open(dir, childOptions())
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer db.Close()
	var ids []string
	var seqPage string
	seq := 0
	// Read-only discovery (a scan of every page would conflict with every busy peer), then an
	// insert-only transaction if this worker has no page yet.
	err = db.View(ctx, func(tx *txtdb.Tx) error {
		bank, err := tx.Match("bank", "*")
		if err != nil {
			return err
		}
		ids = ids[:0]
		for id := range bank {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		seqs, err := tx.Match("seq", "*")
		if err != nil {
			return err
		}
		for id, objs := range seqs {
			var s seqObj
			if err := objs[0].Decode(&s); err != nil {
				return err
			}
			if s.W == w {
				seqPage, seq = id, s.Seq
			}
		}
		return nil
	})
	if err == nil && seqPage == "" {
		err = db.Update(ctx, func(tx *txtdb.Tx) error {
			var err error
			seqPage, err = tx.Insert("seq", seqObj{W: w})
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if len(ids) != accounts {
		return fmt.Errorf("start: %d accounts, want %d", len(ids), accounts)
	}
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(w)))
	lin := ""
	fmt.Println("ready")
	for {
		a, b := rng.IntN(accounts), rng.IntN(accounts-1)
		if b >= a {
			b++
		}
		amt := 1 + rng.IntN(10)
		tsn, err := transfer(ctx, db, ids[a], ids[b], seqPage, w, seq+1, amt)
		if err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		seq++
		if lin == "" {
			if lin, err = lineage(ctx, db); err != nil {
				return err
			}
		}
		fmt.Printf("ack %d %d %d %s\n", w, seq, tsn, lin)
	}
}

func transfer(ctx context.Context, db *txtdb.DB, from, to, seqPage string, w, seq, amt int) (txtdb.TSN, error) {
	for {
		tx, err := db.Begin(ctx, true)
		if err != nil {
			return 0, err
		}
		err = func() error {
			var accts [2]account
			for i, id := range []string{from, to} {
				objs, err := tx.ReadPage("bank", id)
				if err != nil {
					return err
				}
				if err := objs[0].Decode(&accts[i]); err != nil {
					return err
				}
			}
			if _, err := tx.ReadPage("seq", seqPage); err != nil {
				return err
			}
			accts[0].Bal -= amt
			accts[1].Bal += amt
			for i, id := range []string{from, to} {
				if err := tx.UpdatePage("bank", id, accts[i]); err != nil {
					return err
				}
			}
			if err := tx.UpdatePage("seq", seqPage, seqObj{W: w, Seq: seq}); err != nil {
				return err
			}
			return tx.Commit()
		}()
		if errors.Is(err, txtdb.ErrConflict) {
			continue
		}
		if err != nil {
			tx.Rollback()
			return 0, err
		}
		return tx.CommitTSN(), nil
	}
}

// scratchSteps is the fault workload's namespace churn, in order.
var scratchSteps = []string{"create", "rename", "delete"}

// scratchWant is what the scratch namespaces must hold after the churn's step last was
// acknowledged ("" for none): the step after it may or may not have happened.
func scratchWant(last string) []map[string]int {
	states := []map[string]int{{}, {"scratch": 2}, {"scratch2": 2}, {}}
	i := 0
	if last != "" {
		i = slices.Index(scratchSteps, last) + 1
	}
	return states[i:min(i+2, len(states))]
}

// childFaultWork is the fault sweep's short workload: open, a few acknowledged transfers, a
// checkpoint, a namespace created, renamed and deleted (each checkpointed), close. It prints "ack" lines, then "done"; a failure comes back as an error,
// printed by TestMain with whether it wraps the injected errno.
func childFaultWork(ctx context.Context, dir string) (err error) {
	errno, _ := strconv.Atoi(os.Getenv("POWERFS_ERRNO"))
	defer func() {
		if err != nil {
			err = fmt.Errorf("wraps-errno=%v: %w", errors.Is(err, syscall.Errno(errno)), err)
		}
	}()
	db, err := txtdb.Open(dir, childOptions())
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	var ids []string
	var seqPage string
	seq := 0
	err = db.View(ctx, func(tx *txtdb.Tx) error {
		bank, err := tx.Match("bank", "*")
		for id := range bank {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		seqs, _ := tx.Match("seq", "*")
		for id, objs := range seqs {
			var s seqObj
			objs[0].Decode(&s)
			if s.W == 0 {
				seqPage, seq = id, s.Seq
			}
		}
		return err
	})
	if err == nil && seqPage == "" {
		err = db.Update(ctx, func(tx *txtdb.Tx) error {
			var err error
			seqPage, err = tx.Insert("seq", seqObj{W: 0})
			return err
		})
	}
	if err != nil {
		db.Close()
		return fmt.Errorf("start: %w", err)
	}
	for i := range 5 {
		tsn, err := transfer(ctx, db, ids[i%accounts], ids[(i+1)%accounts], seqPage, 0, seq+1, 1)
		if err != nil {
			db.Close()
			return fmt.Errorf("commit: %w", err)
		}
		seq++
		fmt.Printf("ack 0 %d %d -\n", seq, tsn)
	}
	if err := db.Checkpoint(ctx); err != nil {
		db.Close()
		return fmt.Errorf("checkpoint: %w", err)
	}
	// Namespace churn, each step acknowledged and checkpointed: the checkpoint after a rename
	// moves the namespace's files to its new folder (hard links, then unlinks), the one after the
	// delete moves them to the attic, and cleanup removes them.
	for _, step := range scratchSteps {
		err := db.Update(ctx, func(tx *txtdb.Tx) error {
			switch step {
			case "create":
				if err := tx.CreateNamespace("scratch"); err != nil {
					return err
				}
				for i := range 2 {
					if _, err := tx.Insert("scratch", i); err != nil {
						return err
					}
				}
				return nil
			case "rename":
				return tx.RenameNamespace("scratch", "scratch2")
			}
			return tx.DeleteNamespace("scratch2")
		})
		if err != nil {
			db.Close()
			return fmt.Errorf("%s scratch: %w", step, err)
		}
		fmt.Printf("ns %s\n", step)
		if err := db.Checkpoint(ctx); err != nil {
			db.Close()
			return fmt.Errorf("checkpoint after %s: %w", step, err)
		}
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	fmt.Println("done")
	return nil
}

// mapReadSink takes what childMapWrite's reader read.
var mapReadSink atomic.Uint32

// childMapWrite writes a counter to the file at path with pwrite, alternating between two
// slots, and after each write reads it back through a shared mapping, while one goroutine opens
// and stats the file and another reads the mapping; it prints ok, or returns how many writes the
// mapping did not show.
func childMapWrite(path string) error {
	w, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer w.Close()
	m, err := syscall.Mmap(int(w.Fd()), 0, 4096, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return err
	}
	defer syscall.Munmap(m)
	done := make(chan struct{})
	churned := make(chan error, 2)
	go func() { // reads through the mapping: faults that refill dropped pages
		var sum byte
		for {
			select {
			case <-done:
				mapReadSink.Store(uint32(sum)) // the reads have a use, so they stay
				churned <- nil
				return
			default:
			}
			for off := 0; off < 128; off += 8 {
				sum += m[off]
			}
		}
	}()
	go func() {
		var err error
		defer func() { churned <- err }()
		for {
			select {
			case <-done:
				return
			default:
			}
			var r *os.File
			if r, err = os.Open(path); err != nil {
				return
			}
			_, err = r.Stat()
			if cerr := r.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return
			}
		}
	}()
	const writes = 20000
	stale, first := 0, ""
	buf := make([]byte, 8)
	for i := uint64(1); i <= writes; i++ {
		for b := range buf {
			buf[b] = byte(i >> (8 * b))
		}
		off := int64(i%2) * 64
		if _, err := w.WriteAt(buf, off); err != nil {
			close(done)
			return err
		}
		if got := m[off : off+8]; !bytes.Equal(got, buf) {
			if stale == 0 {
				first = fmt.Sprintf("write %d: the mapping shows %x, the write was %x", i, got, buf)
			}
			stale++
		}
	}
	close(done)
	for range 2 {
		if err := <-churned; err != nil {
			return err
		}
	}
	if stale > 0 {
		return fmt.Errorf("%d of %d writes not visible through the mapping when the write returned; first: %s", stale, writes, first)
	}
	fmt.Println("ok")
	return nil
}
