package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/procharness"
)

// stressArgs is a short stress run: four workers, a kill about every 500ms.
var stressArgs = []string{"-workers", "4", "-duration", "2s", "-kill", "500ms"}

// The stress run passes on a healthy store, reporting every checker of the default mix, and
// prints plain progress lines (no \r) when its output is not a terminal.
func TestStress(t *testing.T) {
	release, err := procharness.Acquire(t.Context())
	require.NoError(t, err)
	defer release()
	var out bytes.Buffer
	err = stress(stressArgs, &out)
	report := out.String()
	require.NoError(t, err, report)
	for _, c := range []string{"bank: pass", "counter: pass", "register: pass", "lists: pass", "elle: pass",
		"check: no problems", "commit latency p50", "commits per worker: fewest", "kills", "seed"} {
		require.Contains(t, report, c)
	}
	require.NotContains(t, report, "\r")
	require.Contains(t, report, "] commits ")
	require.Contains(t, report, "removed the temporary data directory")
}

// -plant-violation makes the run fail: a nonzero exit and FAIL verdicts, with the data directory
// and the history kept.
func TestStressPlantedViolationFails(t *testing.T) {
	release, err := procharness.Acquire(t.Context())
	require.NoError(t, err)
	defer release()
	var out bytes.Buffer
	dir := t.TempDir() + "/data"
	err = stress(append([]string{"-plant-violation", "-dir", dir}, stressArgs...), &out)
	report := out.String()
	require.Error(t, err, report)
	require.Contains(t, report, "FAIL:")
	for _, c := range []string{"bank: FAIL", "counter: FAIL", "lists: FAIL", "elle: FAIL"} {
		require.Contains(t, report, c)
	}
	require.Contains(t, report, "history "+dir+".history.jsonl")
	require.Equal(t, 1, runCommand(append([]string{"stress", "-plant-violation"}, stressArgs...), &out, &out))
}

// On a terminal the progress line is rewritten in place.
func TestProgressLineLive(t *testing.T) {
	var out bytes.Buffer
	p := &progressLine{out: &out, live: true}
	p.show(procharness.Progress{Commits: 5})
	p.show(procharness.Progress{Commits: 9, Completed: true})
	p.end()
	require.Equal(t, 2, strings.Count(out.String(), "\r"))
	require.True(t, strings.HasSuffix(out.String(), "\n"))
}
