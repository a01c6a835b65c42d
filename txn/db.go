package txn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/txtdb/txtdb/lockfs"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// Isolation is a transaction isolation level.
type Isolation uint8

const (
	// Serializable (the default): a commit fails if anything it read, wrote or scanned changed
	// after its snapshot. Write skew and phantoms are prevented.
	Serializable Isolation = iota
	// Snapshot checks write-write conflicts only.
	Snapshot
)

func (i Isolation) String() string {
	switch i {
	case Serializable:
		return "serializable"
	case Snapshot:
		return "snapshot"
	}
	return fmt.Sprintf("isolation(%d)", uint8(i))
}

// ParseIsolation parses "serializable" or "snapshot".
func ParseIsolation(s string) (Isolation, error) {
	switch strings.ToLower(s) {
	case "serializable", "":
		return Serializable, nil
	case "snapshot":
		return Snapshot, nil
	}
	return 0, fmt.Errorf("txtdb: unknown isolation %q", s)
}

// Config is the engine's configuration. Zero values mean the defaults.
type Config struct {
	Format           pages.Format  // store setting: 0 = the store's, or JSON for a new store
	PageSize         int           // store setting: 0 = the store's, or pages.DefaultPageSize
	Isolation        Isolation     // process setting
	OneObjectPerPage bool          // process setting
	NoSync           bool          // process setting: skip the log fsync at commit
	NoOffer          bool          // process setting: never offer a commit to the lock holder (board.go); NoSync handles never do
	LockTimeout      time.Duration // process setting: 0 = DefaultLockTimeout
	FileMode         os.FileMode   // process setting: mode of files txtdb creates; 0 = 0644
	SegmentBytes     int64         // store setting: log segment size before rotation; 0 = the store's, or DefaultSegmentBytes
	LogRetention     int64         // store setting: checkpointed log bytes kept; 0 = the store's, or DefaultLogRetention; < 0 = none
	ReadOnly         bool          // process setting: never write (no recovery, no registry entry, no checkpoint)
	CheckpointEvery  time.Duration // process setting: longest checkpoint lag after a commit; 0 = DefaultCheckpointEvery
	CacheSize        int64         // process setting: bytes of page contents kept in memory; 0 = DefaultCacheSize

	testSegmentBytes int64   // tests: this handle rotates at this size instead of the store's (other handles' recovery fast path does not look for a rotation it left half done below the store's size: never combine with crashes)
	boot             *string // tests only: this handle's boot id instead of the host's (bootID)
}

// Defaults.
const (
	DefaultLockTimeout  = 30 * time.Second
	DefaultSegmentBytes = 64 << 20
	DefaultLogRetention = 64 << 20
	// DefaultCheckpointEvery bounds the checkpoint lag in time; CheckpointCommits in commits.
	// Each checkpoint writes one file per page changed since the last, so checkpointing more
	// often costs more files for the same commits: at 1 s and 4096 commits, transfers between
	// 1,000 accounts without fsync ran at half the rate (and 10 times the p99) of no checkpoint
	// at all. The bound on what open and catch-up replay is CheckpointCommits records.
	DefaultCheckpointEvery = 5 * time.Second
	CheckpointCommits      = 16384
	// PART OF THE FORMAT: the layout version, in txtdb.json ("txtdb"), in every state slot
	// ("txtdb-state N"), in every log segment header ("txtdb_log"), in the checkpoint file and in
	// registry slots. A file naming another version is refused with ErrVersion, never read or
	// repaired.
	layoutVersion = wal.Version
	reserveBlock  = 32
	maxBatch      = 512
	// commitLockSpin is how many times a commit group that finds the commit lock held tries it
	// again, yielding the CPU before each try, before it waits in flock(2) (lockfs.Lock.SetSpin).
	// Measured on 2 cores, relaxed transfers of one client per process against SQLite, in runs
	// a few minutes apart: at 2 and 4 processes 0.98 and 0.70 without tries, 1.64-1.74 and
	// 1.03-1.15 with 32 (8: 1.29 and 1.13; 64 and 128: no better than 32); durable rows and
	// fairness unchanged. 32 yields take about 30 µs of CPU where nothing else is runnable.
	commitLockSpin = 32
)

