package txn

import (
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
	LockTimeout      time.Duration // process setting: 0 = DefaultLockTimeout
	FileMode         os.FileMode   // process setting: mode of files txtdb creates; 0 = 0644
	SegmentBytes     int64         // log segment size before rotation; 0 = DefaultSegmentBytes

	boot *string // tests only: this handle's boot id instead of the host's (bootID)
}

// Defaults.
const (
	DefaultLockTimeout  = 30 * time.Second
	DefaultSegmentBytes = 64 << 20
	// PART OF THE FORMAT: the layout version, in txtdb.json ("txtdb"), in every state slot
	// ("txtdb-state N") and in every log segment header ("txtdb_log"). A file naming another
	// version is refused with ErrVersion, never read or repaired.
	layoutVersion = 2
	reserveBlock  = 32
	maxBatch      = 512
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
	Layout   int    `json:"txtdb"`
	Format   string `json:"format"`
	PageSize int    `json:"page_size"`
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
	idxp              atomic.Pointer[index] // the current index; swapped whole on a lineage change
	alloc             allocator

	// verified: since this handle started, it has recovered under the commit lock, or read a
	// state written under its own boot id (by a process that had recovered in this boot). A
	// reboot cannot happen while this process lives, so every state read from then on was
	// written in this boot: a state carrying another boot id is no reason to recover again.
	verified atomic.Bool

	catchMu sync.Mutex             // serializes reading the log into idx; lock order: catchMu before idx.mu
	segs    map[pages.TSN]*os.File // guarded by catchMu: read handles on segments

	// Commit groups: requests queue here; one goroutine at a time leads a group.
	qmu     sync.Mutex
	qidle   *sync.Cond // signalled when the lead is given up
	queue   []*request // guarded by qmu
	leading bool       // guarded by qmu

	// Owned by the goroutine leading a commit group (or Open, before any group).
	w     *os.File
	wSeg  pages.TSN
	wSize int64 // the segment's file size (records, then zeros)

	stats    groupStats
	ctx      context.Context
	cancel   context.CancelFunc
	broken   atomic.Pointer[error] // set when the log could not be repaired: the handle refuses work
	closed   atomic.Bool
	closeErr error
	once     sync.Once
}

