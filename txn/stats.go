package txn

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// Stats is a snapshot of one handle's counters and of the store's state on disk. The counters
// count what this handle (this process) did; the store fields are read from disk when Stats is
// called and are the same in every process. A field that could not be read is zero.
type Stats struct {
	// Commit groups of this handle.
	Groups    int64 // commit groups that wrote to the log
	Commits   int64 // this handle's transactions and reservations that committed (Delegated included)
	Served    int64 // commits of other processes' handles this handle's groups wrote (board offers)
	Delegated int64 // this handle's commits another process's group wrote
	Fsyncs    int64 // log fsyncs at commit
	MaxSize   int64 // largest group seen
	Conflicts int64 // commits of this handle that lost validation (ErrConflict)

	// The store, read from disk by the call.
	CommittedTSN  pages.TSN // state's committed TSN
	CheckpointTSN pages.TSN // the page files are current up to here (0: never checkpointed)
	CheckpointLag uint64    // commits past the checkpoint: CommittedTSN - CheckpointTSN
	Horizon       pages.TSN // published cleanup horizon: versions only older snapshots can read may go
	LogSegments   int       // log segment files
	LogBytes      int64     // their size on disk, preallocated zeros included
	PageFiles     int       // version files in the folders of the checkpoint's incarnations
	PageBytes     int64     // their size
	LiveProcesses int       // registry entries whose process is alive (this handle's included unless read-only)
	// The oldest snapshot floor any live process publishes (what holds cleanup back), its age
	// and the process; zero when every live process is idle. An entry that cannot be read pins
	// everything: it shows as floor 0 with its process id unknown (-1).
	OldestFloor    pages.TSN
	OldestFloorAge time.Duration
	OldestFloorPID int

	// Checkpoints this handle ran (its housekeeper, Checkpoint, its last Close).
	Checkpoints         int64
	CheckpointErrors    int64
	LastCheckpointError string // the error of the last run, "" if it succeeded or none ran
	// Page files this handle's checkpoints wrote into a superseded version's file instead of a new one.
	PageFilesReused int64

	// This handle's open transactions.
	OpenTransactions  int
	OldestSnapshot    pages.TSN     // snapshot of the oldest open transaction (0 if none)
	OldestSnapshotAge time.Duration // how long that snapshot has been held open without a break (0 if none)

	// This handle's page cache.
	CacheBytes  int64 // page contents held in memory
	CacheLimit  int64 // the bound (Config.CacheSize)
	CacheHits   int64 // reads served from memory
	CacheMisses int64 // reads that loaded a page file or a log record
}

// Stats returns this handle's counters and the store's state. It does I/O: it reads state, the
// checkpoint file and the horizon, and lists the log, the process registry and the checkpoint's
// namespace folders (work in proportion to the number of files, no file contents). Safe for
// concurrent use, also on a read-only handle; after Close only the counters are filled in.
func (db *DB) Stats() Stats {
	db.stats.mu.Lock()
	s := db.stats.s
	db.stats.mu.Unlock()

	db.ckptStats.mu.Lock()
	s.Checkpoints, s.CheckpointErrors = db.ckptStats.runs, db.ckptStats.fails
	s.PageFilesReused = db.ckptStats.recycled.Load()
	if db.ckptStats.lastErr != nil {
		s.LastCheckpointError = db.ckptStats.lastErr.Error()
	}
	db.ckptStats.mu.Unlock()

	s.OldestSnapshot, s.OldestSnapshotAge, s.OpenTransactions = db.floor.oldestOpen()
	s.CacheBytes, s.CacheLimit = db.cache.used(), db.cache.limit
	s.CacheHits, s.CacheMisses = db.cache.hits.Load(), db.cache.misses.Load()
	if db.closed.Load() {
		return s
	}
	if st, err := db.state.Read(); err == nil {
		s.CommittedTSN = st.TSN
		if h, err := db.horizon.at(st.Lineage); err == nil {
			s.Horizon = h
		}
	}
	if segs, err := wal.ListSegments(db.logDir); err == nil {
		for _, seg := range segs {
			if fi, err := os.Stat(filepath.Join(db.logDir, wal.SegName(seg))); err == nil {
				s.LogSegments++
				s.LogBytes += fi.Size()
			}
		}
	}
	if peers, err := scanPeers(db.procsDir); err == nil {
		for _, p := range peers {
			if p.alive {
				s.LiveProcesses++
			}
			f, pins := p.pins()
			if !pins || (s.OldestFloorPID != 0 && f >= s.OldestFloor) {
				continue
			}
			s.OldestFloor, s.OldestFloorPID, s.OldestFloorAge = f, -1, 0
			if p.readable {
				s.OldestFloorPID = p.entry.pid
				s.OldestFloorAge = time.Since(time.Unix(0, p.entry.since))
			}
		}
	}
	cat, have, err := readCatalog(db.catalogPath())
	if err != nil || !have {
		return s
	}
	s.CheckpointTSN = cat.TSN
	if s.CommittedTSN > cat.TSN {
		s.CheckpointLag = uint64(s.CommittedTSN - cat.TSN)
	}
	seen := map[string]bool{}
	for _, ci := range cat.Incs {
		for _, dir := range []string{ci.Dir, ci.To} {
			if dir == "" || seen[dir] {
				continue
			}
			seen[dir] = true
			n, size := db.countVersions(dir)
			s.PageFiles += n
			s.PageBytes += size
		}
	}
	return s
}

// countVersions counts the version files of the store's format in a folder and their bytes.
func (db *DB) countVersions(dir string) (int, int64) {
	ents, err := db.pdir.ReadFolder(dir)
	if err != nil {
		return 0, 0
	}
	n, size := 0, int64(0)
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if _, f, _, err := pages.ParseVersionFileName(e.Name()); err != nil || f != db.format {
			continue
		}
		if fi, err := e.Info(); err == nil {
			n++
			size += fi.Size()
		}
	}
	return n, size
}

// rejected counts a commit that lost validation.
func (g *groupStats) rejected(err error) {
	if !errors.Is(err, ErrConflict) {
		return
	}
	g.mu.Lock()
	g.s.Conflicts++
	g.mu.Unlock()
}

// oldestOpen returns the oldest open snapshot, how long it has been pinned without a break, and
// how many transactions are open (a snapshot released between the two looks counts as held 0s).
func (f *floorTracker) oldestOpen() (pages.TSN, time.Duration, int) {
	low, ok := f.oldest()
	if !ok {
		return 0, 0, 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	open := 0
	for _, n := range f.pins {
		open += n
	}
	since, held := f.since[low]
	if !held {
		return low, 0, open
	}
	return low, time.Since(since), open
}