// Store layout (PART OF THE FORMAT).
const (
	configName = "txtdb.json"
	lockName   = "lock"
	stateName  = "state"
	logDirName = "log"
)

// storeConfig is txtdb.json, written once when the store is created.
type storeConfig struct {
	Layout       int    `json:"txtdb"`
	Format       string `json:"format"`
	PageSize     int    `json:"page_size"`
	SegmentSize  int64  `json:"segment_size"`
	LogRetention int64  `json:"log_retention"`
}

// DB is one process's handle on a data directory. It is safe for concurrent use.
type DB struct {
	dir, meta, logDir string
	cfg               Config
	format            pages.Format
	layout            pages.Layout
	boot              string       // this handle's kernel boot id
	lock              *lockfs.Lock // the commit lock
	state             *stateFile
	root              *os.Root   // the data directory: every page file access goes through it
	pdir              *pages.Dir // the same, for writing page files
	procsDir          string
	reg               *registration // nil for a read-only handle
	board             *board        // nil for a read-only handle; owned by the goroutine leading a commit group
	floor             floorTracker
	horizon           *horizonFile
	ckptLock          *lockfs.Lock  // .txtdb/checkpoint.lock: one checkpointer at a time, across processes
	releaseLocks      func()        // ends the Retain of lock and ckptLock (writable handles; nil before)
	storeSegBytes     int64         // the store's segment size (txtdb.json), whatever a test handle rotates at
	ckptTSN           atomic.Uint64 // the checkpoint TSN this handle last saw or wrote
	ckptStats         checkpointStats
	sweepDead         atomic.Bool   // a dead process was found: sweep its leftovers at the next cleanup
	recycle           bool          // guarded by the checkpoint lock: checkpoints write new versions into superseded files (recyclePageFile)
	plantRecycleAny   bool          // tests: a planted violation, superseded files above the horizon are reused too
	kept              atomic.Bool   // a cleanup of this handle left files below the horizon for reuse
	kick              chan struct{} // wakes the housekeeper (a commit pushed the lag past CheckpointCommits)
	lastCommit        atomic.Uint64 // TSN of this handle's last commit
	rebuilds          atomic.Int64  // indexes rebuilt from the checkpoint (lineage change, trimmed log)
	runLoads          atomic.Int64  // append versions rebuilt by loadRun (tests)
	syncAll           bool          // checkpoints make page files durable with one syncfs (Linux, a file system that honours it)
	cache             pageCache     // page contents in memory, shared by the handle's indexes
	dirs              catalogDirs   // which folder holds each incarnation's page files
	housekeeper       sync.WaitGroup
	idxp              atomic.Pointer[index] // the current index; swapped whole on a lineage change
	alloc             allocator

	// verified: since this handle started, it has recovered under the commit lock, or read a
	// state written under its own boot id (by a process that had recovered in this boot). A
	// reboot cannot happen while this process lives, so every state read from then on was
	// written in this boot: a state carrying another boot id is no reason to recover again.
	verified atomic.Bool

	catchMu sync.Mutex             // serializes reading the log into idx; lock order: catchMu before idx.mu
	segs    map[pages.TSN]*os.File // guarded by catchMu: read handles on segments
	batch   []scanned              // guarded by catchMu: follow's records, kept for the next catch-up (cleared)
	readBuf []byte                 // guarded by catchMu: follow's read of the log, kept for the next (at most maxReadBuf)

	// Commit groups: requests queue here; one goroutine at a time leads a group.
	q commitQueue

	wr segWriter // owned by the goroutine leading a commit group (or Open, before any group)
	// frame is where a group frames its records (frameRecords), kept for the next group (up to
	// maxReadBuf): owned by the goroutine leading a commit group.
	frame bytes.Buffer

	stats    groupStats
	ctx      context.Context
	cancel   context.CancelFunc
	broken   atomic.Pointer[error] // set when the log could not be repaired: the handle refuses work
	closed   atomic.Bool
	closeErr error
	once     sync.Once
}

