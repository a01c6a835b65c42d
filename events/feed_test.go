package events_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/events"
	"github.com/txtdb/txtdb/wal"
)

var testNS = []string{"a", "a.b", "b", "c", "d.e"}

// writeMix commits n transactions per handle from concurrent goroutines over testNS (inserts,
// updates, deletes, a few namespace operations), plus rolled-back and conflicting ones that must
// produce no event. It returns what the writers were acknowledged.
func writeMix(t *testing.T, dbs []*txtdb.DB, n int, seed uint64) *recorder {
	t.Helper()
	rec := &recorder{}
	var wg sync.WaitGroup
	errs := make(chan error, len(dbs))
	for w, db := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- writer(db, n, rand.New(rand.NewPCG(seed, uint64(w))), rec)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	return rec
}

// writer is one writing goroutine of writeMix.
func writer(db *txtdb.DB, n int, rng *rand.Rand, rec *recorder) error {
	ctx := context.Background()
	for i := 0; i < n; i++ {
		ns := testNS[rng.IntN(len(testNS))]
		tx, err := db.Begin(ctx, true)
		if err != nil {
			return err
		}
		switch k := rng.IntN(10); {
		case k < 5:
			_, err = tx.Insert(ns, map[string]int{"i": i})
		case k < 8: // update or delete an existing page, if any
			var pgs map[string][]txtdb.Object
			if pgs, err = tx.Match(ns, "*"); err == nil {
				for id := range pgs {
					if k == 7 {
						err = tx.DeletePage(ns, id)
					} else {
						err = tx.UpdatePage(ns, id, map[string]int{"u": i})
					}
					break
				}
			}
		case k == 8: // rolled back: no event
			_, _ = tx.Insert(ns, map[string]int{"rolled": i})
			_ = tx.Rollback()
			continue
		default: // namespace churn under a private name
			name := fmt.Sprintf("%s.tmp%d", ns, rng.IntN(1<<30))
			if err = tx.CreateNamespace(name); err == nil {
				err = tx.RenameNamespace(name, name+"x")
			}
		}
		if err != nil {
			_ = tx.Rollback()
			return err
		}
		err = tx.Commit()
		if errors.Is(err, txtdb.ErrConflict) {
			continue // conflicting: no event
		}
		if err != nil {
			return err
		}
		if tsn := tx.CommitTSN(); tsn != 0 {
			rec.add(tsn, ns)
		}
	}
	return nil
}

func TestExactlyOnceInOrder(t *testing.T) {
	dir := t.TempDir()
	dbs := []*txtdb.DB{mustOpen(t, dir, nil), mustOpen(t, dir, nil), mustOpen(t, dir, nil)}
	createNS(t, dbs[0], testNS...)
	fd := mustFeed(t, dir, events.TestHooks{})
	filters := [][]string{nil, {"a"}, {"b", "d"}, {"a.b"}, {"c"}}
	var subs []*events.Subscription
	for _, f := range filters {
		sub, err := fd.Subscribe(context.Background(), events.SubscribeOptions{Namespaces: f})
		require.NoError(t, err)
		defer sub.Close()
		subs = append(subs, sub)
	}
	n := 150
	if testing.Short() {
		n = 60
	}
	rec := writeMix(t, dbs, n, 7)
	// A last commit every filter sees ends each wait.
	tx, err := dbs[0].Begin(context.Background(), true)
	require.NoError(t, err)
	for _, ns := range testNS {
		_, err = tx.Insert(ns, 1)
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit())
	rec.add(tx.CommitTSN(), testNS...)
	last := tx.CommitTSN()
	for i, sub := range subs {
		got := collect(t, sub, last)
		want := expected(rec.acks, filters[i])
		require.NoError(t, checkSeq(got, want), "filter %v", filters[i])
	}
}

