package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Worker processes re-exec this test binary with benchRoleEnv set; TestMain runs the role instead
// of the tests. A worker talks to the parent through stdout lines and reads commands from stdin.
const (
	benchRoleEnv   = "TXTDB_BENCH_ROLE"
	benchConfigEnv = "TXTDB_BENCH_CONFIG"
)

// longStop bounds every wait on a worker; it is a failure deadline, never a timing assertion.
const longStop = 10 * time.Minute

func TestMain(m *testing.M) {
	if role := os.Getenv(benchRoleEnv); role != "" {
		os.Exit(runRole(role))
	}
	os.Exit(m.Run())
}

// runRole runs a worker role and returns the process's exit code.
func runRole(role string) int {
	var cfg workerConfig
	if err := json.Unmarshal([]byte(os.Getenv(benchConfigEnv)), &cfg); err != nil {
		fmt.Println("error", "config:", err)
		return 2
	}
	switch role {
	case "transfer":
		if err := transferRole(cfg, bufio.NewReader(os.Stdin), os.Stdout); err != nil {
			fmt.Println("error", err)
			return 3
		}
		return 0
	case "cell":
		if err := cellRole(cfg, bufio.NewReader(os.Stdin), os.Stdout); err != nil {
			fmt.Println("error", err)
			return 3
		}
		return 0
	case "scale":
		if err := scaleRole(cfg, os.Stdout); err != nil {
			fmt.Println("error", err)
			return 3
		}
		return 0
	default:
		fmt.Println("error", "unknown role", role)
		return 2
	}
}

// worker is a re-executed test binary running a role.
type worker struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
	done  chan error
}

// startWorker starts the test binary in role with cfg; a cleanup kills it if it is still running.
func startWorker(tb testing.TB, role string, cfg workerConfig) *worker {
	tb.Helper()
	js, err := json.Marshal(cfg)
	require.NoError(tb, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), benchRoleEnv+"="+role, benchConfigEnv+"="+string(js))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	require.NoError(tb, err)
	out, err := cmd.StdoutPipe()
	require.NoError(tb, err)
	require.NoError(tb, cmd.Start())
	w := &worker{cmd: cmd, in: in, lines: make(chan string, 1024), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
		close(w.lines)
		w.done <- cmd.Wait()
	}()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		err := <-w.done
		w.done <- err
	})
	return w
}

// expect waits for the next line with the given prefix (skipping others) and returns its rest.
func (w *worker) expect(tb testing.TB, prefix string) string {
	tb.Helper()
	var seen []string
	deadline := time.After(longStop)
	for {
		select {
		case l, ok := <-w.lines:
			if !ok {
				tb.Fatalf("worker exited before printing %q: %v", prefix, seen)
			}
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return strings.TrimSpace(rest)
			}
			seen = append(seen, l)
		case <-deadline:
			tb.Fatalf("no %q line from worker within %v", prefix, longStop)
		}
	}
}

// wait waits for the worker to exit and returns its remaining lines and its exit error.
func (w *worker) wait(tb testing.TB) ([]string, error) {
	tb.Helper()
	var out []string
	deadline := time.After(longStop)
	for {
		select {
		case l, ok := <-w.lines:
			if !ok {
				select {
				case err := <-w.done:
					w.done <- err
					return out, err
				case <-deadline:
					tb.Fatalf("worker did not exit within %v", longStop)
				}
			}
			out = append(out, l)
		case <-deadline:
			tb.Fatalf("worker did not finish within %v", longStop)
		}
	}
}

// send writes one command line to the worker's stdin.
func (w *worker) send(tb testing.TB, line string) {
	tb.Helper()
	_, err := io.WriteString(w.in, line+"\n")
	require.NoError(tb, err)
}