// Open opens (creating if needed) the store in dir. A read-only handle never creates, repairs or
// registers anything: the store must exist.
func Open(ctx context.Context, dir string, cfg Config) (*DB, error) {
	if cfg.LockTimeout <= 0 {
		cfg.LockTimeout = DefaultLockTimeout
	}
	if cfg.FileMode == 0 {
		cfg.FileMode = 0o644
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = DefaultCheckpointEvery
	}
	if cfg.Format != 0 && !cfg.Format.Valid() {
		return nil, fmt.Errorf("txtdb: open: invalid format %d", cfg.Format)
	}
	if cfg.PageSize < 0 || cfg.SegmentBytes < 0 {
		return nil, fmt.Errorf("txtdb: open: negative page or segment size")
	}
	db := &DB{
		dir:  dir,
		meta: filepath.Join(dir, pages.MetaDir),
		cfg:  cfg,
		segs: map[pages.TSN]*os.File{},
		kick: make(chan struct{}, 1),
	}
	if cfg.boot != nil {
		db.boot = *cfg.boot
	} else {
		db.boot = bootID()
	}
	db.logDir = filepath.Join(db.meta, logDirName)
	db.procsDir = filepath.Join(db.meta, procsDirName)
	db.q.idle = sync.NewCond(&db.q.mu)
	db.cache.limit = cfg.CacheSize
	if db.cache.limit <= 0 {
		db.cache.limit = DefaultCacheSize
	}
	db.idxp.Store(db.freshIndex())
	db.alloc.reset()
	db.floor.init()
	if cfg.ReadOnly {
		if _, err := os.Stat(filepath.Join(dir, configName)); err != nil {
			return nil, fmt.Errorf("txtdb: open %s read-only: %w", dir, err)
		}
	} else if err := lockfs.MkdirAll(db.logDir, dirMode(cfg.FileMode)); err != nil {
		return nil, fmt.Errorf("txtdb: open %s: %w", dir, err)
	}
	db.lock = lockfs.New(filepath.Join(db.meta, lockName), cfg.FileMode)
	db.lock.SetSpin(commitLockSpin)
	db.ckptLock = lockfs.New(filepath.Join(db.meta, checkpointLockName), cfg.FileMode)
	sc, err := db.initStore(ctx)
	if err != nil {
		return nil, err
	}
	if db.format, err = pages.ParseFormat(sc.Format); err != nil {
		return nil, fmt.Errorf("txtdb: open: %s: %w", configName, errors.Join(pages.ErrCorrupt, err))
	}
	if cfg.Format != 0 && cfg.Format != db.format {
		return nil, fmt.Errorf("%w: format %s, store has %s", ErrOptionsMismatch, cfg.Format, db.format)
	}
	if cfg.PageSize != 0 && cfg.PageSize != sc.PageSize {
		return nil, fmt.Errorf("%w: page size %d, store has %d", ErrOptionsMismatch, cfg.PageSize, sc.PageSize)
	}
	if cfg.SegmentBytes != 0 && cfg.SegmentBytes != sc.SegmentSize {
		return nil, fmt.Errorf("%w: segment size %d, store has %d", ErrOptionsMismatch, cfg.SegmentBytes, sc.SegmentSize)
	}
	if cfg.LogRetention != 0 && cfg.LogRetention != sc.LogRetention {
		return nil, fmt.Errorf("%w: log retention %d, store has %d", ErrOptionsMismatch, cfg.LogRetention, sc.LogRetention)
	}
	db.cfg.SegmentBytes, db.cfg.LogRetention = sc.SegmentSize, sc.LogRetention
	db.storeSegBytes = sc.SegmentSize
	if cfg.testSegmentBytes > 0 {
		db.cfg.SegmentBytes = cfg.testSegmentBytes
	}
	db.layout = pages.Layout{PageSize: sc.PageSize, OneObjectPerPage: cfg.OneObjectPerPage}
	if err := db.openFiles(); err != nil {
		db.closeFiles()
		return nil, fmt.Errorf("txtdb: open %s: %w", dir, err)
	}
	if err := db.openIndex(ctx); err != nil {
		db.closeFiles()
		return nil, fmt.Errorf("txtdb: open %s: %w", dir, err)
	}
	if db.reg != nil { // after the store's versions were checked: a store of another one is left as it is
		if db.board, err = openBoard(db.meta, db.cfg.FileMode, db.reg.id, !db.cfg.NoOffer && !db.cfg.NoSync); err != nil {
			db.closeFiles()
			return nil, fmt.Errorf("txtdb: open %s: %w", dir, err)
		}
	}
	db.ctx, db.cancel = context.WithCancel(context.Background())
	if !cfg.ReadOnly {
		// Both lock files stay open for the handle's life: a commit then costs one flock(2) to
		// take the commit lock and one to release it (lock files are never removed or replaced).
		releaseCommit, releaseCkpt := db.lock.Retain(), db.ckptLock.Retain()
		db.releaseLocks = func() { releaseCommit(); releaseCkpt() }
		// The first cleanup of a handle sweeps what failed or dead checkpointers left before it
		// came (temporary files, files in folders no catalog names, empty stray folders).
		db.sweepDead.Store(true)
		db.housekeeper.Add(1)
		go db.housekeep()
	}
	return db, nil
}

