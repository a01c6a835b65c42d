package powerfs

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// InterceptSyncfs makes every later syncfs(2) of this process on the mount at mnt count: a
// seccomp filter stops each syncfs call and a supervisor thread of this process fsyncs
// SyncfsName at the mount's root (which makes everything pending durable) before the call goes
// on. Call it once, early; it cannot be undone. Needs Linux on amd64 or arm64 and a kernel with
// seccomp user notification (5.5 or later).
func InterceptSyncfs(mnt string) error {
	var arch uint32
	switch runtime.GOARCH {
	case "amd64":
		arch = unix.AUDIT_ARCH_X86_64
	case "arm64":
		arch = unix.AUDIT_ARCH_AARCH64
	default:
		return fmt.Errorf("powerfs: syncfs interception not supported on %s", runtime.GOARCH)
	}
	magic, err := os.OpenFile(filepath.Join(mnt, SyncfsName), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("powerfs: %w", err)
	}
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 4}, // seccomp_data.arch
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 3, K: arch},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: unix.SYS_SYNCFS},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_USER_NOTIF},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		magic.Close()
		return fmt.Errorf("powerfs: no_new_privs: %w", err)
	}
	flags := uintptr(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH)
	fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		magic.Close()
		return fmt.Errorf("powerfs: seccomp: %w", errno)
	}
	mntAbs, _ := filepath.Abs(mnt)
	go superviseSyncfs(int(fd), magic, mntAbs)
	return nil
}

// superviseSyncfs answers the filter's notifications for the life of the process.
func superviseSyncfs(fd int, magic *os.File, mnt string) {
	runtime.LockOSThread()
	var req [80]byte // struct seccomp_notif
	var resp [24]byte
	for {
		clear(req[:])
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&req[0]))); errno != 0 {
			if errno == unix.EINTR || errno == unix.ENOENT {
				continue
			}
			fmt.Fprintf(os.Stderr, "powerfs: syncfs supervisor: %v\n", errno)
			return
		}
		id := binary.NativeEndian.Uint64(req[0:8])
		argFd := binary.NativeEndian.Uint64(req[32:40])
		if target, err := os.Readlink("/proc/self/fd/" + strconv.FormatUint(argFd, 10)); err == nil &&
			(target == mnt || strings.HasPrefix(target, mnt+"/")) {
			if err := magic.Sync(); err != nil {
				fmt.Fprintf(os.Stderr, "powerfs: syncfs supervisor: %v\n", err)
			}
		}
		binary.NativeEndian.PutUint64(resp[0:8], id)
		binary.NativeEndian.PutUint64(resp[8:16], 0)
		binary.NativeEndian.PutUint32(resp[16:20], 0)
		binary.NativeEndian.PutUint32(resp[20:24], unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE)
		unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp[0])))
	}
}
