package txtdb

import (
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/txn"
)

// Object is one stored object, kept as its exact text. Decode it into the caller's type with
// Decode; hand it back to UpdatePage to store it verbatim.
type Object = pages.Object

// Tx is a transaction: it reads exactly its snapshot plus its own writes. Use a Tx from one
// goroutine at a time.
type Tx struct {
	t *txn.Tx
}

// Snapshot returns the TSN this transaction reads at.
func (tx *Tx) Snapshot() TSN { return tx.t.Snapshot() }

// CreateNamespace creates ns ("a.b.c" needs no "a" or "a.b" first). ErrNamespaceExists if it
// exists, ErrInvalidName for a bad name.
func (tx *Tx) CreateNamespace(ns string) error { return tx.t.CreateNamespace(ns) }

// DeleteNamespace deletes ns and the namespaces below it. ErrNamespaceNotFound if it is absent.
func (tx *Tx) DeleteNamespace(ns string) error { return tx.t.DeleteNamespace(ns) }

// RenameNamespace renames oldNS to newNS, carrying the namespaces below it along.
// ErrNamespaceExists if a target name is taken.
func (tx *Tx) RenameNamespace(oldNS, newNS string) error { return tx.t.RenameNamespace(oldNS, newNS) }

// Namespaces lists the namespaces this transaction sees, sorted.
func (tx *Tx) Namespaces() ([]string, error) { return tx.t.Namespaces() }

// Insert adds obj (any value the store's format can encode, or an Object) to ns and returns its
// page ID. Concurrent inserts into one namespace, from any process, do not conflict.
func (tx *Tx) Insert(ns string, obj any) (string, error) { return tx.t.Insert(ns, obj) }

// ReadPage returns a page's objects; ErrNotFound if it does not exist at the snapshot.
func (tx *Tx) ReadPage(ns, pageID string) ([]Object, error) { return tx.t.ReadPage(ns, pageID) }

// NewPage creates a page of its own in ns holding objs (none makes an empty page) and returns
// its ID. The number is fresh: no other transaction, in any process, can take it, and Insert
// never fills the page. The page size is not applied. In a namespace this transaction created,
// pages are numbered from "page000001" in the order the transaction starts them (each NewPage,
// and each Insert that starts a page, takes the next number), so the first page of a namespace
// created and filled by NewPage alone is "page000001".
func (tx *Tx) NewPage(ns string, objs ...any) (string, error) { return tx.t.NewPage(ns, objs...) }

// AppendPage adds objs (possibly none) under key at the end of a page, without depending on its
// contents: they land at the end of the page as it is when the transaction commits. It is a keyed change: under
// either isolation level the commit fails with ErrConflict only if, after the snapshot, the page
// was deleted, or changed other than by a keyed append (UpdatePage, DeletePage, Insert), or got a
// keyed append under the same key (ConflictError.Key names it). Keyed appends under different keys
// to one page, from any process, never conflict; all of them land, in commit order. Reads of the
// page in this transaction show the snapshot's contents followed by its own appends.
//
// The page must exist at the snapshot (ErrNotFound) or have been written by this transaction:
// then objs are added to that write (after UpdatePage or NewPage, the whole page is written, and
// the change is no longer keyed). ErrInvalidKey if key is empty or not valid UTF-8.
func (tx *Tx) AppendPage(ns, pageID, key string, objs ...any) error {
	return tx.t.AppendPage(ns, pageID, key, objs...)
}

// ReadPageKey returns a page's objects exactly like ReadPage (ErrNotFound if it does not exist at
// the snapshot, which is recorded too), but under Serializable the transaction depends only on what
// a change under key could alter: its commit fails with ErrConflict only if, after the snapshot,
// the page was created or deleted, changed other than by a keyed append, or got a keyed append
// under the same key. Rows other keys' appends add meanwhile do not count: read with ReadPage
// what the transaction depends on as a whole. ReadPage of the same page makes the whole page
// count; for UpdatePage and DeletePage the page counts as read. Snapshot isolation validates no
// reads. ErrInvalidKey if key is empty or not valid UTF-8.
func (tx *Tx) ReadPageKey(ns, pageID, key string) ([]Object, error) {
	return tx.t.ReadPageKey(ns, pageID, key)
}

// UpdatePage replaces a page's objects (whole-page replacement). The page must have been read
// in this transaction (ErrNotRead).
func (tx *Tx) UpdatePage(ns, pageID string, objs ...any) error {
	return tx.t.UpdatePage(ns, pageID, objs...)
}

// DeletePage deletes a page. The page must have been read in this transaction (ErrNotRead).
func (tx *Tx) DeletePage(ns, pageID string) error { return tx.t.DeletePage(ns, pageID) }

// Match returns the pages of ns whose IDs match pattern ('*' any run, '?' one character).
// Under Serializable, a concurrent insert or delete in ns makes this transaction's commit fail.
func (tx *Tx) Match(ns, pattern string) (map[string][]Object, error) { return tx.t.Match(ns, pattern) }

// Commit makes the changes durable and visible to every process. It fails with ErrConflict
// (nothing visible) if something the transaction depended on changed; ErrCommitUnknown only when
// the log could not be repaired after a failed write. The transaction is closed afterwards.
func (tx *Tx) Commit() error { return tx.t.Commit() }

// CommitTSN returns the TSN this transaction committed as: 0 before a successful Commit, and for
// a transaction that changed nothing.
func (tx *Tx) CommitTSN() TSN { return tx.t.CommitTSN() }

// Rollback discards the transaction. ErrTxClosed if it already ended.
func (tx *Tx) Rollback() error { return tx.t.Rollback() }