// openFiles opens the state, horizon and data directory handles and, for a writable handle,
// registers the process (with floor 0, before the first state read).
func (db *DB) openFiles() error {
	var err error
	if db.state, err = wal.OpenStateFile(filepath.Join(db.meta, stateName), db.cfg.FileMode, db.cfg.ReadOnly); err != nil {
		return err
	}
	if db.horizon, err = openHorizon(filepath.Join(db.meta, horizonName), db.cfg.FileMode, db.cfg.ReadOnly); err != nil {
		return err
	}
	if db.root, err = os.OpenRoot(db.dir); err != nil {
		return err
	}
	if db.pdir, err = pages.OpenDir(db.dir); err != nil {
		return err
	}
	// One syncfs per checkpoint where the file system honours it; else an fsync per page file.
	db.syncAll = db.pdir.CanSyncAll()
	db.recycle = true // until a rename without replacing is refused (recyclePageFile)
	if !db.cfg.ReadOnly {
		if db.reg, err = register(db.procsDir, db.cfg.FileMode); err != nil {
			return err
		}
		db.floor.reg = db.reg
	}
	return nil
}

// closeFiles closes what openFiles opened (after a failed Open, or in Close).
func (db *DB) closeFiles() error {
	if db.releaseLocks != nil {
		db.releaseLocks()
	}
	db.dropWriter()
	db.dropReaders()
	var errs []error
	db.board.close()
	db.board = nil
	if db.reg != nil {
		errs = append(errs, db.reg.close())
	}
	if db.state != nil {
		errs = append(errs, db.state.Close())
	}
	if db.horizon != nil {
		errs = append(errs, db.horizon.close())
	}
	if db.pdir != nil {
		errs = append(errs, db.pdir.Close())
	}
	if db.root != nil {
		errs = append(errs, db.root.Close())
	}
	return errors.Join(errs...)
}

// withLock runs fn under the commit lock.
func (db *DB) withLock(ctx context.Context, fn func() (state, error)) (state, error) {
	ctx, cancel := context.WithTimeout(ctx, db.cfg.LockTimeout)
	defer cancel()
	unlock, err := db.lock.Lock(ctx)
	if err != nil {
		return state{}, err
	}
	defer func() { _ = unlock() }()
	return fn()
}

