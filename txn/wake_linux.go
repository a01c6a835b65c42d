package txn

import (
	"syscall"
	"time"
	"unsafe"
)

// Linux futex(2) operations without FUTEX_PRIVATE_FLAG: on a MAP_SHARED mapping of a file, the
// futex is keyed by the file and offset, so a wake in one process reaches a waiter in another.
const (
	futexWaitOp = 0
	futexWakeOp = 1
)

// haveFutex says whether an offer's owner can sleep on its wake word (futexWait on its wakeWord).
const haveFutex = true

// futexWait sleeps until a futexWake on addr, a change of *addr from val, a signal, or d has
// passed, whichever comes first. Any return is only a reason to look again.
func futexWait(addr *uint32, val uint32, d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_, _, _ = syscall.Syscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWaitOp, uintptr(val),
		uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// futexWake wakes every waiter on addr, in any process.
func futexWake(addr *uint32) {
	_, _, _ = syscall.Syscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWakeOp, 1<<30, 0, 0, 0)
}
