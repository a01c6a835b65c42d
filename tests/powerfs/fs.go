package powerfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// FS is one mount of the layer: a file system at a mount point whose disk is a backing
// directory. The backing directory is read when the layer is mounted and written when it goes
// away (Cut, Unmount); in between, it must not be touched. All methods may be called
// concurrently with file system traffic.
type FS struct {
	mnt, backing string
	cfg          Config
	server       *fuse.Server

	mu         sync.Mutex
	m          *model // guarded by mu
	syncfsNode *inode // guarded by mu
	frozen     bool   // guarded by mu; a cut is under way: every operation fails with EIO
	gone       bool   // guarded by mu; unmounted
	counts     Counts // guarded by mu
	faults     []armed
	lie        Lie // guarded by mu
	lied       int // guarded by mu; fsyncs that lied
	lost       int // guarded by mu; pending writes dropped by failed fsyncs
	syncfs     int // guarded by mu; syncfs calls seen
	failed     []Fault
}

type armed struct {
	Fault
	seen int // matching operations so far
}

// Mount mounts the layer at mnt (an existing, empty directory) over the backing directory
// (which holds the "disk": its files are all durable). It needs root and /dev/fuse (see
// Available). The caller must Cut or Unmount it; Unmount is safe to call more than once.
func Mount(backing, mnt string, cfg Config) (*FS, error) {
	f := &FS{mnt: mnt, backing: backing, cfg: cfg, m: newModel()}
	if err := f.load(); err != nil {
		return nil, fmt.Errorf("powerfs: load %s: %w", backing, err)
	}
	f.syncfsNode = f.m.newInode(syscall.S_IFREG | 0o600)
	root := &node{fsys: f, in: f.m.root}
	timeout := time.Second
	// The kernel's page cache must stay the one view every process reads, as on a local file
	// system: only the kernel changes the live contents while mounted (a cut unmounts), so
	// nothing needs invalidating. Left to FUSE's defaults, an open by another process
	// (no FOPEN_KEEP_CACHE, see node.Open) or an mtime seen to change (automatic invalidation)
	// drops the cached pages, and a read that refills a page while a write is still on its way
	// to this server caches the bytes before the write, for every process, until the next
	// invalidation: a mapping then shows a state file one commit old after its write returned.
	// One difference stays: a write this layer refuses (a Fault) has already put its bytes in
	// the kernel's pages, which are then not up to date; a mapping shows them until a read(2)
	// of the page fetches it again (with FUSE's defaults, also until the next open). On ext4 a
	// failed write(2) leaves the cache as it was. The engine clears what it wrote on a failed
	// write of the state file and of the commit board (WriteOrClear).
	srv, err := gofs.Mount(mnt, root, &gofs.Options{
		MountOptions: fuse.MountOptions{
			ExplicitDataCacheControl: true,
			DirectMount:              true,
			DirectMountStrict:        true,
			FsName:                   "powerfs",
			Name:                     "powerfs",
			MaxWrite:                 1 << 20,
			DisableXAttrs:            true,
		},
		EntryTimeout: &timeout,
		AttrTimeout:  &timeout,
		RootStableAttr: &gofs.StableAttr{
			Ino: f.m.root.ino,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("powerfs: mount %s: %w", mnt, err)
	}
	f.server = srv
	return f, nil
}

// Available reports why the layer cannot be mounted here ("" if it can): it needs root (to
// mount without a fusermount binary) and /dev/fuse.
func Available() string {
	if os.Geteuid() != 0 {
		return "powerfs needs root (it mounts FUSE directly and bind-mounts boot_id)"
	}
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Sprintf("powerfs needs /dev/fuse: %v", err)
	}
	unix.Close(fd)
	return ""
}

// Dir returns the mount point.
func (f *FS) Dir() string { return f.mnt }

// Path returns the path of rel inside the mount.
func (f *FS) Path(rel string) string { return filepath.Join(f.mnt, rel) }

// SetFaults replaces the armed faults; each counts matching operations from now on.
func (f *FS) SetFaults(faults ...Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = f.faults[:0]
	for _, ft := range faults {
		f.faults = append(f.faults, armed{Fault: ft})
	}
}

// Failed returns the faults that fired so far, each with the path it hit.
func (f *FS) Failed() []Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Fault(nil), f.failed...)
}

// SetLie plants a missing fsync (see Lie); the zero Lie removes it.
func (f *FS) SetLie(l Lie) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lie, f.lied = l, 0
}

// Lied returns how many fsyncs lied since the last SetLie.
func (f *FS) Lied() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lied
}

// Counts returns how many operations of each kind reached the layer since it was mounted.
func (f *FS) Counts() Counts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts
}

// Stats is what the layer saw: pending state, syncfs calls, writes lost to failed fsyncs.
type Stats struct {
	PendingData, PendingMeta, Syncfs, Lost int
}