func TestCheckerFails(t *testing.T) {
	want := []txtdb.TSN{3, 4, 7, 9}
	require.NoError(t, checkSeq([]txtdb.TSN{3, 4, 7, 9}, want))
	require.ErrorContains(t, checkSeq([]txtdb.TSN{3, 4, 4, 7, 9}, want), "duplicate")
	require.ErrorContains(t, checkSeq([]txtdb.TSN{3, 7, 9}, want), "gap")
	require.ErrorContains(t, checkSeq([]txtdb.TSN{3, 4, 7}, want), "gap")
	require.ErrorContains(t, checkSeq([]txtdb.TSN{3, 4, 7, 9, 10}, want), "stray")
	require.ErrorContains(t, checkSeq([]txtdb.TSN{3, 7, 4, 9}, want), "order")
}

func TestChangesAndValues(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir, &txtdb.Options{OneObjectPerPage: false})
	createNS(t, db, "app")
	fd := mustFeed(t, dir, events.TestHooks{})
	sub, err := fd.Subscribe(context.Background(), events.SubscribeOptions{Namespaces: []string{"app"}, Values: true})
	require.NoError(t, err)
	defer sub.Close()
	ctx := context.Background()
	var id string
	began := time.Now()
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) (err error) { id, err = tx.Insert("app", map[string]int{"x": 1}); return }))
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { _, err := tx.Insert("app", map[string]int{"x": 2}); return err }))
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error {
		if _, err := tx.ReadPage("app", id); err != nil {
			return err
		}
		return tx.UpdatePage("app", id, map[string]int{"y": 3})
	}))
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error {
		if _, err := tx.ReadPage("app", id); err != nil {
			return err
		}
		return tx.DeletePage("app", id)
	}))
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return tx.CreateNamespace("other") }))
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return tx.RenameNamespace("other", "app.moved") }))
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return tx.DeleteNamespace("app.moved") }))
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error { return tx.CreateNamespace("app.x") }))
	var got []events.Change
	deadline := time.After(longStop)
	for len(got) < 7 {
		select {
		case ev := <-sub.Events():
			require.Len(t, ev.Changes, 1, "event %d", ev.TSN)
			require.Equal(t, db.ID(), ev.Process, "event %d names the committing handle", ev.TSN)
			require.NotEmpty(t, ev.Process)
			require.False(t, ev.Time.Before(began), "event %d: commit time %v before the test began", ev.TSN, ev.Time)
			require.False(t, ev.Time.After(time.Now()), "event %d: commit time %v after delivery", ev.TSN, ev.Time)
			got = append(got, ev.Changes[0])
		case <-deadline:
			t.Fatalf("got %d changes: %+v", len(got), got)
		}
	}
	kinds := []events.Kind{events.Insert, events.Append, events.Update, events.Delete,
		events.NamespaceRename, events.NamespaceDelete, events.NamespaceCreate}
	for i, k := range kinds {
		require.Equal(t, k, got[i].Kind, "change %d: %+v", i, got[i])
	}
	require.Equal(t, id, got[0].Page)
	require.Equal(t, `{"x":1}`, got[0].Objects[0].Text())
	require.Len(t, got[1].Objects, 1, "an append carries only the new objects")
	require.Equal(t, `{"x":2}`, got[1].Objects[0].Text())
	require.Equal(t, `{"y":3}`, got[2].Objects[0].Text())
	require.Equal(t, "other", got[4].Namespace, "the create of other matched nothing; its rename matches on the new name")
	require.Equal(t, "app.moved", got[4].NewName)
	require.Equal(t, "app.x", got[6].Namespace)
}

func TestResume(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir, nil)
	createNS(t, db, "a", "b")
	fd := mustFeed(t, dir, events.TestHooks{})
	first := insert(t, db, "a", 0)
	var want []txtdb.TSN
	for i := 0; i < 40; i++ {
		want = append(want, insert(t, db, []string{"a", "b"}[i%2], i))
	}
	sub, err := fd.Subscribe(context.Background(), events.SubscribeOptions{From: first})
	require.NoError(t, err)
	require.Equal(t, first, sub.Start())
	part := collect(t, sub, want[14])
	sub.Close()
	require.NoError(t, sub.Err())
	require.NoError(t, checkSeq(part, want[:15]))
	// Resume after the last one seen, with the lineage, while more commits land.
	for i := 0; i < 10; i++ {
		want = append(want, insert(t, db, "a", i))
	}
	sub2, err := fd.Subscribe(context.Background(), events.SubscribeOptions{From: part[len(part)-1], Lineage: sub.Lineage()})
	require.NoError(t, err)
	defer sub2.Close()
	rest := collect(t, sub2, want[len(want)-1])
	require.NoError(t, checkSeq(append(part, rest...), want))

	_, err = fd.Subscribe(context.Background(), events.SubscribeOptions{From: want[len(want)-1] + 100})
	require.ErrorIs(t, err, events.ErrLineage)
}

