//go:build !linux

package lockfs

// yieldCPU does nothing where sched_yield(2) has no system call number in package syscall.
func yieldCPU() {}
