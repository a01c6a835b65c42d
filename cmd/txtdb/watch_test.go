package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb"
)

// watch prints one JSON line per commit after -from.
func TestWatch(t *testing.T) {
	dir := newStore(t) // TSN 1: app.users with ann and bob
	db, err := txtdb.Open(dir, nil)
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Update(context.Background(), func(tx *txtdb.Tx) error {
		_, err := tx.Insert("app.users", map[string]string{"name": "cy"})
		return err
	}))
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- watch(ctx, []string{"-from", "1", "-values", dir, "app"}, pw)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	got := make(chan string, 1)
	go func() {
		if lines.Scan() {
			got <- lines.Text()
		}
		close(got)
		_, _ = io.Copy(io.Discard, pr)
	}()
	var line string
	select {
	case line = <-got:
	case <-time.After(time.Minute):
		t.Fatal("watch printed nothing")
	}
	var ev struct {
		TSN     txtdb.TSN
		Changes []struct {
			Kind    string
			NS      string
			Objects []map[string]string
		}
	}
	require.NoError(t, json.Unmarshal([]byte(line), &ev), line)
	require.Equal(t, txtdb.TSN(2), ev.TSN)
	require.Equal(t, "app.users", ev.Changes[0].NS)
	require.Contains(t, []string{"insert", "append"}, ev.Changes[0].Kind)
	require.Equal(t, "cy", ev.Changes[0].Objects[len(ev.Changes[0].Objects)-1]["name"])
	cancel()
	require.NoError(t, <-done)

	code, _, stderr := runCLI("watch")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "usage")
}
