package events_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/events"
)

// longStop bounds every wait in these tests; it is a failure deadline, never a timing assertion.
const longStop = 60 * time.Second

func TestMain(m *testing.M) {
	if role := os.Getenv("EVENTS_ROLE"); role != "" {
		os.Exit(runRole(role))
	}
	os.Exit(m.Run())
}

// mustOpen opens a store handle closed at the end of the test.
func mustOpen(tb testing.TB, dir string, opts *txtdb.Options) *txtdb.DB {
	tb.Helper()
	db, err := txtdb.Open(dir, opts)
	require.NoError(tb, err)
	tb.Cleanup(func() { require.NoError(tb, db.Close()) })
	return db
}

// mustFeed opens a feed (with hooks) closed at the end of the test.
func mustFeed(tb testing.TB, dir string, h events.TestHooks) *events.Feed {
	tb.Helper()
	fd, err := events.OpenWithHooks(dir, txtdb.JSON, h)
	require.NoError(tb, err)
	tb.Cleanup(func() { require.NoError(tb, fd.Close()) })
	return fd
}

// commit is what a writer was acknowledged: the TSN and the namespaces it changed.
type commit struct {
	TSN txtdb.TSN
	NS  []string
}

// expected filters the acknowledged commits for a namespace filter, in TSN order.
func expected(acks []commit, filter []string) []txtdb.TSN {
	acks = slices.Clone(acks)
	slices.SortFunc(acks, func(a, b commit) int { return int(a.TSN) - int(b.TSN) })
	var out []txtdb.TSN
	for _, c := range acks {
		if matches(c.NS, filter) {
			out = append(out, c.TSN)
		}
	}
	return out
}

func matches(nss, filter []string) bool {
	if len(filter) == 0 {
		return true
	}
	for _, ns := range nss {
		for _, f := range filter {
			if ns == f || strings.HasPrefix(ns, f+".") {
				return true
			}
		}
	}
	return false
}

// checkSeq compares a delivered TSN sequence with the expected one and names the first
// duplicate, gap, reordering or stray TSN.
func checkSeq(got, want []txtdb.TSN) error {
	seen := map[txtdb.TSN]bool{}
	for i, t := range got {
		if seen[t] {
			return fmt.Errorf("duplicate TSN %d at %d", t, i)
		}
		seen[t] = true
		if i > 0 && t <= got[i-1] {
			return fmt.Errorf("TSN %d after %d at %d: out of order", t, got[i-1], i)
		}
	}
	for i, t := range want {
		if i >= len(got) {
			return fmt.Errorf("gap: TSN %d (and %d more) never delivered", t, len(want)-i-1)
		}
		if got[i] != t {
			if seen[t] {
				return fmt.Errorf("at %d: got %d, want %d", i, got[i], t)
			}
			return fmt.Errorf("gap: TSN %d missing (got %d at %d)", t, got[i], i)
		}
	}
	if len(got) > len(want) {
		return fmt.Errorf("stray TSN %d after the expected sequence", got[len(want)])
	}
	return nil
}

// collect reads sub's events until it has seen last (or the deadline), returning the TSNs.
func collect(tb testing.TB, sub *events.Subscription, last txtdb.TSN) []txtdb.TSN {
	tb.Helper()
	var got []txtdb.TSN
	if last <= sub.Start() {
		return got
	}
	deadline := time.After(longStop)
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				tb.Fatalf("feed ended after %d events: %v", len(got), sub.Err())
			}
			got = append(got, ev.TSN)
			if ev.TSN >= last {
				return got
			}
		case <-deadline:
			tb.Fatalf("no TSN %d within %v; got %d events, last %v", last, longStop, len(got), got[max(0, len(got)-3):])
		}
	}
}

// recorder keeps the acknowledged commits of concurrent writers.
type recorder struct {
	mu   sync.Mutex
	acks []commit
}

func (r *recorder) add(t txtdb.TSN, ns ...string) {
	r.mu.Lock()
	r.acks = append(r.acks, commit{t, ns})
	r.mu.Unlock()
}

// insert commits one insert into ns through db and returns its TSN.
func insert(tb testing.TB, db *txtdb.DB, ns string, v any) txtdb.TSN {
	tb.Helper()
	tx, err := db.Begin(context.Background(), true)
	require.NoError(tb, err)
	_, err = tx.Insert(ns, v)
	require.NoError(tb, err)
	require.NoError(tb, tx.Commit())
	return tx.CommitTSN()
}

// createNS commits the creation of namespaces.
func createNS(tb testing.TB, db *txtdb.DB, nss ...string) txtdb.TSN {
	tb.Helper()
	tx, err := db.Begin(context.Background(), true)
	require.NoError(tb, err)
	for _, ns := range nss {
		require.NoError(tb, tx.CreateNamespace(ns))
	}
	require.NoError(tb, tx.Commit())
	return tx.CommitTSN()
}

// envOr returns the environment variable k, or def if it is empty.
func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