// Open opens (creating if needed) the store in dir.
func Open(ctx context.Context, dir string, cfg Config) (*DB, error) {
	if cfg.LockTimeout <= 0 {
		cfg.LockTimeout = DefaultLockTimeout
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = DefaultSegmentBytes
	}
	if cfg.FileMode == 0 {
		cfg.FileMode = 0o644
	}
	if cfg.Format != 0 && !cfg.Format.Valid() {
		return nil, fmt.Errorf("txtdb: open: invalid format %d", cfg.Format)
	}
	if cfg.PageSize < 0 {
		return nil, fmt.Errorf("txtdb: open: negative page size")
	}
	db := &DB{
		dir:  dir,
		meta: filepath.Join(dir, pages.MetaDir),
		cfg:  cfg,
		segs: map[pages.TSN]*os.File{},
	}
	if cfg.boot != nil {
		db.boot = *cfg.boot
	} else {
		db.boot = bootID()
	}
	db.logDir = filepath.Join(db.meta, logDirName)
	db.qidle = sync.NewCond(&db.qmu)
	db.idxp.Store(newIndex())
	db.alloc.reset()
	if err := lockfs.MkdirAll(db.logDir, dirMode(cfg.FileMode)); err != nil {
		return nil, fmt.Errorf("txtdb: open %s: %w", dir, err)
	}
	db.lock = lockfs.New(filepath.Join(db.meta, lockName), cfg.FileMode)
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
	db.layout = pages.Layout{PageSize: sc.PageSize, OneObjectPerPage: cfg.OneObjectPerPage}
	if db.state, err = openStateFile(filepath.Join(db.meta, stateName), cfg.FileMode); err != nil {
		return nil, err
	}
	if err := db.openIndex(ctx); err != nil {
		db.dropWriter()
		db.dropReaders()
		_ = db.state.close()
		return nil, fmt.Errorf("txtdb: open %s: %w", dir, err)
	}
	db.ctx, db.cancel = context.WithCancel(context.Background())
	return db, nil
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
	if !errors.Is(err, fs.ErrNotExist) {
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
	sc = storeConfig{Layout: layoutVersion, Format: f.String(), PageSize: db.cfg.PageSize}
	if sc.PageSize == 0 {
		sc.PageSize = pages.DefaultPageSize
	}
	// A crash before txtdb.json is published leaves a store nobody has used: the next opener
	// redoes all of this, clearing what the dead creator left. Segment 1 and state are
	// published first, txtdb.json last.
	if err := clearUnpublished(db.logDir, filepath.Join(db.meta, stateName)); err != nil {
		return sc, fmt.Errorf("txtdb: create store: %w", err)
	}
	lineage := uuid.NewString()
	hdr, err := createSegment(db.logDir, 1, lineage, db.cfg.FileMode, db.growBytes())
	if err != nil {
		return sc, err
	}
	st := state{seq: 0, pos: hdr, lineage: lineage, boot: db.boot}
	two := append(st.encode(), (state{seq: 1, pos: st.pos, lineage: lineage, boot: db.boot}).encode()...)
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
	if err := removeTemps(logDir); err != nil {
		return err
	}
	segs, err := listSegments(logDir)
	if err != nil {
		return err
	}
	for _, seg := range segs {
		if err := os.Remove(filepath.Join(logDir, segName(seg))); err != nil {
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
	if sc.Layout <= 0 || sc.PageSize <= 0 {
		return sc, fmt.Errorf("txtdb: %s: layout %d page size %d: %w", path, sc.Layout, sc.PageSize, pages.ErrCorrupt)
	}
	if sc.Layout != layoutVersion {
		return sc, fmt.Errorf("%w: %s names layout version %d, this build reads %d", ErrVersion, path, sc.Layout, layoutVersion)
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

// Format returns the store's format.
func (db *DB) Format() pages.Format { return db.format }

// Layout returns the paging rules this handle inserts with.
func (db *DB) Layout() pages.Layout { return db.layout }

// Close waits for a running commit group, fails queued commits with ErrClosed, and closes files. Open transactions fail afterwards.
// Close is idempotent.
func (db *DB) Close() error {
	db.once.Do(func() {
		db.closed.Store(true)
		db.cancel() // a group waiting for the commit lock gives up
		db.qmu.Lock()
		for db.leading {
			db.qidle.Wait()
		}
		db.drainQueue()
		db.qmu.Unlock()
		var errs []error
		if db.w != nil {
			errs = append(errs, db.w.Close())
		}
		db.catchMu.Lock()
		for seg, f := range db.segs {
			errs = append(errs, f.Close())
			delete(db.segs, seg)
		}
		db.catchMu.Unlock()
		errs = append(errs, db.state.close())
		db.closeErr = errors.Join(errs...)
	})
	return db.closeErr
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
	_, _, err := db.current(ctx, false)
	return err
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
			db.noteBoot(st)
		}
		// Until verified, a state may predate a power cut: with sync on, acknowledged records
		// past its (unsynced) slot must be adopted before anyone reads; with NoSync, the log may
		// have lost its tail. Either way the handle recovers under the lock, once.
		needRepair := errors.Is(err, errNoState) || (err == nil && !db.verified.Load())
		var x *index
		if err == nil && !needRepair {
			x, err = db.catchUp(st, pin)
			if errors.Is(err, errStale) && tries < 1000 {
				continue
			}
			needRepair = err != nil && st.noSync && errors.Is(err, pages.ErrCorrupt)
		}
		if needRepair && repaired {
			if err == nil {
				err = corrupt(db.state.path, 0, errors.New("state needs repair right after recovery"))
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

// noteBoot marks the handle verified if st was written under its own boot id: the writer
// recovered in this boot before writing it. An empty boot id (no signal) proves nothing: the
// handle is verified only by its own recovery under the lock.
func (db *DB) noteBoot(st state) {
	if db.boot != "" && st.boot == db.boot && !db.verified.Load() {
		db.verified.Store(true)
	}
}
