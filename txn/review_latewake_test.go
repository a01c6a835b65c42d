package txn

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// PROTOCOL.md, "Waking the owner": a holder that "releases the lock after its last round with
// offers on the board that it did not take ... wakes their owners after the release, so that one
// of them takes the lock". An offer a holder cannot take (its snapshot is older than the history
// the holder's index keeps whole: its owner must commit it under the lock itself) is exactly such
// an offer. Here holder a commits once with c's untakeable offer on the board; its second round
// takes nothing and writes nothing, and a releases the lock without ringing c: c's wake word is
// unchanged, so a c that sleeps on it only notices the free lock when its 500 µs poll ends (or,
// past its 16 polls, when flock(2) hands it over).
func TestUntakenOfferOwnerRung(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	a := mustOpen(t, dir, Config{OneObjectPerPage: true, NoSync: true})
	c := mustOpen(t, dir, Config{OneObjectPerPage: true})
	if c.board.own.wake == nil {
		t.Skip("no futex wake on this host")
	}
	ctx := context.Background()
	tx, err := c.Begin(ctx, true)
	require.NoError(t, err)
	v, err := readInt(tx, "c", "page000002")
	require.NoError(t, err)
	// Move a's exact history past c's snapshot (foreignLag behind its newest TSN).
	for range foreignLag + 8 {
		_, _, err := update(ctx, a, addTo("page000001", 1))
		require.NoError(t, err)
	}
	require.NoError(t, tx.UpdatePage("c", "page000002", v+10))
	ops, opsJSON, err := tx.prepare()
	require.NoError(t, err)
	require.NoError(t, c.board.announce(c.ID(), []*request{{tx: tx, ops: ops, opsJSON: opsJSON}}))
	before, ok := c.board.own.wake.load()
	require.True(t, ok)

	_, _, err = update(ctx, a, addTo("page000001", 1))
	require.NoError(t, err)
	waitLeadIdle(a) // the round that found the offer untakeable runs after a's commit returned
	require.Zero(t, a.Stats().Served, "the offer is older than a's exact history: a must not take it")
	require.True(t, a.board.pending(), "c's offer is still on the board, undecided")
	after, ok := c.board.own.wake.load()
	require.True(t, ok)
	require.NotEqual(t, before, after,
		"a released the commit lock with c's offer on the board, untaken, and did not wake c")

	// c withdraws (as its lock wait would end) and commits it itself: once.
	took, err := c.board.withdraw(c.ID())
	require.NoError(t, err)
	require.False(t, took)
	_ = tx.Rollback()
}
