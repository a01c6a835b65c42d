// Package events is txtdb's change feed: every process can subscribe to the commits of every
// process on the same data directory, its own included, without polling.
//
// The commit log (package wal) is the truth; fsnotify only wakes readers. A Feed owns one
// fsnotify watcher per handle, on the directories .txtdb/ (state) and .txtdb/log/ (new
// segments), shared by all its subscriptions. Each Subscription has one goroutine that, on a
// wake-up, reads state, then reads the log from its own position up to state's position, never
// past it, and sends one Event per matching commit.
//
// # Guarantees
//
//   - Every commit record that matches the filter is delivered exactly once, in TSN order, from any
//     process; reservation records, rolled-back and failed transactions never appear.
//   - A subscriber never sees a TSN that a new Begin could not yet see (state names it first), so
//     once it has seen TSN n, a Begin in its process sees at least n (same lineage).
//   - Lost wake-ups lose nothing: a wake-up means "go look", and a look reads up to state, so
//     coalesced events are harmless. An ErrEventOverflow report makes every subscription re-check at
//     once and the feed poll (PollInterval) for a minute; a watcher that cannot start leaves the
//     feed polling for good. Status says which, and why.
//   - Resume: From n delivers everything after n. If the retained log no longer reaches back to
//     n+1, Subscribe fails with ErrCompacted; a live subscriber that falls so far behind that the
//     segments it still has to read are trimmed ends with ErrCompacted, never with a silent gap.
//     (A subscriber holds its current segment open, so a trim of that one segment alone costs it
//     nothing.)
//   - Lineage: a Lineage in SubscribeOptions that is not the store's is ErrLineage; a live
//     subscription whose store changes lineage (NoSync power cut, rebuilt state) ends with it.
//   - A slow subscriber blocks nobody: its own goroutine waits on its channel (Buffer events); the
//     rest stays in the log. Memory per subscription is bounded by one read chunk.
//   - An idle feed reads nothing and wakes nobody: no timer runs unless the feed is degraded.
//   - Close (of a subscription or of the feed) stops its goroutines and waits for them.
//
// # Caveats
//
//   - Event.Process (the committing handle's id) and Event.Time (its wall clock when it gave the
//     commit its TSN) come from the commit record; they are informational and do not order events
//     (a wall clock can step; TSNs order them).
//   - Insert is a whole-page write of a page the transaction created (Insert, NewPage); Update one
//     of an existing page; Append an insert into an existing page or a keyed append (AppendPage),
//     with only the new objects. A keyed append that the committer wrote whole, because the page's
//     run of appends was full, is an Update with the whole page. Events do not carry keys.
//   - A subscriber that must not miss anything records Start() and Lineage() before it processes
//     events and resumes from the last TSN it finished.
//   - fsnotify (inotify) does not work on NFS; there the watcher may start but never fire. A feed on
//     such a file system needs the poll (not selected automatically).
package events