// Stats returns what the layer holds pending now and what it saw.
func (f *FS) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Stats{len(f.m.data), len(f.m.meta), f.syncfs, f.lost}
}

// check counts an operation and returns the error an armed fault (or the byte budget) makes it
// fail with. grow is how many bytes it adds to the files' contents. REQUIRES: f.mu held.
func (f *FS) check(op Op, path string, grow int64) syscall.Errno {
	f.counts[op]++
	for i := range f.faults {
		a := &f.faults[i]
		if a.Op != op || (a.Path != "" && a.Path != path) {
			continue
		}
		a.seen++
		if a.seen == a.N {
			fired := a.Fault
			fired.Path = path
			f.failed = append(f.failed, fired)
			return a.Err
		}
	}
	if f.cfg.Budget > 0 && grow > 0 && f.m.used+grow > f.cfg.Budget {
		return syscall.ENOSPC
	}
	return 0
}

// Cut is a power cut. REQUIRES: every process that uses the mount is dead (SIGKILLed and
// reaped). The layer keeps what c says of the pending state, unmounts, and leaves in the
// backing directory exactly what survived. The FS is unusable afterwards: mount again.
func (f *FS) Cut(c Cut) (CutReport, error) {
	f.mu.Lock()
	if f.gone {
		f.mu.Unlock()
		return CutReport{}, errors.New("powerfs: cut of an unmounted layer")
	}
	f.frozen = true
	rep := f.m.cut(c)
	f.mu.Unlock()
	return rep, f.finish()
}

// Unmount is a clean shutdown: everything pending is written (as umount does), then the
// backing directory holds the live state. Safe to call again, and after Cut (then a no-op).
func (f *FS) Unmount() error {
	f.mu.Lock()
	if f.gone {
		f.mu.Unlock()
		return nil
	}
	f.frozen = true
	f.m.syncAll()
	f.mu.Unlock()
	return f.finish()
}

// finish unmounts and writes the durable state to the backing directory.
func (f *FS) finish() error {
	f.mu.Lock()
	f.gone = true
	f.mu.Unlock()
	err := f.server.Unmount()
	if err != nil {
		// Something still holds the mount (a process the caller did not kill): detach it, so
		// the test can go on; the processes get errors.
		if derr := unix.Unmount(f.mnt, unix.MNT_DETACH); derr != nil {
			return fmt.Errorf("powerfs: unmount %s: %v; detach: %w", f.mnt, err, derr)
		}
	}
	f.server.Wait()
	if err := f.store(); err != nil {
		return fmt.Errorf("powerfs: write %s: %w", f.backing, err)
	}
	return nil
}

// load reads the backing directory into the model: everything in it is durable.
func (f *FS) load() error {
	links := map[uint64]*inode{}
	var walk func(dir string, in *inode) error
	walk = func(dir string, in *inode) error {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			st := fi.Sys().(*syscall.Stat_t)
			var c *inode
			switch {
			case fi.IsDir():
				c = f.m.newInode(syscall.S_IFDIR | uint32(fi.Mode().Perm()))
				if err := walk(p, c); err != nil {
					return err
				}
			case fi.Mode().IsRegular():
				if c = links[st.Ino]; c == nil {
					b, err := os.ReadFile(p)
					if err != nil {
						return err
					}
					c = f.m.newInode(syscall.S_IFREG | uint32(fi.Mode().Perm()))
					c.live, c.durable = b, append([]byte(nil), b...)
					f.m.used += int64(len(b))
					links[st.Ino] = c
				}
				c.nlink++
			default:
				return fmt.Errorf("%s: only files and directories are supported", p)
			}
			c.mtime = fi.ModTime()
			in.liveEnt[e.Name()] = c
			in.durEnt[e.Name()] = c
		}
		return nil
	}
	return walk(f.backing, f.m.root)
}

// store replaces the backing directory's contents with the durable tree. An inode that no
// durable entry names is gone (a file created, written and fsynced, but never linked durably).
func (f *FS) store() error {
	ents, err := os.ReadDir(f.backing)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(f.backing, e.Name())); err != nil {
			return err
		}
	}
	first := map[*inode]string{}
	var walk func(dir string, in *inode) error
	walk = func(dir string, in *inode) error {
		for name, c := range in.durEnt {
			p := filepath.Join(dir, name)
			if c.isDir() {
				if _, ok := first[c]; ok {
					continue // a directory reached twice (only a kept subset of renames can do that)
				}
				first[c] = p
				if err := os.Mkdir(p, fs.FileMode(c.mode&0o777)); err != nil {
					return err
				}
				if err := walk(p, c); err != nil {
					return err
				}
				continue
			}
			if q, ok := first[c]; ok {
				if err := os.Link(q, p); err != nil {
					return err
				}
				continue
			}
			if err := os.WriteFile(p, c.durable, fs.FileMode(c.mode&0o777)); err != nil {
				return err
			}
			first[c] = p
		}
		return nil
	}
	return walk(f.backing, f.m.root)
}
