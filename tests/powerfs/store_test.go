package powerfs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lineWait bounds every wait for a child's line; a healthy child takes milliseconds.
const lineWait = 2 * time.Minute

// child is one process started by a test, with its stdout as lines.
type child struct {
	cmd    *exec.Cmd
	lines  chan string
	done   chan struct{}
	stderr *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startChild starts the test binary in child mode under boot, with its syncfs calls on the mount
// intercepted unless noSyncfs.
func startChild(t *testing.T, boot *Boot, mnt string, noSyncfs bool, env ...string) *child {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sm := mnt
	if noSyncfs {
		sm = ""
	}
	cmd := boot.Command(sm, self)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 1<<16), done: make(chan struct{}), stderr: &lockedBuffer{}}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.done)
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(c.kill)
	return c
}

// next returns the child's next line; false once its output ended (or after lineWait).
func (c *child) next() (string, bool) {
	select {
	case l, ok := <-c.lines:
		return l, ok
	case <-time.After(lineWait):
		return "", false
	}
}

// kill SIGKILLs the child's process group and reaps it; the lines it printed stay readable.
func (c *child) kill() {
	if c.cmd.Process == nil || c.cmd.ProcessState != nil {
		return
	}
	syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.done // its output is read to the end before Wait closes the pipe
	c.cmd.Wait()
}

// wait waits for the child to exit by itself.
func (c *child) wait() error {
	<-c.done
	return c.cmd.Wait()
}

type bootKind uint8

const (
	bootNew  bootKind = iota // every round is a new boot, with a fresh boot id (a real power cut)
	bootNone                 // the processes find no boot id (a host without one)
	bootHost                 // the host's boot id throughout: a cut with no reboot, which hardware cannot do
)

// scenario is a run of rounds: verify, work, kill everybody, cut, (re)boot.
type scenario struct {
	rounds   int
	boot     bootKind
	noSync   bool          // workers commit with NoSync
	ckpt     time.Duration // Options.CheckpointEvery (0: the default)
	seg      int64         // Options.SegmentSize (0: the default); with no log retention
	workers  int
	acks     int // commits each worker acknowledges before the cut
	cuts     []Cut
	cfg      Config
	lie      Lie
	noSyncfs bool // leave syncfs uninstrumented (it then makes nothing durable)
}

// ack is one acknowledged commit.
type ack struct {
	w, seq int
	tsn    uint64
	lin    string
}

type ledger struct {
	last  map[int]int               // per worker: its last acknowledged sequence number
	tsns  map[string]map[uint64]ack // lineage -> TSN -> the commit acknowledged with it
	maxTS map[string]uint64         // lineage -> highest TSN acknowledged under it
}

