package powerfs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/uuid"
	"golang.org/x/sys/unix"
)

// BootIDPath is where Linux publishes the boot id (txtdb reads it to tell a reboot from a
// restart).
const BootIDPath = "/proc/sys/kernel/random/boot_id"

// Environment variables Main reads in a process started by Boot.Command.
const (
	envBootFile = "POWERFS_BOOT_ID_FILE" // bind-mount this file over BootIDPath
	envSyncfs   = "POWERFS_SYNCFS"       // InterceptSyncfs on this mount point
	envExec     = "POWERFS_EXEC"         // then exec this program (the remaining arguments are its)
)

// Boot is one (simulated) boot of the host: the processes it starts see its boot id. The zero
// Boot is the host's current boot: processes run in the caller's mount namespace and see the
// real boot id (the path a store takes when nothing tells it of the reboot).
type Boot struct {
	ID   string // the boot id the processes see
	file string // the file bind-mounted over BootIDPath; "" for the host's boot
}

// NewBoot returns a fresh boot whose id file lives in dir.
func NewBoot(dir string) (*Boot, error) {
	id := uuid.NewString()
	f := filepath.Join(dir, "boot_id-"+id)
	if err := os.WriteFile(f, []byte(id+"\n"), 0o444); err != nil {
		return nil, err
	}
	return &Boot{ID: id, file: f}, nil
}

// NoBootID returns a boot whose processes find no boot id (BootIDPath reads empty), as on a
// host that gives none: a store can then not tell a reboot from a restart. Its file lives in dir.
func NoBootID(dir string) (*Boot, error) {
	f := filepath.Join(dir, "boot_id-none")
	if err := os.WriteFile(f, nil, 0o444); err != nil {
		return nil, err
	}
	return &Boot{file: f}, nil
}

// HostBoot returns the host's current boot: no namespace, the real boot id.
func HostBoot() (*Boot, error) {
	b, err := os.ReadFile(BootIDPath)
	if err != nil {
		return nil, err
	}
	return &Boot{ID: strings.TrimSpace(string(b))}, nil
}

// Command returns a command that runs name with args under this boot: for a fresh boot in a
// mount namespace of its own (private propagation, so nothing leaks back) where BootIDPath
// reads b.ID. With syncfsMnt set, the process's syncfs calls on that mount count (see
// InterceptSyncfs). The command runs through the current executable, which must call Main
// first thing (in TestMain for a test binary); name may be the current executable itself.
// The command is its own process group: KillGroup kills it whole.
func (b *Boot) Command(syncfsMnt, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = os.Environ()
	b.wrap(syncfsMnt, cmd)
	return cmd
}

// Wrap changes cmd (built by exec.Command, not yet started) to run under this boot, as Command
// does, with its syncfs calls left alone: the hook a procharness.Options.Wrap takes, so that
// harness workers (txtdb-worker) start in the boot. The process started is the current
// executable, which execs cmd's program from Main: its PID stays the worker's.
func (b *Boot) Wrap(cmd *exec.Cmd) { b.wrap("", cmd) }

func (b *Boot) wrap(syncfsMnt string, cmd *exec.Cmd) {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	name := cmd.Path
	cmd.Path = self
	cmd.Args = append([]string{name}, cmd.Args[1:]...)
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, envExec+"="+name)
	if b.file != "" {
		cmd.Env = append(cmd.Env, envBootFile+"="+b.file)
	}
	if syncfsMnt != "" {
		cmd.Env = append(cmd.Env, envSyncfs+"="+syncfsMnt)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if b.file != "" {
		// Go makes every mount of the new namespace private (MS_REC|MS_PRIVATE on /) before exec.
		cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS
	}
}

// KillGroup SIGKILLs the command's whole process group and reaps it.
func KillGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
}

// Main sets up a process started by Boot.Command and returns; a no-op in any other process.
// It bind-mounts the boot id, intercepts syncfs, then execs the program asked for unless that
// is the current executable. On failure it exits with status 3 and says why on stderr.
func Main() {
	target := os.Getenv(envExec)
	if target == "" {
		return
	}
	fail := func(err error) {
		fmt.Fprintf(os.Stderr, "powerfs: %v\n", err)
		os.Exit(3)
	}
	if f := os.Getenv(envBootFile); f != "" {
		if err := unix.Mount(f, BootIDPath, "", unix.MS_BIND, ""); err != nil {
			fail(fmt.Errorf("bind-mount %s over %s: %w", f, BootIDPath, err))
		}
	}
	mnt := os.Getenv(envSyncfs)
	for _, k := range []string{envExec, envBootFile, envSyncfs} {
		os.Unsetenv(k)
	}
	self, _ := os.Executable()
	if p, err := exec.LookPath(target); err == nil {
		target = p
	}
	if same(self, target) {
		if mnt != "" {
			if err := InterceptSyncfs(mnt); err != nil {
				fail(err)
			}
		}
		return
	}
	if mnt != "" {
		fail(fmt.Errorf("syncfs interception needs the program to be the current executable, not %s", target))
	}
	fail(syscall.Exec(target, os.Args, os.Environ()))
}

func same(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}
