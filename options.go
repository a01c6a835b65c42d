package txtdb

import (
	"os"
	"time"

	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/txn"
)

// Format is the text format of a store's data: JSON (default), YAML or XML.
type Format = pages.Format

// Formats.
const (
	JSON = pages.JSON
	YAML = pages.YAML
	XML  = pages.XML
)

// ParseFormat parses "json", "yaml" or "xml".
func ParseFormat(s string) (Format, error) { return pages.ParseFormat(s) }

// Isolation is a transaction isolation level.
type Isolation = txn.Isolation

// Isolation levels.
const (
	Serializable = txn.Serializable // default: read, write and scan conflicts
	Snapshot     = txn.Snapshot     // write-write conflicts only
)

// TSN is a transaction sequence number: commit order, the same in every process.
type TSN = pages.TSN

// Options configures Open. A nil *Options and zero fields mean the defaults.
type Options struct {
	// Store settings, recorded in txtdb.json when the store is created. Zero means "whatever the
	// store already has" (JSON and 8 KiB for a new store); a non-zero value that contradicts an
	// existing store fails with ErrOptionsMismatch.
	Format   Format
	PageSize int
	// SegmentSize is the size in bytes a log segment reaches before the next commit starts a new
	// one (default 64 MiB). LogRetention is how many bytes of already checkpointed log are kept
	// for readers that resume from an older TSN (default 64 MiB; negative keeps nothing beyond what
	// recovery and live snapshots need).
	SegmentSize  int64
	LogRetention int64

	// Process settings.
	Isolation        Isolation     // zero = Serializable
	OneObjectPerPage bool          // Insert puts every object on a page of its own
	NoSync           bool          // skip the log fsync at commit: a power cut may lose the last commits (readers detect the rewind)
	LockTimeout      time.Duration // longest wait for the commit lock; zero = 30s; the shorter of it and a context wins
	// NoOffer: never offer a commit to the process holding the commit lock; each commit then
	// takes the lock and fsyncs itself. By default a process that finds the lock taken offers its
	// commit, and the holder writes it under its own fsync (docs/PROTOCOL.md, "Commit requests of
	// other processes"). NoSync processes never offer (there is no fsync to share).
	NoOffer    bool
	MaxRetries int         // Update's retries on ErrConflict; zero = 100
	FileMode   os.FileMode // mode of files txtdb creates (umask applies); zero = 0644
	// CheckpointEvery bounds the checkpoint lag after this process commits: the page files are
	// brought up to date at most this long after a commit (zero = 5s), and at once when the lag
	// reaches txn.CheckpointCommits commits.
	CheckpointEvery time.Duration
	// CacheSize bounds the bytes of page contents this process keeps in memory (zero = 64 MiB);
	// what does not fit is read again from the page files or the log.
	CacheSize int64

	// ReadOnly opens the store without writing anything: no recovery, no registry entry, no
	// checkpoint. Writable transactions fail with ErrReadOnlyDB. The store must exist. Having no
	// registry entry, a read-only handle pins no versions: a read transaction held open while
	// other processes commit and clean up may fail with ErrSnapshotTooOld (begin again).
	ReadOnly bool
}

// DefaultMaxRetries is Update's retry budget when Options.MaxRetries is zero.
const DefaultMaxRetries = 100

// DefaultOptions returns a fresh Options with every default spelled out.
func DefaultOptions() *Options {
	return &Options{
		Format:          JSON,
		PageSize:        pages.DefaultPageSize,
		SegmentSize:     txn.DefaultSegmentBytes,
		LogRetention:    txn.DefaultLogRetention,
		Isolation:       Serializable,
		LockTimeout:     txn.DefaultLockTimeout,
		MaxRetries:      DefaultMaxRetries,
		FileMode:        0o644,
		CheckpointEvery: txn.DefaultCheckpointEvery,
	}
}
