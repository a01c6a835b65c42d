package txn

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/txtdb/txtdb/lockfs"
	"github.com/txtdb/txtdb/pages"
)

// runRole runs one child role; its exit code is the process's.
func runRole(role string) int {
	var cc childConfig
	if err := json.Unmarshal([]byte(os.Getenv("TXN_CONFIG")), &cc); err != nil {
		fmt.Println("error bad TXN_CONFIG:", err)
		return 2
	}
	ctx := context.Background()
	if role == "holder" {
		return holdLock(cc)
	}
	db, err := Open(ctx, cc.Dir, Config{SegmentBytes: cc.SegmentBytes, NoSync: cc.NoSync, OneObjectPerPage: !cc.Packed,
		CheckpointEvery: cc.CheckpointEvery, NoOffer: cc.NoOffer})
	if err != nil {
		fmt.Println("error open:", err)
		return 2
	}
	defer db.Close()
	var syncLog *os.File
	if cc.SyncLog != "" {
		if syncLog, err = os.OpenFile(cc.SyncLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
			fmt.Println("error sync log:", err)
			return 2
		}
		synced := func(seg uint64, covered int64) {
			_, _ = syncLog.WriteString(fmt.Sprintf("sync %d %d %d\n", os.Getpid(), seg, covered))
		}
		faults.synced.Store(&synced)
	}
	fmt.Println("ready")
	switch role {
	case "creator":
		// Opened a (possibly brand-new) store concurrently with others; create namespace p<pid>.
		_, _, err := update(ctx, db, func(tx *Tx) error { return tx.CreateNamespace(fmt.Sprintf("p%d", os.Getpid())) })
		if err != nil {
			fmt.Println("error", err)
			return 3
		}
		fmt.Println("created", fmt.Sprintf("p%d", os.Getpid()))
	case "rmw":
		in := bufio.NewReader(os.Stdin)
		return rmwRole(db, cc.N, func() string { l, _ := in.ReadString('\n'); return l })
	case "handoff":
		in := bufio.NewReader(os.Stdin)
		return handoffRole(db, cc.Own, cc.N, func() string { l, _ := in.ReadString('\n'); return l })
	case "bumper":
		// N increments of the pair in "c"; "ack <value> <tsn>" after each acknowledged commit.
		attempts := 0
		for i := 0; i < cc.N; i++ {
			var v int
			tsn, n, err := update(ctx, db, func(tx *Tx) error {
				var err error
				v, err = bumpPair(tx)
				return err
			})
			attempts += n
			if err != nil {
				fmt.Println("error", err)
				return 3
			}
			if syncLog != nil && !cc.NoSync { // a NoSync handle's acks promise no fsync
				_, _ = syncLog.WriteString(fmt.Sprintf("ack %d %d\n", os.Getpid(), tsn))
			}
			fmt.Println("ack", v, tsn)
		}
		fmt.Println("attempts", attempts)
	case "inserter":
		// N single-insert transactions into "t"; "tsn <n>" for each, then "attempts <total>".
		attempts := 0
		for i := 0; i < cc.N; i++ {
			tsn, n, err := update(ctx, db, func(tx *Tx) error {
				_, err := tx.Insert("t", map[string]int{"pid": os.Getpid(), "i": i})
				return err
			})
			attempts += n
			if err != nil {
				fmt.Println("error", err)
				return 3
			}
			fmt.Println("tsn", tsn)
		}
		fmt.Println("attempts", attempts)
	case "reader":
		// N reads of the pair in one snapshot each; they must always agree.
		for i := 0; i < cc.N; i++ {
			err := view(ctx, db, func(tx *Tx) error {
				a, err := readInt(tx, "c", "page000001")
				if err != nil {
					return err
				}
				b, err := readInt(tx, "c", "page000002")
				if err != nil {
					return err
				}
				if a != b {
					return fmt.Errorf("TORN: %d != %d at snapshot %d", a, b, tx.Snapshot())
				}
				return nil
			})
			if err != nil {
				fmt.Println("error", err)
				return 3
			}
		}
		fmt.Println("checked", cc.N)
	case "spreader":
		// N commits, each incrementing one of cc.Pages pages of "g" chosen at random.
		for i := 0; i < cc.N; i++ {
			p := pages.PageID(uint64(1 + rand.IntN(cc.Pages)))
			_, _, err := update(ctx, db, func(tx *Tx) error {
				v, err := readInt(tx, "g", p)
				if err != nil {
					return err
				}
				return tx.UpdatePage("g", p, v+1)
			})
			if err != nil {
				fmt.Println("error", err)
				return 3
			}
		}
		fmt.Println("done", cc.N)
	case "keyed-appender":
		return keyedAppenderRole(ctx, db)
	case "board-holder":
		return boardHolderRole(ctx, db)
	case "board-offerer":
		return boardOffererRole(ctx, db, pages.PageID(uint64(cc.Own)), cc.N)
	case "board-pair-offerer":
		return boardPairOffererRole(ctx, db)
	case "ckpt-churn":
		return ckptChurnRole(ctx, db, cc.N)
	case "ckpt-keep":
		// One checkpoint run as the housekeeper's (keeping what it supersedes), then "done".
		if err := checkpointKeeping(ctx, db); err != nil {
			fmt.Println("error", err)
			return 3
		}
		fmt.Println("done")
	case "snapshot-holder":
		// Opens a read transaction, says "holding <snapshot>", and keeps it until killed.
		tx, err := db.Begin(ctx, false)
		if err != nil {
			fmt.Println("error", err)
			return 3
		}
		if _, err := readInt(tx, "c", "page000001"); err != nil {
			fmt.Println("error", err)
			return 3
		}
		fmt.Println("holding", tx.Snapshot())
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		_ = tx.Rollback()
	default:
		fmt.Println("error unknown role", role)
		return 2
	}
	return 0
}

// holdLock takes the commit lock, says "locked", and holds it until a line arrives on stdin.
func holdLock(cc childConfig) int {
	l := lockfs.New(filepath.Join(cc.Dir, pages.MetaDir, lockName), 0)
	unlock, err := l.Lock(context.Background())
	if err != nil {
		fmt.Println("error", err)
		return 2
	}
	fmt.Println("locked")
	bufio.NewReader(os.Stdin).ReadString('\n')
	if err := unlock(); err != nil {
		fmt.Println("error", err)
		return 2
	}
	return 0
}

// keyedAppenderRole reads commands from stdin: "append <ns> <page> <key>" begins a transaction
// and appends {"k": key, "n": 2} under key ("appended <snapshot>"); "commit" commits it
// ("outcome committed", "outcome conflict <key>" or "outcome error ..."); "quit" ends.
func keyedAppenderRole(ctx context.Context, db *DB) int {
	in := bufio.NewScanner(os.Stdin)
	var tx *Tx
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 4 && f[0] == "append":
			var err error
			if tx, err = db.Begin(ctx, true); err != nil {
				fmt.Println("error", err)
				return 3
			}
			if err := tx.AppendPage(f[1], f[2], f[3], row{f[3], 2}); err != nil {
				fmt.Println("error", err)
				return 3
			}
			fmt.Println("appended", tx.Snapshot())
		case len(f) == 1 && f[0] == "commit" && tx != nil:
			fmt.Println("outcome", outcome(tx.Commit()))
		case len(f) == 1 && f[0] == "quit":
			return 0
		default:
			fmt.Println("error bad command", f)
			return 2
		}
	}
	return 0
}