func TestCompacted(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir, &txtdb.Options{SegmentSize: 512, LogRetention: -1})
	createNS(t, db, "a")
	for i := 0; i < 60; i++ {
		insert(t, db, "a", i)
	}
	require.NoError(t, db.Checkpoint(context.Background()))
	fd := mustFeed(t, dir, events.TestHooks{})
	_, err := fd.Subscribe(context.Background(), events.SubscribeOptions{From: 1})
	require.ErrorIs(t, err, events.ErrCompacted)
	segs, err := wal.ListSegments(filepath.Join(dir, ".txtdb", "log"))
	require.NoError(t, err)
	require.Greater(t, segs[0], txtdb.TSN(2), "the checkpoint trimmed the log")
	// From the first retained commit on, resuming works.
	sub, err := fd.Subscribe(context.Background(), events.SubscribeOptions{From: segs[0] - 1})
	require.NoError(t, err)
	defer sub.Close()
	last := insert(t, db, "a", 99)
	got := collect(t, sub, last)
	require.Equal(t, segs[0], got[0])
}

// A subscriber that falls behind while cleanup trims the segments it has yet to read ends with
// ErrCompacted instead of skipping them.
func TestCompactedLive(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir, &txtdb.Options{SegmentSize: 512, LogRetention: -1})
	createNS(t, db, "a")
	fd := mustFeed(t, dir, events.TestHooks{})
	sub, err := fd.Subscribe(context.Background(), events.SubscribeOptions{})
	require.NoError(t, err)
	defer sub.Close()
	for i := 0; i < 200; i++ { // far more than the channel holds: the reader waits in segment 1
		insert(t, db, "a", i)
	}
	require.NoError(t, db.Checkpoint(context.Background()))
	n := 0
	for range sub.Events() {
		n++
	}
	require.ErrorIs(t, sub.Err(), events.ErrCompacted, "after %d events", n)
}

func TestLineage(t *testing.T) {
	dir := t.TempDir()
	db, err := txtdb.Open(dir, nil)
	require.NoError(t, err)
	createNS(t, db, "a")
	insert(t, db, "a", 1)
	require.NoError(t, db.Close())
	fd := mustFeed(t, dir, events.TestHooks{})
	_, err = fd.Subscribe(context.Background(), events.SubscribeOptions{From: 1, Lineage: "another-history"})
	require.ErrorIs(t, err, events.ErrLineage)
	sub, err := fd.Subscribe(context.Background(), events.SubscribeOptions{})
	require.NoError(t, err)
	defer sub.Close()
	// Stage what recovery does after a NoSync power cut: state names a new lineage.
	sf, err := wal.OpenStateFile(filepath.Join(dir, ".txtdb", "state"), 0o644, false)
	require.NoError(t, err)
	st, err := sf.Read()
	require.NoError(t, err)
	require.Equal(t, st.Lineage, sub.Lineage())
	st.Seq++
	st.Lineage = "rewound"
	require.NoError(t, sf.Write(st, true))
	require.NoError(t, sf.Close())
	select {
	case _, ok := <-sub.Events():
		require.False(t, ok)
	case <-time.After(longStop):
		t.Fatal("feed did not end")
	}
	require.ErrorIs(t, sub.Err(), events.ErrLineage)
}

