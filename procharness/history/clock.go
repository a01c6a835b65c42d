package history

import "golang.org/x/sys/unix"

// Now returns CLOCK_MONOTONIC in nanoseconds: one clock for every process of the host, so the
// times of different workers' lines compare. It is not a wall clock and it does not survive a
// reboot. Safe for concurrent use.
func Now() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		// INVARIANT: CLOCK_MONOTONIC exists on every system txtdb supports.
		panic("history: clock_gettime(CLOCK_MONOTONIC): " + err.Error())
	}
	return ts.Nano()
}
