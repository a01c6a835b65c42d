package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// perfEnv set to 0 turns the counting of sync system calls off.
const perfEnv = "TXTDB_BENCH_PERF"

// syncEvents are the system calls counted as syncs, as perf tracepoints. They are the only calls
// either engine makes data durable with: txtdb fdatasyncs the log, fsyncs files and folders and
// syncfs()s a checkpoint's page files; SQLite fsyncs (or fdatasyncs) its WAL and database files.
var syncEvents = []string{
	"syscalls:sys_enter_fsync",
	"syscalls:sys_enter_fdatasync",
	"syscalls:sys_enter_syncfs",
}

// syncCounting is how the table counts sync system calls: with perf, or not at all (then why).
type syncCounting struct {
	perf   string // perf's path; "" when syncs are not counted
	reason string // why not, when perf is ""
}

// probeSyncCounting finds out whether `perf stat` can count the sync tracepoints of processes
// on this machine (it needs perf installed, tracefs, and root or a low perf_event_paranoid).
// perf counts in the kernel: the processes are never stopped, unlike under strace.
func probeSyncCounting() syncCounting {
	if os.Getenv(perfEnv) == "0" {
		return syncCounting{reason: perfEnv + "=0"}
	}
	path, err := exec.LookPath("perf")
	if err != nil {
		return syncCounting{reason: "perf is not installed"}
	}
	out, err := exec.Command(path, "stat", "-x,", "-e", strings.Join(syncEvents, ","), "--", "true").CombinedOutput()
	if err != nil {
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return syncCounting{reason: fmt.Sprintf("perf stat cannot count syscall tracepoints here (%v: %s)", err, line)}
	}
	return syncCounting{perf: path}
}

// syncCount is a running `perf stat` attached to a cell's worker processes. It starts disabled;
// enable and disable bracket the measured window exactly (perf acknowledges each command).
type syncCount struct {
	cmd      *exec.Cmd
	ctl      *os.File // perf reads commands from it
	ack      *bufio.Reader
	ackFile  *os.File
	out      string // perf's output file
	stderr   bytes.Buffer
	finished bool
}

// startSyncCount attaches perf to pids (their threads, also those started later), counting
// nothing until enable. The output goes to a file in dir.
func startSyncCount(perf string, pids []int, dir string) (_ *syncCount, err error) {
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	ackR, ackW, err := os.Pipe()
	if err != nil {
		_ = ctlR.Close()
		_ = ctlW.Close()
		return nil, err
	}
	list := make([]string, len(pids))
	for i, p := range pids {
		list[i] = strconv.Itoa(p)
	}
	c := &syncCount{ctl: ctlW, ackFile: ackR, ack: bufio.NewReader(ackR), out: filepath.Join(dir, "perf.csv")}
	// fd 3 and 4 in perf are ExtraFiles[0] and [1].
	c.cmd = exec.Command(perf, "stat", "-D", "-1", "--control", "fd:3,4", "-x,", "-o", c.out,
		"-e", strings.Join(syncEvents, ","), "-p", strings.Join(list, ","))
	c.cmd.ExtraFiles = []*os.File{ctlR, ackW}
	c.cmd.Stderr = &c.stderr
	err = c.cmd.Start()
	_ = ctlR.Close()
	_ = ackW.Close()
	if err != nil {
		_ = ctlW.Close()
		_ = ackR.Close()
		return nil, err
	}
	return c, nil
}

// command sends perf a control command ("enable", "disable") and waits for its acknowledgement.
func (c *syncCount) command(cmd string) error {
	if _, err := fmt.Fprintln(c.ctl, cmd); err != nil {
		return fmt.Errorf("perf %s: %w (%s)", cmd, err, strings.TrimSpace(c.stderr.String()))
	}
	if err := c.ackFile.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		return err
	}
	// perf writes "ack\n" and a NUL.
	for {
		line, err := c.ack.ReadString('\n')
		if strings.Contains(line, "ack") {
			return nil
		}
		if err != nil {
			return fmt.Errorf("perf %s: no acknowledgement: %w (%s)", cmd, err, strings.TrimSpace(c.stderr.String()))
		}
	}
}

// stop disables counting, ends perf and returns how many sync system calls the processes made
// while counting was enabled.
func (c *syncCount) stop() (int64, error) {
	if err := c.command("disable"); err != nil {
		c.kill()
		return 0, err
	}
	c.finished = true
	_ = c.cmd.Process.Signal(os.Interrupt) // perf stat -p runs until interrupted, then writes its counts
	werr := c.cmd.Wait()
	_ = c.ctl.Close()
	_ = c.ackFile.Close()
	b, err := os.ReadFile(c.out)
	if err != nil {
		return 0, errors.Join(err, werr)
	}
	return parsePerfCounts(b)
}

// kill ends perf if stop did not.
func (c *syncCount) kill() {
	if c.finished {
		return
	}
	c.finished = true
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
	_ = c.ctl.Close()
	_ = c.ackFile.Close()
}

// parsePerfCounts sums the counts of syncEvents in `perf stat -x,` output, which must hold each
// of them exactly once.
func parsePerfCounts(b []byte) (int64, error) {
	var total int64
	var seen []string
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 3 || !slices.Contains(syncEvents, f[2]) {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("perf counted %s as %q", f[2], f[0])
		}
		total += n
		seen = append(seen, f[2])
	}
	slices.Sort(seen)
	want := slices.Sorted(slices.Values(syncEvents))
	if !slices.Equal(seen, want) {
		return 0, fmt.Errorf("perf output names %v, want %v", seen, want)
	}
	return total, nil
}