// initStore reads txtdb.json, creating the store under the commit lock if it has none. Two
// processes creating the same new directory at once end up with the same store.
func (db *DB) initStore(ctx context.Context) (storeConfig, error) {
	path := filepath.Join(db.dir, configName)
	sc, err := readStoreConfig(path)
	if !errors.Is(err, fs.ErrNotExist) || db.cfg.ReadOnly {
		return sc, err
	}
	ctx, cancel := context.WithTimeout(ctx, db.cfg.LockTimeout)
	defer cancel()
	unlock, err := db.lock.Lock(ctx)
	if err != nil {
		return sc, fmt.Errorf("txtdb: create store: %w", err)
	}
	defer func() { _ = unlock() }()
	if sc, err = readStoreConfig(path); !errors.Is(err, fs.ErrNotExist) {
		return sc, err
	}
	f := db.cfg.Format
	if f == 0 {
		f = pages.JSON
	}
	sc = storeConfig{Layout: layoutVersion, Format: f.String(), PageSize: db.cfg.PageSize,
		SegmentSize: db.cfg.SegmentBytes, LogRetention: db.cfg.LogRetention}
	if sc.PageSize == 0 {
		sc.PageSize = pages.DefaultPageSize
	}
	if sc.SegmentSize == 0 {
		sc.SegmentSize = DefaultSegmentBytes
	}
	if sc.LogRetention == 0 {
		sc.LogRetention = DefaultLogRetention
	}
	db.cfg.SegmentBytes = sc.SegmentSize
	// A crash before txtdb.json is published leaves a store nobody has used: the next opener
	// redoes all of this, clearing what the dead creator left. Segment 1 and state are
	// published first, txtdb.json last.
	if err := clearUnpublished(db.logDir, filepath.Join(db.meta, stateName)); err != nil {
		return sc, fmt.Errorf("txtdb: create store: %w", err)
	}
	lineage := uuid.NewString()
	hdr, err := wal.CreateSegment(db.logDir, 1, lineage, db.cfg.FileMode, db.growBytes())
	if err != nil {
		return sc, err
	}
	st := state{Seq: 0, Pos: hdr, Lineage: lineage, Boot: db.boot}
	two := append(st.Encode(), (state{Seq: 1, Pos: st.Pos, Lineage: lineage, Boot: db.boot}).Encode()...)
	if err := lockfs.WriteFile(filepath.Join(db.meta, stateName), two, db.cfg.FileMode); err != nil {
		return sc, fmt.Errorf("txtdb: create store: %w", err)
	}
	data, _ := json.MarshalIndent(sc, "", "  ")
	if err := lockfs.WriteFile(path, append(data, '\n'), db.cfg.FileMode); err != nil {
		return sc, fmt.Errorf("txtdb: create store: %w", err)
	}
	return sc, nil
}

