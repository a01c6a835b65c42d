package events

import (
	"errors"

	"github.com/txtdb/txtdb/txn"
)

// Errors that end a subscription (Subscription.Err) or refuse one (Feed.Subscribe). All are
// matched with errors.Is; the root package re-exports them.
var (
	// ErrCompacted: the retained log no longer holds the commits the subscription needs next
	// (resuming from before the oldest retained segment, or a subscriber that fell further behind
	// than Options.LogRetention while cleanup trimmed the log). Resume from a newer TSN, after
	// rebuilding whatever the subscriber derives from the store.
	ErrCompacted = errors.New("txtdb: events: log compacted past the requested TSN")
	// ErrLineage: the store's history id is not the one the subscriber named (at Subscribe), or
	// it changed under a live subscription (a NoSync store that lost its tail in a power cut
	// continues under a new lineage). TSNs of two lineages are not comparable.
	ErrLineage = errors.New("txtdb: events: store lineage changed")
	// ErrClosed: the feed (or the DB that owns it) was closed. The engine's value (the only import
	// of txn), so that one errors.Is(err, txtdb.ErrClosed) covers a closed DB and its feed.
	ErrClosed = txn.ErrClosed
)
