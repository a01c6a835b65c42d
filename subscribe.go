package txtdb

import (
	"context"

	"github.com/txtdb/txtdb/events"
)

// Change feed types (package events).
type (
	// SubscribeOptions selects what a subscription delivers: Namespaces (a name matches itself and
	// its children; empty = all), From (0 = commits after now, else resume after it), Lineage (the
	// lineage From belongs to) and Values (carry the objects each change wrote).
	SubscribeOptions = events.SubscribeOptions
	// Subscription is one subscriber's feed: Start, Lineage, Events, Err, Close.
	Subscription = events.Subscription
	// Event is one committed transaction: its TSN and the changes that matched.
	Event = events.Event
	// Change is one change of an Event.
	Change = events.Change
	// ChangeKind is a Change's kind.
	ChangeKind = events.Kind
	// FeedStatus says how a handle's feed is woken (fsnotify, or the fallback poll and why).
	FeedStatus = events.Status
)

// Change kinds.
const (
	ChangeInsert          = events.Insert          // a new page, written whole
	ChangeUpdate          = events.Update          // an existing page replaced, written whole
	ChangeAppend          = events.Append          // objects appended to an existing page
	ChangeDelete          = events.Delete          // a page deleted
	ChangeNamespaceCreate = events.NamespaceCreate // a namespace created
	ChangeNamespaceDelete = events.NamespaceDelete // a namespace deleted
	ChangeNamespaceRename = events.NamespaceRename // a namespace renamed (Namespace -> NewName)
)

// Feed errors.
var (
	ErrCompacted = events.ErrCompacted // the retained log no longer reaches back to the TSN asked for
	ErrLineage   = events.ErrLineage   // the store's lineage is not (or no longer) the subscriber's
)

// Subscribe starts a subscription to the commits of every process on this store, this one's
// included: each matching commit once, in TSN order, never one a new Begin could not see yet.
// ctx bounds the subscription's life. The handle's feed (one fsnotify watcher) starts with the
// first subscription and stops in Close, which ends every subscription with ErrClosed.
// Fails with ErrLineage, ErrCompacted (see SubscribeOptions), ErrInvalidName, ErrClosed.
// Safe for concurrent use, also on a read-only handle.
func (db *DB) Subscribe(ctx context.Context, opts SubscribeOptions) (*Subscription, error) {
	fd, err := db.openFeed()
	if err != nil {
		return nil, err
	}
	return fd.Subscribe(ctx, opts)
}

// FeedStatus reports how the handle's feed is woken; the zero value before the first Subscribe.
func (db *DB) FeedStatus() FeedStatus {
	db.feedMu.Lock()
	fd := db.feed
	db.feedMu.Unlock()
	if fd == nil {
		return FeedStatus{}
	}
	return fd.Status()
}

func (db *DB) openFeed() (*events.Feed, error) {
	db.feedMu.Lock()
	defer db.feedMu.Unlock()
	if db.feedClosed {
		return nil, ErrClosed
	}
	if db.feed == nil {
		fd, err := events.Open(db.Dir(), db.Format())
		if err != nil {
			return nil, err
		}
		db.feed = fd
	}
	return db.feed, nil
}

// closeFeed stops the feed (Close).
func (db *DB) closeFeed() error {
	db.feedMu.Lock()
	defer db.feedMu.Unlock()
	db.feedClosed = true
	if db.feed == nil {
		return nil
	}
	return db.feed.Close()
}
