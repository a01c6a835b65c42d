package txn

import (
	"errors"
	"fmt"
	"github.com/txtdb/txtdb/wal"

	"github.com/txtdb/txtdb/pages"
)

// Errors of the engine, grouped by phase. The root package re-exports them.
var (
	// Open.
	ErrOptionsMismatch = errors.New("txtdb: options contradict the existing store")
	ErrClosed          = errors.New("txtdb: database closed")
	// ErrVersion: txtdb.json, a state slot or a log segment header names another layout version
	// than this build reads. Nothing was changed.
	ErrVersion = wal.ErrVersion
	// ErrReadOnlyDB: a write through a handle opened with ReadOnly.
	ErrReadOnlyDB = errors.New("txtdb: database opened read-only")

	// Transactions.
	ErrTxClosed          = errors.New("txtdb: transaction closed")
	ErrReadOnly          = errors.New("txtdb: transaction is read-only")
	ErrNotFound          = errors.New("txtdb: page not found")
	ErrNamespaceNotFound = errors.New("txtdb: namespace not found")
	ErrNamespaceExists   = errors.New("txtdb: namespace exists")
	ErrNotRead           = errors.New("txtdb: page must be read before it is updated or deleted")
	// ErrInvalidKey: a keyed change or read (AppendPage, ReadPageKey) with an empty key or one
	// that is not valid UTF-8.
	ErrInvalidKey = errors.New("txtdb: invalid key")
	// ErrSnapshotTooOld: a read-only handle (which pins nothing) read a version that cleanup
	// removed after the transaction began; begin again.
	ErrSnapshotTooOld = errors.New("txtdb: snapshot too old for a read-only handle")

	// Commit.
	ErrConflict      = errors.New("txtdb: conflict")
	ErrCommitUnknown = errors.New("txtdb: commit outcome unknown")
	// ErrBroken: an earlier commit's failed write could not be undone, so this handle refuses
	// all work; open a new handle (its recovery repairs the log).
	ErrBroken = errors.New("txtdb: handle unusable after a failed log repair")
)

// Problems Check reports (besides pages.ErrCorrupt and ErrVersion).
var (
	// ErrUnexpectedFile: a file or folder in the data directory that is not part of the layout.
	ErrUnexpectedFile = errors.New("txtdb: file outside the layout")
	// ErrLeftover: a file a dead process left behind (a temporary file, a registry entry);
	// cleanup by the live processes removes it.
	ErrLeftover = errors.New("txtdb: leftover of a dead process")
)

// ConflictError says why a commit lost: what it depended on changed after its snapshot.
// It matches ErrConflict.
type ConflictError struct {
	Namespace string    // namespace name as the transaction saw it
	Page      string    // page ID, or "" for a namespace-level conflict
	Snapshot  pages.TSN // the transaction's snapshot
	Committed pages.TSN // the newer TSN that changed it (possibly an earlier member of the same commit group)
	Reason    string    // "read", "write", "scan", "namespace", "lineage"
	// Key is, when a keyed read or append (ReadPageKey, AppendPage) lost to a keyed append
	// under the same key, that key; "" otherwise.
	Key string
}

func (e *ConflictError) Error() string {
	what := e.Namespace
	if e.Page != "" {
		what += "/" + e.Page
	}
	if e.Key != "" {
		what += fmt.Sprintf(" (key %q)", e.Key)
	}
	return fmt.Sprintf("txtdb: conflict: %s %s changed at tsn %d after snapshot %d", e.Reason, what, e.Committed, e.Snapshot)
}

func (e *ConflictError) Unwrap() error { return ErrConflict }

// UnknownError wraps the failure that left a commit's outcome unknown. It matches
// ErrCommitUnknown and the underlying error.
type UnknownError struct{ Err error }

func (e *UnknownError) Error() string   { return "txtdb: commit outcome unknown: " + e.Err.Error() }
func (e *UnknownError) Unwrap() []error { return []error{ErrCommitUnknown, e.Err} }

// corrupt reports a bad log or state file at or below the committed position.
func corrupt(path string, off int64, err error) error {
	return &pages.CorruptError{Path: path, Offset: off, Err: err}
}