// clearUnpublished removes the log segments (and temporary segment files) and state file of a
// store whose txtdb.json was never published (its creator died): nobody can have committed to it.
// REQUIRES: commit lock held, no txtdb.json.
func clearUnpublished(logDir, statePath string) error {
	if err := wal.RemoveTemps(logDir); err != nil {
		return err
	}
	segs, err := wal.ListSegments(logDir)
	if err != nil {
		return err
	}
	for _, seg := range segs {
		if err := os.Remove(filepath.Join(logDir, wal.SegName(seg))); err != nil {
			return err
		}
	}
	if err := os.Remove(statePath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func readStoreConfig(path string) (storeConfig, error) {
	var sc storeConfig
	data, err := os.ReadFile(path)
	if err != nil {
		return sc, err
	}
	if err := json.Unmarshal(data, &sc); err != nil {
		return sc, fmt.Errorf("txtdb: %s: %w", path, &pages.CorruptError{Path: path, Err: err})
	}
	if sc.Layout <= 0 {
		return sc, fmt.Errorf("txtdb: %s: layout %d: %w", path, sc.Layout, pages.ErrCorrupt)
	}
	if sc.Layout != layoutVersion {
		return sc, fmt.Errorf("%w: %s names layout version %d, this build reads %d", ErrVersion, path, sc.Layout, layoutVersion)
	}
	if sc.PageSize <= 0 || sc.SegmentSize <= 0 || sc.LogRetention == 0 {
		return sc, fmt.Errorf("txtdb: %s: page size %d segment size %d retention %d: %w", path, sc.PageSize, sc.SegmentSize, sc.LogRetention, pages.ErrCorrupt)
	}
	return sc, nil
}

// dirMode gives directories search permission wherever files get read permission (0644 -> 0755).
func dirMode(file os.FileMode) os.FileMode { return file | (file&0o444)>>2 | 0o700 }

// bootID identifies the running kernel boot, host-wide (the same in every process of one boot;
// boot_*.go), so a handle can tell that state may predate a reboot. "" means the host gives no
// such signal: then every handle recovers on the slow path first, as after a reboot. A variable
// so tests can stage a reboot.
var bootID = readBootID

// Dir returns the data directory.
func (db *DB) Dir() string { return db.dir }

// ID returns the handle's identity: the id of its registry entry (.txtdb/procs/<id>.lock), which
// every commit record it writes names (and so every event of its commits); "" for a read-only
// handle, which registers nothing and commits nothing. Safe for concurrent use.
func (db *DB) ID() string {
	if db.reg == nil {
		return ""
	}
	return db.reg.id
}

// Format returns the store's format.
func (db *DB) Format() pages.Format { return db.format }

// Layout returns the paging rules this handle inserts with.
func (db *DB) Layout() pages.Layout { return db.layout }

// Close stops the handle's background work, waits for a running commit group, fails queued commits
// with ErrClosed, deregisters the process and closes files; open transactions fail afterwards. The
// last live process to close checkpoints and cleans up first (decided under the checkpoint lock,
// so two closers never both think the other is last), leaving the directory at rest. Close is
// idempotent.
func (db *DB) Close() error {
	db.once.Do(func() {
		db.closed.Store(true)
		db.cancel() // a group waiting for the commit lock gives up; the housekeeper stops
		db.housekeeper.Wait()
		db.q.mu.Lock()
		for db.q.leading {
			db.q.idle.Wait()
		}
		db.drainQueue()
		db.q.mu.Unlock()
		var errs []error
		if !db.cfg.ReadOnly && db.broken.Load() == nil {
			errs = append(errs, db.closeLast())
		}
		errs = append(errs, db.closeFiles())
		db.closeErr = errors.Join(errs...)
	})
	return db.closeErr
}

// closeLast deregisters under the checkpoint lock, and checkpoints first if no other process is
// alive.
func (db *DB) closeLast() error {
	lockCtx, cancel := context.WithTimeout(context.Background(), db.cfg.LockTimeout)
	unlock, err := db.ckptLock.Lock(lockCtx)
	cancel()
	if err != nil {
		return nil // another process is checkpointing: it, or a later one, finishes the job
	}
	ctx := context.Background() // the last one out finishes the checkpoint, however long it takes
	defer func() { _ = unlock() }()
	if err := db.reg.publish(0, true); err != nil {
		return err
	}
	peers, err := scanPeers(db.procsDir)
	if err != nil {
		return err
	}
	last := true
	for _, p := range peers {
		if p.alive && p.id != db.reg.id {
			last = false
		}
	}
	var cerr error
	if last {
		cerr = db.checkpointLocked(ctx, false)
	} else if db.kept.Load() {
		// This handle's housekeeper kept superseded files for its next run, which will not
		// come, and no other handle removes them unless it checkpoints: clean up, keeping none.
		h, err := db.horizonNow()
		if err == nil {
			err = db.cleanupLocked(h, nil, 0)
		}
		cerr = err
	}
	return errors.Join(cerr, db.reg.close())
}

func (db *DB) usable() error {
	if db.closed.Load() {
		return ErrClosed
	}
	if p := db.broken.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrBroken, *p)
	}
	return nil
}

// openIndex builds the index up to the current state, repairing the store first if its state is
// unreadable or names more log than there is after a NoSync power cut.
func (db *DB) openIndex(ctx context.Context) error {
	for tries := 0; ; tries++ {
		db.catchMu.Lock()
		x, err := db.indexFromCheckpoint()
		if err == nil {
			db.idxp.Store(x)
			db.ckptTSN.Store(uint64(x.base))
		}
		db.catchMu.Unlock()
		if err != nil {
			return err
		}
		_, _, err = db.current(ctx, false)
		if errors.Is(err, errSegmentGone) && tries < 100 {
			continue // trimmed after the catalog was read: read the new one
		}
		return err
	}
}