// A subscriber that does not read blocks neither commits nor other subscribers; it catches up
// from the log afterwards.
func TestSlowSubscriber(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir, nil)
	createNS(t, db, "a")
	fd := mustFeed(t, dir, events.TestHooks{})
	slow, err := fd.Subscribe(context.Background(), events.SubscribeOptions{})
	require.NoError(t, err)
	defer slow.Close()
	fast, err := fd.Subscribe(context.Background(), events.SubscribeOptions{})
	require.NoError(t, err)
	defer fast.Close()
	var want, fastGot []txtdb.TSN
	for i := 0; i < 10*events.Buffer; i++ {
		want = append(want, insert(t, db, "a", i))
		if i%events.Buffer == events.Buffer-1 { // the fast one keeps up as it goes
			fastGot = append(fastGot, collect(t, fast, want[len(want)-1])...)
		}
	}
	require.NoError(t, checkSeq(fastGot, want))
	require.NoError(t, checkSeq(collect(t, slow, want[len(want)-1]), want))
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir, nil)
	createNS(t, db, "a")
	before := runtime.NumGoroutine()
	fd, err := events.Open(dir, txtdb.JSON)
	require.NoError(t, err)
	var subs []*events.Subscription
	for i := 0; i < 5; i++ {
		sub, err := fd.Subscribe(context.Background(), events.SubscribeOptions{})
		require.NoError(t, err)
		subs = append(subs, sub)
	}
	last := insert(t, db, "a", 1)
	collect(t, subs[0], last)
	subs[0].Close()
	require.NoError(t, subs[0].Err())
	ctx, cancel := context.WithCancel(context.Background())
	sub, err := fd.Subscribe(ctx, events.SubscribeOptions{})
	require.NoError(t, err)
	cancel()
	<-sub.Done()
	require.ErrorIs(t, sub.Err(), context.Canceled)
	require.NoError(t, fd.Close())
	for _, s := range subs[1:] {
		<-s.Done()
		require.ErrorIs(t, s.Err(), events.ErrClosed)
	}
	_, err = fd.Subscribe(context.Background(), events.SubscribeOptions{})
	require.ErrorIs(t, err, events.ErrClosed)
	// Goroutines that were told to stop may take a moment to be gone (the handle's own, and
	// the watcher's reader, exit after Close returns): wait for the count, under a deadline.
	// (A loop, not require.Eventually: that runs its condition on a goroutine of its own.)
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), before, "goroutines left after Close")
}

// An idle feed reads nothing: no state read, no log read, while nobody commits.
func TestIdleFeedReadsNothing(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir, nil)
	createNS(t, db, "a")
	var reads atomic.Int64
	fd := mustFeed(t, dir, events.TestHooks{Read: func(string) { reads.Add(1) }})
	sub, err := fd.Subscribe(context.Background(), events.SubscribeOptions{})
	require.NoError(t, err)
	defer sub.Close()
	collect(t, sub, insert(t, db, "a", 1))
	require.NoError(t, db.Checkpoint(context.Background())) // nothing left for the housekeeper
	collect(t, sub, insert(t, db, "a", 2))
	// A wake-up the last commit's events may still owe is spent on an empty check: wait for the
	// count to be still over the idle period, which must then show no read at all.
	idle := 2 * time.Second
	if testing.Short() {
		idle = 500 * time.Millisecond
	}
	settle := reads.Load()
	for {
		select {
		case ev := <-sub.Events():
			t.Fatalf("idle feed delivered %d", ev.TSN)
		case <-time.After(idle):
		}
		n := reads.Load()
		if n == settle {
			break
		}
		settle = n // one more window; a poll would never settle
		require.Less(t, n, int64(100), "the feed keeps reading while idle")
	}
	require.True(t, fd.Status().Watching)
	require.False(t, fd.Status().Polling)
}

