package txn

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// Test hooks. Production code calls them at the few syscalls that matter; they do nothing unless a
// test arms them (or, for crash points, the environment in a build with the txtdb_crashpoints
// tag). They are unexported on purpose.

type faultPoint int

const (
	faultLogWrite        faultPoint = iota // before the batch's bytes are written to the log
	faultLogSync                           // before the log fsync
	faultLogErase                          // before erasing a failed batch or a torn tail
	faultStateWrite                        // before writing the state slot
	faultLogGrow                           // before growing a segment with zeros
	faultStateSync                         // before the fsync of the state file (first NoSync state of a boot)
	faultPageWrite                         // before a checkpoint writes a page file
	faultCheckpointWrite                   // before the checkpoint file is published
	faultAnnounced                         // after an announcement's bytes are written (an error: the write failed, its bytes in the page cache)
)

// faultSet injects errors (or pauses) at faultPoints and observes fsyncs, the commit queue and
// recoveries.
// The hooks are atomic pointers: the commit path reads them several times per commit.
type faultSet struct {
	inject atomic.Pointer[func(p faultPoint) error]        // nil = no faults
	synced atomic.Pointer[func(seg uint64, covered int64)] // called after each good log fsync
	queued atomic.Pointer[func(delta int)]                 // a request is queued in submit (+1) / leaves it (-1)
	begin  atomic.Pointer[func()]                          // Begin read state for its snapshot, has not yet recorded it in the floor
	offer  atomic.Pointer[func(db *DB)]                    // a group offered its members on the board and is about to wait for the lock
	woke   atomic.Pointer[func(db *DB)]                    // a commit lock holder woke the owners of the offers it decided (lock still held)
	locked atomic.Pointer[func(db *DB)]                    // a commit group took the commit lock (once per lock hold)
	claim  atomic.Pointer[func(slot int)]                  // a handle flocked a board slot's lock, has not yet written its announcement
	page   atomic.Pointer[func(rel string)]                // a page file was opened, not yet read (readNamedFile)

	plantNoIdentity atomic.Bool // a planted violation: readNamedFile trusts what it read

	recovered atomic.Pointer[func(db *DB, slow bool)] // a commit lock holder recovered (slow: off the fast path)
	repaired  atomic.Pointer[func(db *DB)]            // Begin or Open recovered under the lock; called once it is released
}

var faults faultSet

func (f *faultSet) hit(p faultPoint) error {
	if fn := f.inject.Load(); fn != nil {
		return (*fn)(p)
	}
	return nil
}

func (f *faultSet) didSync(seg uint64, covered int64) {
	if fn := f.synced.Load(); fn != nil {
		(*fn)(seg, covered)
	}
}

func (f *faultSet) queue(delta int) {
	if fn := f.queued.Load(); fn != nil {
		(*fn)(delta)
	}
}

func (f *faultSet) didOffer(db *DB) {
	if fn := f.offer.Load(); fn != nil {
		(*fn)(db)
	}
}

func (f *faultSet) didWake(db *DB) {
	if fn := f.woke.Load(); fn != nil {
		(*fn)(db)
	}
}

func (f *faultSet) didLock(db *DB) {
	if fn := f.locked.Load(); fn != nil {
		(*fn)(db)
	}
}

func (f *faultSet) didClaim(slot int) {
	if fn := f.claim.Load(); fn != nil {
		(*fn)(slot)
	}
}

func (f *faultSet) didRecover(db *DB, slow bool) {
	if fn := f.recovered.Load(); fn != nil {
		(*fn)(db, slow)
	}
}

func (f *faultSet) didRepair(db *DB) {
	if fn := f.repaired.Load(); fn != nil {
		(*fn)(db)
	}
}

// Crash points: named places in the commit and recovery paths where a test makes the process
// kill itself with SIGKILL, to hit windows that random kills rarely reach. Armed by tests through
// armCrash or armCrashFrom("<name>[:<n>]": the n-th time the point is reached, default 1); this
// package's test binary arms its re-executed children from TXTDB_CRASHPOINT. A production build
// never reads the environment: only a build with the txtdb_crashpoints tag does, once at
// start-up (crashenv.go), so an inherited variable cannot kill a production process.
const (
	crashMidRecord       = "mid-record"        // part of the batch written to the log
	crashAfterAppend     = "after-append"      // batch written, not yet fsynced
	crashAfterSync       = "after-fsync"       // log fsynced, state not yet written
	crashAfterState      = "after-state"       // state written, lock not yet released
	crashRotateCreated   = "rotate-created"    // new segment file published, state still on the old one
	crashRecoverTruncate = "recover-truncated" // recovery erased a torn tail, state not yet written
	crashRecoverAdopted  = "recover-adopted"   // recovery fsynced whole records past state, state not yet written
	crashAfterOutcomes   = "after-outcomes"    // outcomes of other processes' requests written, their batch not yet

	crashCheckpointPage    = "checkpoint-page"    // a checkpoint wrote a page file
	crashCheckpointRecycle = "checkpoint-recycle" // a checkpoint renamed a superseded page file to a new version's name, not yet rewritten
	crashCheckpointBefore  = "checkpoint-before"  // page files written and fsynced, checkpoint file not yet advanced
	crashCheckpointAfter   = "checkpoint-after"   // checkpoint file advanced, cleanup not yet run
	crashCheckpointMove    = "checkpoint-move"    // a move linked an incarnation's files into their new folder
	crashCleanupMid        = "cleanup-mid"        // cleanup deleted a superseded page file
	crashTrimMid           = "trim-mid"           // trimming removed a log segment
)

// CrashPoints lists the named crash points, for harnesses and docs.
var CrashPoints = []string{crashMidRecord, crashAfterAppend, crashAfterSync, crashAfterState,
	crashRotateCreated, crashRecoverTruncate, crashRecoverAdopted}

// CheckpointCrashPoints lists the named crash points of checkpoint and cleanup.
// (checkpoint-recycle is not among them: only the housekeeper's runs keep superseded files for
// reuse, and the e2e workers checkpoint with Checkpoint, which keeps none; the txn process test
// TestCheckpointCrashPoints covers it.)
var CheckpointCrashPoints = []string{crashCheckpointPage, crashCheckpointBefore, crashCheckpointAfter,
	crashCheckpointMove, crashCleanupMid, crashTrimMid}

var crash struct {
	point atomic.Value // string
	left  atomic.Int64
}

// crashEnv names the environment variable that arms a crash point where anything reads it.
const crashEnv = "TXTDB_CRASHPOINT"

// armCrashFrom arms the crash point v names ("<name>[:<n>]"); "" arms nothing.
func armCrashFrom(v string) {
	if v == "" {
		return
	}
	name, n, _ := strings.Cut(v, ":")
	count, err := strconv.Atoi(n)
	if err != nil || count < 1 {
		count = 1
	}
	armCrash(name, count)
}

func armCrash(point string, n int) {
	crash.point.Store(point)
	crash.left.Store(int64(n))
}

// crashHit counts a hit of point and reports whether it is the armed, fatal one.
func crashHit(point string) bool {
	p, _ := crash.point.Load().(string)
	return p == point && crash.left.Add(-1) == 0
}

// crashAt kills the process with SIGKILL if point is armed and this is its n-th hit.
func crashAt(point string) {
	if crashHit(point) {
		die(point)
	}
}

// die announces the crash point on stderr ("crash <point>", unbuffered), so a test can tell a
// crash at the point from any other death, then kills the process with SIGKILL.
func die(point string) {
	_, _ = os.Stderr.Write([]byte("crash " + point + "\n"))
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way; never run past the point
}
