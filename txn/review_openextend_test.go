package txn

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

// openBoard extends the board's slots file to all 64 slots only so that it can be read from a
// mapping (wal.MappedFile reads a shorter file with pread). A handle whose extension fails (here
// strace makes the ftruncate of the slots file fail with EIO, on a store whose slots file holds
// two slots, as a build before this change leaves it) must still open and commit, as the wake
// file's mapping does when it fails; instead Open fails, and so does every Open after it until
// one extension succeeds.
func TestSlotsExtensionFailureDoesNotFailOpen(t *testing.T) {
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("strace is not installed")
	}
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	slots := filepath.Join(dir, pages.MetaDir, boardDirName, boardFile)
	require.NoError(t, os.Truncate(slots, 2*annSize))
	cmd := exec.Command("strace", "-f", "-qq", "-o", os.DevNull, "-P", slots, "-e", "trace=ftruncate",
		"-e", "inject=ftruncate:error=EIO", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TXN_ROLE=bumper", configEnv(t, childConfig{Dir: dir, N: 1}))
	k := startCmd(t, cmd)
	lines, err := k.all(t)
	require.NoError(t, err, "the child: %s", strings.Join(lines, "\n"))
	require.Contains(t, lines, "ack 1 2")
}