// Lost wake-ups: a hook drops real fsnotify events and another injects the overflow error the
// kernel reports when it loses them; the exact sequence still arrives.
func TestLostWakeups(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir, nil)
	createNS(t, db, "a")
	var dropAll atomic.Bool
	rng := rand.New(rand.NewPCG(1, 2))
	var mu sync.Mutex
	inject := make(chan error)
	fd := mustFeed(t, dir, events.TestHooks{Inject: inject, Poll: time.Hour, Drop: func(fsnotify.Event) bool {
		if dropAll.Load() {
			return true
		}
		mu.Lock()
		defer mu.Unlock()
		return rng.IntN(3) != 0 // two of three events lost
	}})
	sub, err := fd.Subscribe(context.Background(), events.SubscribeOptions{})
	require.NoError(t, err)
	defer sub.Close()
	// Every event lost, then the overflow report: the re-check finds everything.
	dropAll.Store(true)
	var want []txtdb.TSN
	for i := 0; i < 30; i++ {
		want = append(want, insert(t, db, "a", i))
	}
	inject <- fsnotify.ErrEventOverflow
	got := collect(t, sub, want[len(want)-1])
	require.Equal(t, int64(1), fd.Status().Overflows)
	require.True(t, fd.Status().Polling)
	// Two events in three lost: any later one wakes the reader, which reads up to state.
	dropAll.Store(false)
	for i := 0; i < 60; i++ {
		want = append(want, insert(t, db, "a", i))
	}
	inject <- fsnotify.ErrEventOverflow // the last events may be lost too: the kernel says so
	got = append(got, collect(t, sub, want[len(want)-1])...)
	require.NoError(t, checkSeq(got, want))
}

// Without a watcher the fallback poll keeps the feed exact, and the reason is visible.
func TestNoWatcherPolls(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir, nil)
	createNS(t, db, "a")
	fd := mustFeed(t, dir, events.TestHooks{NoWatcher: true, Poll: 5 * time.Millisecond})
	st := fd.Status()
	require.False(t, st.Watching)
	require.True(t, st.Polling)
	require.Contains(t, st.Reason, "watcher")
	sub, err := fd.Subscribe(context.Background(), events.SubscribeOptions{Namespaces: []string{"a"}})
	require.NoError(t, err)
	defer sub.Close()
	var want []txtdb.TSN
	for i := 0; i < 50; i++ {
		want = append(want, insert(t, db, "a", i))
	}
	require.NoError(t, checkSeq(collect(t, sub, want[len(want)-1]), want))
}

// A keyed append is an Append with the new objects; one the committer wrote whole (the page's run
// of appends was full) is an Update with the whole page.
func TestKeyedChanges(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, dir, nil)
	createNS(t, db, "leaf")
	fd := mustFeed(t, dir, events.TestHooks{})
	sub, err := fd.Subscribe(context.Background(), events.SubscribeOptions{Namespaces: []string{"leaf"}, Values: true})
	require.NoError(t, err)
	defer sub.Close()
	ctx := context.Background()
	var id string
	require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) (err error) { id, err = tx.NewPage("leaf", map[string]int{"k": 0}); return }))
	const n = 65 // the 65th append in a row is written whole
	for i := 1; i <= n; i++ {
		require.NoError(t, db.Update(ctx, func(tx *txtdb.Tx) error {
			return tx.AppendPage("leaf", id, fmt.Sprint(i), map[string]int{"k": i})
		}))
	}
	var got []events.Change
	deadline := time.After(longStop)
	for len(got) < n+1 {
		select {
		case ev := <-sub.Events():
			got = append(got, ev.Changes...)
		case <-deadline:
			t.Fatalf("got %d changes: %+v", len(got), got)
		}
	}
	require.Equal(t, events.Insert, got[0].Kind, "NewPage")
	for i := 1; i < n; i++ {
		require.Equal(t, events.Append, got[i].Kind, "keyed append %d", i)
		require.Len(t, got[i].Objects, 1)
		require.Equal(t, fmt.Sprintf(`{"k":%d}`, i), got[i].Objects[0].Text())
	}
	require.Equal(t, events.Update, got[n].Kind, "the keyed append written whole")
	require.Len(t, got[n].Objects, n+1, "the whole page")
	require.Equal(t, fmt.Sprintf(`{"k":%d}`, n), got[n].Objects[n].Text())
}
