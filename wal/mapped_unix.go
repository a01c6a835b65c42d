//go:build unix

package wal

import (
	"os"
	"runtime/debug"
	"syscall"
)

// mapFile maps f's first size bytes read-only and shared; nil if it cannot.
func mapFile(f *os.File, size int) []byte {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	var m []byte
	if err := rc.Control(func(fd uintptr) {
		m, err = syscall.Mmap(int(fd), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	}); err != nil || m == nil {
		return nil
	}
	return m
}

func unmapFile(m []byte) {
	if m != nil {
		_ = syscall.Munmap(m)
	}
}

// copyMapped copies m into dst. It reports false, instead of the process dying of SIGBUS, if the
// mapped file was cut short under the mapping.
func copyMapped(dst, m []byte) (ok bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	copy(dst, m)
	return true
}
