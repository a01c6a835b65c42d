package txn

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// On Linux the boot id is the kernel's random boot id, never a made-up value.
func TestReadBootIDLinux(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Skipf("no kernel boot id here: %v", err)
	}
	require.NotEmpty(t, readBootID())
	require.Equal(t, strings.TrimSpace(string(b)), readBootID())
}
