package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/procharness"
	"github.com/txtdb/txtdb/procharness/check"
	"github.com/txtdb/txtdb/procharness/history"
)

// Each workload with 4 workers on one directory, once undisturbed and once with SIGKILLs at
// seeded random points of the run (the killed worker is restarted at once).
func TestWorkloads(t *testing.T) {
	mixes := map[string][]string{
		"bank":     {"bank"},
		"counter":  {"counter"},
		"register": {"register"},
		"append":   {"append"},
		// A long read transaction beside three counter workers: cleanup must keep what it reads.
		"hold": {"counter", "counter", "counter", "hold"},
		// Two producers and two consumers.
		"queue": {"queue"},
		// Two subscribers (one to everything, one to bank) beside two writers.
		"events": {"bank", "events", "counter", "events"},
		// The stress run's mix.
		"mix": {"bank", "counter", "register", "append"},
	}
	for _, name := range []string{"bank", "counter", "register", "append", "hold", "queue", "events", "mix"} {
		for _, kills := range []int{0, size(3, 12)} {
			if kills > 0 {
				name += "/kills"
			}
			t.Run(name, func(t *testing.T) {
				rep := procharness.RunTest(t, procharness.Config{Workers: 4, Workloads: mixes[strings.Split(name, "/")[0]],
					Ops: int64(size(200, 2000)), Kills: kills})
				require.Equal(t, kills, rep.Kills)
				require.Equal(t, kills, rep.Restarts)
				require.Positive(t, rep.Commits)
				if kills == 0 {
					require.Zero(t, rep.Unknown, "nobody was killed")
				}
			})
		}
	}
}

// The earlier system only claimed this: 3 processes x 100 increments of one counter end at
// exactly 300.
func TestThreeProcessesHundredIncrements(t *testing.T) {
	f := procharness.NewTest(t)
	spec := procharness.Spec{Workload: "counter", Args: []string{"-keys", "1", "-ops", "100", "-incr-only"}}
	var procs []*procharness.Proc
	for range 3 {
		p, err := f.Start(f.Ctx, spec)
		require.NoError(t, err)
		procs = append(procs, p)
	}
	for _, p := range procs {
		e, err := p.Wait(f.Ctx)
		require.NoError(t, err)
		require.Zero(t, e.Code, "%s: %s", p.Name, e)
	}
	res := check.Counter(f.History(), 1)
	require.True(t, res.OK(), "%s", res)
	require.Contains(t, res.Explanation, "final [300]", "%s", res)
	probs, err := f.Verify(f.Ctx)
	require.NoError(t, err)
	require.Empty(t, probs)
}

// The checkers fail on a real run with a planted violation: a bank worker credits without
// debiting once, a counter worker counts one increment twice, an append worker puts a value
// first instead of last (both list checkers must fail: the TSN-order check and Elle), a queue
// consumer completes a job twice, a subscriber drops an event.
func TestPlantedViolationsFail(t *testing.T) {
	for _, wl := range []string{"bank", "counter", "append", "queue", "events"} {
		t.Run(wl, func(t *testing.T) {
			release, err := procharness.Acquire(t.Context())
			require.NoError(t, err)
			defer release()
			mix := []string{wl}
			if wl == "events" {
				mix = []string{"events", "bank"}
			}
			cfg := procharness.Config{Dir: t.TempDir() + "/data", Workers: 2, Workloads: mix, Ops: 60,
				PlantViolation: true, Seed: procharness.SeedFromEnv()}
			rep, err := procharness.Run(t.Context(), cfg)
			require.NoError(t, err)
			require.False(t, rep.OK(), "a planted violation passed:\n%s", rep)
			for _, r := range rep.Results {
				if r.Checker == wl || wl == "append" {
					require.Equal(t, check.Fail, r.Verdict, "%s", rep)
				}
			}
		})
	}
}

// The shape of the stress run: a fleet of the mixed workloads for a fixed time, one SIGKILL
// about every KillEvery, progress samples along the way, and a final report.
func TestTimedRunWithProgress(t *testing.T) {
	var samples []procharness.Progress
	rep := procharness.RunTest(t, procharness.Config{Workers: 4,
		Workloads: []string{"bank", "counter", "register", "append"},
		Duration:  size(2*time.Second, 10*time.Second), KillEvery: 500 * time.Millisecond,
		Progress:      func(p procharness.Progress) { samples = append(samples, p) },
		ProgressEvery: 250 * time.Millisecond})
	require.NotEmpty(t, samples)
	last := samples[len(samples)-1]
	require.True(t, last.Completed, "the last sample is marked")
	require.Equal(t, rep.Kills, last.Kills)
	require.Equal(t, rep.Kills, rep.Restarts)
	require.Len(t, rep.Results, 5) // append has two checkers
	require.LessOrEqual(t, rep.MinCommits, rep.MaxCommits)
}

// Long append runs keep their lists short: a worker that reads a full list moves on to a new
// generation of lists (namespace append.g<n>), the others follow, and the checkers still see one
// history (keys of generation g are g*n+k).
func TestAppendRotatesLists(t *testing.T) {
	rep := procharness.RunTest(t, procharness.Config{Workers: 4, Workloads: []string{"append"},
		Ops: int64(size(300, 2000)), Kills: size(2, 8), AppendKeys: 4, AppendMaxList: 4})
	gens := map[string]bool{}
	for _, l := range rep.History.OfType(history.OK) {
		if l.F == "setup" && l.TSN != 0 {
			gens[l.NS[0]] = true
		}
	}
	require.Greater(t, len(gens), 2, "generations created: %v", gens)
}

// Long register runs keep each register's history short: a worker that finds a register with
// RegisterMaxWrites writes moves on to a new generation (namespace register.g<n>), the others
// follow, and the linearizability search still checks one history (keys of generation g are
// g*n+k), across kills.
func TestRegisterRotates(t *testing.T) {
	rep := procharness.RunTest(t, procharness.Config{Workers: 3, Workloads: []string{"register"},
		Ops: int64(size(300, 2000)), Kills: size(2, 8), RegisterKeys: 2, RegisterMaxWrites: 8})
	gens := map[string]bool{}
	keys := map[int]bool{}
	for _, l := range rep.History.OfType(history.OK) {
		if l.F == "setup" && l.TSN != 0 {
			gens[l.NS[0]] = true
		}
		if l.F == "write" || l.F == "cas" || l.F == "read" {
			var r history.Reg
			require.NoError(t, l.Decode(&r))
			keys[r.Key] = true
		}
	}
	require.Greater(t, len(gens), 2, "generations created: %v", gens)
	require.Greater(t, len(keys), 4, "register keys in the history: %v", keys)
}
