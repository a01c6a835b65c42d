package txn

import (
	"os"
	"strings"
)

// readBootID returns the kernel's random boot id, new at every boot and the same for every
// process of one boot; "" if it cannot be read (no /proc).
func readBootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
