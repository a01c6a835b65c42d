package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The stress job passes on a healthy store, and its checks fail when a worker plants a violation
// (a half transfer).
func TestStress(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "txtdb")
	build := exec.Command("go", "build", "-race", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())
	for _, plant := range []bool{false, true} {
		args := []string{"stress", "-procs", "2", "-duration", "2s", "-kill", "700ms", "-accounts", "20"}
		if plant {
			args = append(args, "-plant-violation")
		}
		out, err := exec.Command(bin, args...).CombinedOutput()
		report := string(out)
		if plant {
			require.Error(t, err, "a planted violation must fail the run:\n%s", report)
			require.Contains(t, report, "money conserved              FAIL")
		} else {
			require.NoError(t, err, report)
			require.Equal(t, 5, strings.Count(report, "PASS"), report)
		}
	}
}