// run runs the scenario on a fresh store and returns the violations it saw (an empty list when
// the store kept every promise), with a log of what it did.
func (sc scenario) run(t *testing.T) (violations []string, lied int) {
	t.Helper()
	base := t.TempDir()
	backing := filepath.Join(base, "disk")
	led := ledger{last: map[int]int{}, tsns: map[string]map[uint64]ack{}, maxTS: map[string]uint64{}}
	env := []string{"POWERFS_DIR="}
	if sc.noSync {
		env = append(env, "POWERFS_NOSYNC=1")
	}
	if sc.ckpt > 0 {
		env = append(env, "POWERFS_CKPT="+sc.ckpt.String())
	}
	if sc.seg > 0 {
		env = append(env, "POWERFS_SEG="+strconv.FormatInt(sc.seg, 10))
	}
	bad := func(round int, format string, args ...any) {
		v := fmt.Sprintf("round %d: ", round) + fmt.Sprintf(format, args...)
		if len(violations) < 10 {
			t.Log(v)
		}
		violations = append(violations, v)
	}
	for round := 0; round < sc.rounds; round++ {
		f := MustMount(t, backing, sc.cfg)
		dir := f.Path("db")
		if round == 0 {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			syncDir(t, f.Dir())
		}
		env[0] = "POWERFS_DIR=" + dir
		var boot *Boot
		var err error
		switch sc.boot {
		case bootNew:
			boot, err = NewBoot(base)
		case bootNone:
			boot, err = NoBootID(base)
		case bootHost:
			boot, err = HostBoot()
		}
		if err != nil {
			t.Fatal(err)
		}
		f.SetLie(sc.lie)

		// A process of the new boot opens the store and checks it.
		v := startChild(t, boot, f.Dir(), sc.noSyncfs, append(env, "POWERFS_CHILD=verify")...)
		var res verifyResult
		line, ok := v.next()
		if !ok || !strings.HasPrefix(line, "verify ") {
			bad(round, "verify: %q (stderr %s)", line, v.stderr.String())
			v.kill()
			lied += f.Lied()
			f.Unmount()
			return violations, lied
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "verify ")), &res); err != nil {
			t.Fatal(err)
		}
		if err := v.wait(); err != nil {
			bad(round, "verify exited: %v (stderr %s)", err, v.stderr.String())
		}
		if res.Boot != boot.ID {
			bad(round, "the process saw boot id %q, want %q", res.Boot, boot.ID)
		}
		if res.Accounts != accounts || res.Total != accounts*startBalance {
			bad(round, "%d accounts holding %d, want %d holding %d (a torn transaction)", res.Accounts, res.Total, accounts, accounts*startBalance)
		}
		for _, p := range res.Problems {
			bad(round, "check (store at TSN %d, checkpoint %d): %s", res.TSN, res.Ckpt, p)
		}
		for w := range sc.workers {
			if res.Seqs[w] < led.last[w] {
				if !sc.noSync {
					bad(round, "worker %d: acknowledged commit %d lost (the store has %d)", w, led.last[w], res.Seqs[w])
				}
			}
			// Commits that were never acknowledged may or may not have survived.
			led.last[w] = res.Seqs[w]
		}
		if m, ok := led.maxTS[res.Lineage]; ok && res.TSN < m {
			bad(round, "lineage %s rewound from acknowledged TSN %d to %d without a new lineage", res.Lineage, m, res.TSN)
		}

		// Workers commit until each acknowledged sc.acks commits, then everybody dies.
		var ws []*child
		for w := range sc.workers {
			ws = append(ws, startChild(t, boot, f.Dir(), sc.noSyncfs, append(env, "POWERFS_CHILD=work", "POWERFS_W="+strconv.Itoa(w))...))
		}
		readLine := func(w int, c *child) (stop bool) {
			line, ok := c.next()
			if !ok {
				bad(round, "worker %d ended: %s", w, c.stderr.String())
				return true
			}
			switch fs := strings.Fields(line); {
			case line == "ready":
			case len(fs) == 5 && fs[0] == "ack":
				a := ack{lin: fs[4]}
				a.w, _ = strconv.Atoi(fs[1])
				a.seq, _ = strconv.Atoi(fs[2])
				a.tsn, _ = strconv.ParseUint(fs[3], 10, 64)
				if a.seq != led.last[w]+1 {
					bad(round, "worker %d acknowledged seq %d after %d", w, a.seq, led.last[w])
				}
				led.last[w] = a.seq
				byTSN := led.tsns[a.lin]
				if byTSN == nil {
					byTSN = map[uint64]ack{}
					led.tsns[a.lin] = byTSN
				}
				if old, dup := byTSN[a.tsn]; dup && old != a {
					bad(round, "TSN %d issued twice under lineage %s: %+v and %+v", a.tsn, a.lin, old, a)
				}
				byTSN[a.tsn] = a
				led.maxTS[a.lin] = max(led.maxTS[a.lin], a.tsn)
			default:
				bad(round, "worker %d: %q (stderr %s)", w, line, c.stderr.String())
				return true
			}
			return false
		}
		start := map[int]int{}
		for w := range sc.workers {
			start[w] = led.last[w]
		}
		for w, c := range ws {
			for led.last[w]-start[w] < sc.acks {
				if readLine(w, c) {
					break
				}
			}
		}
		for _, c := range ws {
			syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		}
		for w, c := range ws {
			c.kill()
			for len(c.lines) > 0 {
				readLine(w, c)
			}
		}
		cut := sc.cuts[round%len(sc.cuts)]
		rep, err := f.Cut(cut)
		if err != nil {
			t.Fatal(err)
		}
		st := f.Stats()
		lied += f.Lied()
		t.Logf("round %d: boot %.8s, store at TSN %d (lineage %.8s, %d leftovers), acks %v, %+v, syncfs %d, lied %d",
			round, boot.ID, res.TSN, res.Lineage, res.Leftovers, led.last, rep, st.Syncfs, f.Lied())
	}
	return violations, lied
}

