package lockfs

import "syscall"

// yieldCPU gives the CPU to another runnable thread on it, if there is one (sched_yield(2)).
func yieldCPU() {
	_, _, _ = syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0)
}