// current reads state and catches the index up to it: the snapshot a new transaction gets (pinned
// in the returned index if pin is set). It re-reads a state that is older than the index
// (errStale). When the store needs a repair that only a commit lock holder may do (no readable
// state slot; this handle not yet verified since it started, so state may predate a reboot; a
// NoSync state naming more log than there is), it takes the lock and recovers first, once: a
// store that still needs repair after that is an error, never a snapshot without an index.
// In steady state (verified, state readable) it takes no lock.
func (db *DB) current(ctx context.Context, pin bool) (state, *index, error) {
	repaired := false
	for tries := 0; ; tries++ {
		st, err := db.readState()
		if err == nil {
			db.floor.saw(st.TSN)
			db.noteBoot(st)
		}
		// Until verified, a state may predate a power cut: with sync on, acknowledged records
		// past its (unsynced) slot must be adopted before anyone reads; with NoSync, the log may
		// have lost its tail. Either way the handle recovers under the lock, once.
		needRepair := errors.Is(err, wal.ErrNoState) || (err == nil && !db.verified.Load())
		if db.cfg.ReadOnly {
			needRepair = false // a read-only handle repairs nothing; it reads what is there
		}
		if err == nil && pin {
			// A snapshot below the published cleanup horizon may miss deleted versions: read
			// state again (cannot happen while the floor protocol holds; checked anyway).
			if h, herr := db.horizon.at(st.Lineage); herr == nil && st.TSN < h && tries < 1000 {
				continue
			}
		}
		var x *index
		if err == nil && !needRepair {
			x, err = db.catchUp(st, pin)
			if errors.Is(err, errStale) && tries < 1000 {
				continue
			}
			if errors.Is(err, errStale) {
				// Say what a read of the file itself finds, beside what the mapping gave.
				fresh, ferr := db.state.ReadFresh()
				err = fmt.Errorf("%w; read through a new descriptor: seq %d (lineage %.8s, tsn %d), err %v",
					err, fresh.Seq, fresh.Lineage, fresh.TSN, ferr)
			}
			needRepair = err != nil && !db.cfg.ReadOnly &&
				(errors.Is(err, errAheadOfState) || (st.NoSync && errors.Is(err, pages.ErrCorrupt)))
			if db.cfg.ReadOnly && errors.Is(err, errAheadOfState) {
				// The surviving state slot is older than the checkpoint (a power cut; only a
				// writer repairs state). Reading stops at the checkpoint: everything up to it
				// is durable; what lies past it stays unread until a writer has recovered.
				return db.atCheckpoint(st, pin)
			}
		}
		if needRepair && repaired {
			if err == nil {
				err = corrupt(db.state.Path, 0, errors.New("state needs repair right after recovery"))
			}
			return st, nil, fmt.Errorf("state still needs repair after recovery: %w", err)
		}
		if needRepair {
			repaired = true
			if _, err := db.withLock(ctx, db.recoverLocked); err != nil {
				return st, nil, err
			}
			faults.didRepair(db)
			continue
		}
		if err != nil {
			return st, nil, err
		}
		return st, x, nil // INVARIANT: x != nil
	}
}

// noteBoot marks the handle verified if st was written under its own boot id (the writer
// recovered in this boot before writing it) and nothing lies in the log past st's position. The
// second condition covers a cut the boot id does not record (a virtual machine restored under a
// live host, a FUSE daemon that lost its cache): state is not fsynced, so such a cut can leave an
// old slot behind acknowledged records, which only a recovery under the lock adopts. A record past
// state may also be a commit in flight: then the handle recovers once, waiting for that commit.
// An empty boot id (no signal) proves nothing: the handle is verified only by its own recovery
// under the lock.
func (db *DB) noteBoot(st state) {
	if db.cfg.ReadOnly {
		return // a read-only handle repairs nothing, so it never needs to be verified
	}
	if db.boot != "" && st.Boot == db.boot && !db.verified.Load() && db.nothingPast(st) {
		db.verified.Store(true)
	}
}

// nothingPast reports whether the log ends at st's position (logEndsAt), reading the segment
// through a handle of its own: it runs without the commit lock. Any error is false.
func (db *DB) nothingPast(st state) bool {
	f, err := os.Open(filepath.Join(db.logDir, wal.SegName(st.Pos.Seg)))
	if err != nil {
		return false
	}
	defer f.Close()
	return db.logEndsAt(f, st)
}

// atCheckpoint gives a read-only handle whose state is older than the checkpoint a snapshot at
// the checkpoint TSN of its index (see current).
func (db *DB) atCheckpoint(st state, pin bool) (state, *index, error) {
	db.catchMu.Lock()
	defer db.catchMu.Unlock()
	x := db.idxp.Load()
	x.mu.Lock()
	if x.lineage == "" {
		x.lineage = st.Lineage
	}
	st.TSN, st.Pos = x.applied, x.pos
	x.mu.Unlock()
	if pin {
		x.pin(st.TSN)
	}
	return st, x, nil
}