func requireClean(t *testing.T, v []string, lied int) {
	t.Helper()
	if lied != 0 {
		t.Fatalf("%d fsyncs lied in a run without a planted bug", lied)
	}
	if len(v) > 0 {
		t.Fatalf("%d violations, first: %s", len(v), v[0])
	}
}

func rounds(short, long int) int {
	if testing.Short() {
		return short
	}
	return long
}

// TestBootID: a process started under a new boot sees its id; one under the host's boot the
// real one.
func TestBootID(t *testing.T) {
	if why := Available(); why != "" {
		t.Skip(why)
	}
	nb, err := NewBoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hb, err := HostBoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []*Boot{nb, hb} {
		c := startChild(t, b, "", true, "POWERFS_CHILD=bootid")
		line, _ := c.next()
		if err := c.wait(); err != nil {
			t.Fatalf("child: %v (%s)", err, c.stderr.String())
		}
		if line != "boot "+b.ID {
			t.Fatalf("child saw %q, want %q", line, "boot "+b.ID)
		}
	}
	if nb.ID == hb.ID {
		t.Fatal("a new boot has the host's id")
	}
	if got, _ := os.ReadFile(BootIDPath); strings.TrimSpace(string(got)) != hb.ID {
		t.Fatalf("the bind mount leaked into the test's namespace: %q", got)
	}
}

// TestSyncfs: the kernel does not forward syncfs(2) to the layer, so it makes nothing durable;
// a process that intercepts it makes everything durable.
func TestSyncfs(t *testing.T) {
	hb, err := HostBoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, intercept := range []bool{false, true} {
		backing := filepath.Join(t.TempDir(), "disk")
		f := MustMount(t, backing, Config{})
		c := startChild(t, hb, f.Dir(), !intercept, "POWERFS_CHILD=syncfs", "POWERFS_DIR="+f.Dir())
		line, _ := c.next()
		if err := c.wait(); err != nil || line != "ok" {
			t.Fatalf("child: %q %v (%s)", line, err, c.stderr.String())
		}
		if got := f.Stats().Syncfs; got != map[bool]int{false: 0, true: 1}[intercept] {
			t.Fatalf("intercept %v: layer saw %d syncfs", intercept, got)
		}
		mustCut(t, f, Cut{Data: DataNone, Meta: MetaNone})
		got, _ := read(t, backing, "f")
		if want := map[bool]string{false: "", true: "synced by syncfs"}[intercept]; string(got) != want {
			t.Fatalf("intercept %v: f = %q after the cut, want %q", intercept, got, want)
		}
	}
}

func TestPowerCutReboot(t *testing.T) {
	sc := scenario{rounds: rounds(2, 32), workers: 2, acks: 15, cuts: Cuts(1)}
	v, lied := sc.run(t)
	requireClean(t, v, lied)
}

// TestPowerCutNoBootID: the processes find no boot id, so the store cannot tell the reboot
// from a restart (the boot-id-less path: every handle recovers first).
func TestPowerCutNoBootID(t *testing.T) {
	sc := scenario{rounds: rounds(3, 16), boot: bootNone, workers: 2, acks: 15, cuts: Cuts(100)}
	v, lied := sc.run(t)
	requireClean(t, v, lied)
}

// TestPowerCutNoBootIDNoSync: the same under NoSync: with no boot id and no live peer, a
// recovering handle starts a new lineage.
func TestPowerCutNoBootIDNoSync(t *testing.T) {
	sc := scenario{rounds: rounds(3, 16), boot: bootNone, noSync: true, workers: 2, acks: 15, cuts: Cuts(400)}
	v, lied := sc.run(t)
	requireClean(t, v, lied)
}

