//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package txn

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// readBootID returns the kernel's boot time (sysctl kern.boottime, to the microsecond), the same
// for every process of one boot; "" if it cannot be read. Where setting the wall clock moves
// kern.boottime, handles started afterwards see another id: they recover once on the slow path,
// which is safe.
func readBootID() string {
	tv, err := unix.SysctlTimeval("kern.boottime")
	if err != nil || (tv.Sec == 0 && tv.Usec == 0) {
		return ""
	}
	return fmt.Sprintf("boottime-%d.%06d", tv.Sec, tv.Usec)
}
