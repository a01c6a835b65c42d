package txtdb

import (
	"github.com/txtdb/txtdb/lockfs"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/txn"
)

// Errors, all usable with errors.Is. They originate in the lower packages and are the same values.
var (
	ErrConflict          = txn.ErrConflict          // a commit lost: something it depended on changed
	ErrCommitUnknown     = txn.ErrCommitUnknown     // the log could not be repaired after a failed write; the commit may or may not have happened
	ErrBroken            = txn.ErrBroken            // the handle refuses work after ErrCommitUnknown; open a new one
	ErrLockTimeout       = lockfs.ErrLockTimeout    // the commit lock was not free in time (also matches context.DeadlineExceeded)
	ErrNotFound          = txn.ErrNotFound          // no such page at the snapshot
	ErrNamespaceNotFound = txn.ErrNamespaceNotFound // no such namespace at the snapshot
	ErrNamespaceExists   = txn.ErrNamespaceExists   // create or rename onto an existing namespace
	ErrInvalidName       = pages.ErrInvalidName     // a namespace or page ID that is not allowed
	ErrNotRead           = txn.ErrNotRead           // update or delete of a page the transaction did not read
	ErrInvalidKey        = txn.ErrInvalidKey        // AppendPage or ReadPageKey with an empty key or one that is not valid UTF-8
	ErrTxClosed          = txn.ErrTxClosed          // the transaction already ended
	ErrReadOnly          = txn.ErrReadOnly          // a write in a read-only transaction
	ErrCorrupt           = pages.ErrCorrupt         // a damaged file; nothing was changed
	ErrOptionsMismatch   = txn.ErrOptionsMismatch   // Options contradict the existing store
	ErrVersion           = txn.ErrVersion           // the store is of another layout version; nothing was changed
	ErrClosed            = txn.ErrClosed            // the DB was closed
	ErrUnsupported       = pages.ErrUnsupported     // a value the store's format cannot represent
	ErrReadOnlyDB        = txn.ErrReadOnlyDB        // a write through a handle opened with Options.ReadOnly
	ErrSnapshotTooOld    = txn.ErrSnapshotTooOld    // a read-only handle's old snapshot lost a version to cleanup; begin again
	ErrUnexpectedFile    = txn.ErrUnexpectedFile    // Check: a file or folder outside the layout
	ErrLeftover          = txn.ErrLeftover          // Check: a file a dead process left behind
)

// ConflictError details an ErrConflict: namespace, page, snapshot and the newer TSN (and, when a
// keyed append or read lost to a keyed append under the same key, that key).
type ConflictError = txn.ConflictError

// CorruptError details an ErrCorrupt: the file and offset.
type CorruptError = pages.CorruptError