// TestPowerCutCheckpoint: checkpoints and log trimming run all the time, so cuts land in them.
func TestPowerCutCheckpoint(t *testing.T) {
	sc := scenario{rounds: rounds(2, 32), workers: 2, acks: 30, ckpt: time.Millisecond, seg: 16 << 10, cuts: Cuts(200)}
	v, lied := sc.run(t)
	requireClean(t, v, lied)
}

// TestPowerCutNoSync: a cut may lose the last commits; a TSN is never issued twice under one
// lineage, and a store that lost acknowledged commits is on a new lineage.
func TestPowerCutNoSync(t *testing.T) {
	sc := scenario{rounds: rounds(2, 32), noSync: true, workers: 2, acks: 15, cuts: Cuts(300)}
	v, lied := sc.run(t)
	requireClean(t, v, lied)
}

// The planted bugs: the layer lies about one kind of fsync. Each run must see violations (and
// the same run without the lie, in the tests above, none). Checkpoints are off (their syncfs
// would make the lied-about data durable anyway).
func TestPlantedMissingLogFsync(t *testing.T) {
	sc := scenario{rounds: 2, workers: 2, acks: 10, ckpt: time.Hour,
		cuts: []Cut{{Data: DataNone, Meta: MetaAll}},
		lie:  Lie{Match: func(p string, dir bool) bool { return !dir && strings.HasPrefix(p, "db/.txtdb/log/") }}}
	v, lied := sc.run(t)
	if lied == 0 {
		t.Fatal("no log fsync reached the lie")
	}
	if len(v) == 0 {
		t.Fatalf("a store whose log fsyncs did nothing (%d) passed every check", lied)
	}
}

func TestPlantedMissingLogDirFsync(t *testing.T) {
	sc := scenario{rounds: 2, workers: 2, acks: 20, ckpt: time.Hour, seg: 4 << 10,
		cuts: []Cut{{Data: DataAll, Meta: MetaNone}},
		lie:  Lie{Match: func(p string, dir bool) bool { return dir && p == "db/.txtdb/log" }}}
	v, lied := sc.run(t)
	if lied == 0 {
		t.Fatal("no fsync of the log directory reached the lie")
	}
	if len(v) == 0 {
		t.Fatalf("a store whose log directory fsyncs did nothing (%d) passed every check", lied)
	}
}

// TestCheckpointWithoutSyncfs: a FUSE file system never sees syncfs(2) (the kernel does not
// forward it). Checkpoints used to make page files durable with it alone, so a cut after a
// checkpoint that trimmed the log lost them; the engine now uses syncfs only on file systems
// known to honour it and fsyncs each file elsewhere. The layer's syncfs interception is off here.
func TestCheckpointWithoutSyncfs(t *testing.T) {
	sc := scenario{rounds: rounds(3, 16), workers: 2, acks: 40, ckpt: time.Millisecond, seg: 4 << 10, noSyncfs: true,
		cuts: []Cut{{Data: DataNone, Meta: MetaAll}, {Data: DataSectors, Meta: MetaSubset, Seed: 7}}}
	v, lied := sc.run(t)
	requireClean(t, v, lied)
}

// TestSameBootIDCut: a cut the host's boot id does not record (no reboot: a FUSE daemon or VM
// restored under a live kernel; hardware cannot do it). State is not fsynced, so the cut can keep
// an old slot; a handle that found a slot of its own boot used to trust it, so a new reader saw
// the old TSN until some process committed. It now recovers first when records lie past the
// slot (deterministic regression test: txn's TestSameBootStaleStateRecovered).
func TestSameBootIDCut(t *testing.T) {
	sc := scenario{rounds: rounds(3, 8), boot: bootHost, workers: 2, acks: 15, cuts: []Cut{{Data: DataNone, Meta: MetaAll}}}
	v, lied := sc.run(t)
	requireClean(t, v, lied)
}
