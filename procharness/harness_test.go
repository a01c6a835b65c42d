package procharness

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/procharness/history"
)

// A crash-point run counts only when the worker announced the point and died of SIGKILL: a
// worker the harness killed, one that exited normally while armed, and one armed at another
// point do not count.
func TestCrashedAtNeedsAnnouncementAndSIGKILL(t *testing.T) {
	f := NewTest(t)
	spec := Spec{Workload: "counter", Args: []string{"-keys", "1", "-ops", "5"}}

	p, err := f.Start(f.Ctx, spec)
	require.NoError(t, err)
	e, err := p.Wait(f.Ctx)
	require.NoError(t, err)
	require.Zero(t, e.Code, "%s", e)
	require.False(t, e.CrashedAt("after-append"), "a clean exit is no crash")

	armed := spec
	armed.Env = []string{"TXTDB_CRASHPOINT=after-append:2"}
	p, err = f.StartNoWait(armed)
	require.NoError(t, err)
	e, err = p.Wait(f.Ctx)
	require.NoError(t, err)
	require.True(t, e.Killed(), "%s", e)
	require.True(t, e.CrashedAt("after-append"), "%s", e)
	require.False(t, e.CrashedAt("after-fsync"), "announced another point")

	// Killed by the harness: SIGKILL, but no announcement.
	p, err = f.Start(f.Ctx, Spec{Workload: "hold"})
	require.NoError(t, err)
	e, err = p.Kill(f.Ctx)
	require.NoError(t, err)
	require.Equal(t, syscall.SIGKILL, e.Signal)
	require.False(t, e.CrashedAt("after-append"))

	// The killed holder's invoke/ok pair is complete; the armed worker's last invoke is not,
	// and becomes unknown.
	ops, err := f.History().Ops()
	require.NoError(t, err)
	unknown := 0
	for _, o := range ops {
		if o.Type() == history.Unknown {
			unknown++
		}
	}
	require.Equal(t, 1, unknown, "the armed worker's commit in flight")
	probs, err := f.Verify(f.Ctx)
	require.NoError(t, err)
	require.Empty(t, probs)
}

// Start waits for the ready line; a worker that cannot set up fails Start with its stderr.
func TestStartReportsSetupFailure(t *testing.T) {
	f := NewTest(t)
	_, err := f.Start(f.Ctx, Spec{Workload: "bank", Args: []string{"-accounts", "3"}})
	require.NoError(t, err)
	_, err = f.Start(f.Ctx, Spec{Workload: "bank", Args: []string{"-accounts", "4"}})
	require.ErrorContains(t, err, "exited before ready")
	require.ErrorContains(t, err, "want 4")
	_, err = f.Start(f.Ctx, Spec{Workload: "nonesuch"})
	require.ErrorContains(t, err, "unknown workload")
	require.NoError(t, f.StopAll(f.Ctx))
}

// A failing run keeps its directory and history: RunTest logs both. Here the harness's own
// writer is checked: the history written for a post-mortem reads back whole.
func TestHistoryWriteToReadsBack(t *testing.T) {
	f := NewTest(t)
	p, err := f.Start(f.Ctx, Spec{Workload: "register", Args: []string{"-ops", "20"}})
	require.NoError(t, err)
	_, err = p.Wait(f.Ctx)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "h.jsonl")
	out, err := os.Create(path)
	require.NoError(t, err)
	_, err = f.History().WriteTo(out)
	require.NoError(t, err)
	require.NoError(t, out.Close())
	in, err := os.Open(path)
	require.NoError(t, err)
	defer in.Close()
	lines, trunc, err := history.ReadAll(in)
	require.NoError(t, err)
	require.False(t, trunc)
	require.Equal(t, f.History().Lines(), lines)
}

func TestMain(m *testing.M) {
	code := m.Run()
	_ = RemoveBinary()
	os.Exit(code)
}

// SIGTERM stops a worker like a closed stdin: final reads, a summary, exit 0.
func TestWorkerStopsOnSIGTERM(t *testing.T) {
	f := NewTest(t)
	p, err := f.Start(f.Ctx, Spec{Workload: "counter", Args: []string{"-keys", "2"}})
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(p.PID, syscall.SIGTERM))
	e, err := p.Wait(f.Ctx)
	require.NoError(t, err)
	require.Zero(t, e.Code, "%s", e)
	var sums []history.Line
	for _, l := range f.History().Lines() {
		if l.Type == history.Summary && l.Worker == p.Name {
			sums = append(sums, l)
		}
	}
	require.Len(t, sums, 1)
	var s history.SummaryInfo
	require.NoError(t, sums[0].Decode(&s))
	require.Equal(t, s.Ops, s.OK, "every operation ok: %+v", s)
}

// Options.Wrap changes each worker's command before it starts: here a command prefix (env(1),
// which execs the worker) that arms a crash point, so the worker dies where the prefix said.
func TestWrapCommand(t *testing.T) {
	envBin, err := exec.LookPath("env")
	if err != nil {
		t.Skip("no env(1):", err)
	}
	f := NewTest(t)
	wraps := 0
	h, err := New(f.Ctx, Options{Dir: filepath.Join(t.TempDir(), "data"), Seed: f.Seed, Wrap: func(cmd *exec.Cmd) {
		wraps++
		cmd.Args = append([]string{"env", "TXTDB_CRASHPOINT=after-append:2", cmd.Path}, cmd.Args[1:]...)
		cmd.Path = envBin
	}})
	require.NoError(t, err)
	defer h.KillAll()
	p, err := h.StartNoWait(Spec{Workload: "counter", Args: []string{"-keys", "1", "-ops", "5"}})
	require.NoError(t, err)
	e, err := p.Wait(f.Ctx)
	require.NoError(t, err)
	require.True(t, e.CrashedAt("after-append"), "the prefix's crash point: %s", e)
	require.Equal(t, 1, wraps)

	// The same worker unwrapped runs to its end.
	p, err = f.Start(f.Ctx, Spec{Workload: "counter", Args: []string{"-keys", "1", "-ops", "5"}})
	require.NoError(t, err)
	e, err = p.Wait(f.Ctx)
	require.NoError(t, err)
	require.Zero(t, e.Code, "%s", e)
}
