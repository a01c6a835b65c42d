package procharness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// WorkerPackage is the import path of the worker binary.
const WorkerPackage = "github.com/txtdb/txtdb/cmd/txtdb-worker"

// CrashTag is the build tag that makes the worker read TXTDB_CRASHPOINT.
const CrashTag = "txtdb_crashpoints"

var built struct {
	mu   sync.Mutex
	dir  string // guarded by mu
	path string // guarded by mu: the binary, once built
}

// Binary returns the worker binary, building it the first time (go build -tags txtdb_crashpoints,
// plus -race when this binary has the race detector). Safe for concurrent use; later calls wait
// for the first build and return its result. The binary lives in a temporary directory until
// RemoveBinary.
func Binary(ctx context.Context) (string, error) {
	built.mu.Lock()
	defer built.mu.Unlock()
	if built.path != "" {
		return built.path, nil
	}
	dir, err := os.MkdirTemp("", "txtdb-worker-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "txtdb-worker")
	args := []string{"build", "-tags", CrashTag, "-o", path}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, WorkerPackage)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("procharness: build the worker: %w\n%s", err, out)
	}
	built.dir, built.path = dir, path
	return path, nil
}

// RemoveBinary removes the binary Binary built (a TestMain calls it after the tests).
func RemoveBinary() error {
	built.mu.Lock()
	defer built.mu.Unlock()
	if built.dir == "" {
		return nil
	}
	err := os.RemoveAll(built.dir)
	built.dir, built.path = "", ""
	return err
}
