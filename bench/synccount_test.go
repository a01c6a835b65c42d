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
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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

// cpuEvent is perf's count of the CPU time the processes' threads ran (in milliseconds).
const cpuEvent = "task-clock"

// perfEvents are what the table has perf count.
func perfEvents() string { return strings.Join(append(slices.Clone(syncEvents), cpuEvent), ",") }

// syncCounting is how the table counts sync system calls and CPU time: with perf, or not at all
// (then why).
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
	out, err := exec.Command(path, "stat", "-x,", "-e", perfEvents(), "--", "true").CombinedOutput()
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
		"-e", perfEvents(), "-p", strings.Join(list, ","))
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

// perfCounts is what perf counted while counting was enabled.
type perfCounts struct {
	syncs int64         // sync system calls
	cpu   time.Duration // CPU time of every thread of the processes
}

// stop disables counting, ends perf and returns what it counted while counting was enabled.
func (c *syncCount) stop() (perfCounts, error) {
	if err := c.command("disable"); err != nil {
		c.kill()
		return perfCounts{}, err
	}
	c.finished = true
	_ = c.cmd.Process.Signal(os.Interrupt) // perf stat -p runs until interrupted, then writes its counts
	werr := c.cmd.Wait()
	_ = c.ctl.Close()
	_ = c.ackFile.Close()
	b, err := os.ReadFile(c.out)
	if err != nil {
		return perfCounts{}, errors.Join(err, werr)
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

// parsePerfCounts reads `perf stat -x,` output, which must hold each of perfEvents exactly once:
// the sync calls are summed, the CPU time (in msec) converted.
func parsePerfCounts(b []byte) (perfCounts, error) {
	var pc perfCounts
	var seen []string
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 3 {
			continue
		}
		switch {
		case slices.Contains(syncEvents, f[2]):
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return perfCounts{}, fmt.Errorf("perf counted %s as %q", f[2], f[0])
			}
			pc.syncs += n
		case f[2] == cpuEvent && f[1] == "msec":
			v, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				return perfCounts{}, fmt.Errorf("perf counted %s as %q", f[2], f[0])
			}
			pc.cpu = time.Duration(v * float64(time.Millisecond))
		default:
			continue
		}
		seen = append(seen, f[2])
	}
	slices.Sort(seen)
	want := slices.Sorted(strings.SplitSeq(perfEvents(), ","))
	if !slices.Equal(seen, want) {
		return perfCounts{}, fmt.Errorf("perf output names %v, want %v", seen, want)
	}
	return pc, nil
}

func TestParsePerfCounts(t *testing.T) {
	out := "# started on a day\n\n" +
		"200,,syscalls:sys_enter_fdatasync,8625765,100.00,,\n" +
		"3,,syscalls:sys_enter_fsync,8633459,100.00,,\n" +
		"1,,syscalls:sys_enter_syncfs,8633459,100.00,,\n" +
		"1234.5,msec,task-clock,1234500000,100.00,0.5,CPUs utilized\n"
	pc, err := parsePerfCounts([]byte(out))
	require.NoError(t, err)
	require.Equal(t, perfCounts{syncs: 204, cpu: 1234500 * time.Microsecond}, pc)

	_, err = parsePerfCounts([]byte("<not counted>,,syscalls:sys_enter_fsync,0,0.00,,\n"))
	require.Error(t, err, "an event perf did not count")
	_, err = parsePerfCounts([]byte("3,,syscalls:sys_enter_fsync,8633459,100.00,,\n"))
	require.Error(t, err, "events missing")
}
