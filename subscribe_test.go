package txtdb

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Through the root API: a subscriber on one handle sees a commit of another (and of its own), in
// TSN order; DB.Close ends the subscription with ErrClosed and leaves no goroutine behind.
func TestSubscribe(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, dir, nil)
	before := runtime.NumGoroutine()
	r, err := Open(dir, &Options{ReadOnly: true})
	require.NoError(t, err)
	ctx := context.Background()
	sub, err := r.Subscribe(ctx, SubscribeOptions{Namespaces: []string{"jobs"}, Values: true})
	require.NoError(t, err)
	require.True(t, r.FeedStatus().Watching)
	var want []TSN
	for i := 0; i < 5; i++ {
		tx := mustBegin(t, w, true)
		if i == 0 {
			require.NoError(t, tx.CreateNamespace("jobs"))
		}
		_, err := tx.Insert("jobs", item{N: i})
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
		want = append(want, tx.CommitTSN())
	}
	var got []TSN
	for len(got) < len(want) {
		select {
		case ev := <-sub.Events():
			got = append(got, ev.TSN)
			c := ev.Changes[len(ev.Changes)-1]
			require.Equal(t, "jobs", c.Namespace)
			require.NotEmpty(t, c.Objects)
		case <-time.After(time.Minute):
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	require.Equal(t, want, got)
	require.NoError(t, r.Close())
	<-sub.Done()
	require.ErrorIs(t, sub.Err(), ErrClosed)
	_, err = r.Subscribe(ctx, SubscribeOptions{})
	require.ErrorIs(t, err, ErrClosed)
	// Stopped goroutines may take a moment to be gone: wait for the count, under a deadline.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
