package powerfs

import (
	"context"
	"path"
	"sort"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// SyncfsName is a name the layer answers in its root directory (it is never listed): an fsync
// of it makes everything pending durable, as syncfs(2) does. The kernel does not forward
// syncfs(2) to a FUSE file system, so a process that wants its syncfs calls to count calls
// InterceptSyncfs, which turns each into an fsync of this file.
const SyncfsName = ".powerfs-syncfs"

// node is the go-fuse face of one inode. Several nodes may share an inode.
type node struct {
	fs.Inode
	fsys *FS
	in   *inode
}

var (
	_ fs.NodeLookuper   = (*node)(nil)
	_ fs.NodeGetattrer  = (*node)(nil)
	_ fs.NodeSetattrer  = (*node)(nil)
	_ fs.NodeOpener     = (*node)(nil)
	_ fs.NodeCreater    = (*node)(nil)
	_ fs.NodeMkdirer    = (*node)(nil)
	_ fs.NodeUnlinker   = (*node)(nil)
	_ fs.NodeRmdirer    = (*node)(nil)
	_ fs.NodeRenamer    = (*node)(nil)
	_ fs.NodeLinker     = (*node)(nil)
	_ fs.NodeReader     = (*node)(nil)
	_ fs.NodeWriter     = (*node)(nil)
	_ fs.NodeFsyncer    = (*node)(nil)
	_ fs.NodeFlusher    = (*node)(nil)
	_ fs.NodeReaddirer  = (*node)(nil)
	_ fs.NodeStatfser   = (*node)(nil)
	_ fs.NodeAllocater  = (*node)(nil)
	_ fs.NodeOpendirer  = (*node)(nil)
	_ fs.NodeSymlinker  = (*node)(nil)
	_ fs.NodeReadlinker = (*node)(nil)
)

func (n *node) path(name string) string {
	p := n.Path(nil)
	if name == "" {
		return p
	}
	return path.Join(p, name)
}

func (f *FS) attr(in *inode, out *fuse.Attr) {
	out.Ino = in.ino
	out.Mode = in.mode
	if in.isDir() {
		out.Nlink = 2
		out.Size = 4096
	} else {
		out.Nlink = uint32(max(in.nlink, 0))
		out.Size = uint64(len(in.live))
	}
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = 4096
	out.SetTimes(nil, &in.mtime, &in.mtime)
}

func (n *node) child(ctx context.Context, in *inode, out *fuse.EntryOut) *fs.Inode {
	n.fsys.attr(in, &out.Attr)
	return n.NewInode(ctx, &node{fsys: n.fsys, in: in}, fs.StableAttr{Mode: in.mode & syscall.S_IFMT, Ino: in.ino})
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		return nil, syscall.EIO
	}
	if n.in == f.m.root && name == SyncfsName {
		return n.child(ctx, f.syncfsNode, out), 0
	}
	c := n.in.liveEnt[name]
	if c == nil {
		return nil, syscall.ENOENT
	}
	return n.child(ctx, c, out), 0
}

func (n *node) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attr(n.in, &out.Attr)
	return 0
}

func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		return syscall.EIO
	}
	if m, ok := in.GetMode(); ok {
		n.in.mode = n.in.mode&syscall.S_IFMT | m&0o7777
	}
	if sz, ok := in.GetSize(); ok && !n.in.isDir() {
		if errno := f.check(OpTruncate, n.path(""), int64(sz)-int64(len(n.in.live))); errno != 0 {
			return errno
		}
		f.m.truncate(n.in, int64(sz))
	}
	if mt, ok := in.GetMTime(); ok {
		n.in.mtime = mt
	}
	f.attr(n.in, &out.Attr)
	return 0
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		return nil, 0, syscall.EIO
	}
	if flags&syscall.O_TRUNC != 0 && len(n.in.live) > 0 {
		if errno := f.check(OpTruncate, n.path(""), 0); errno != 0 {
			return nil, 0, errno
		}
		f.m.truncate(n.in, 0)
	}
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

func (n *node) Opendir(ctx context.Context) syscall.Errno { return 0 }

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		return nil, nil, 0, syscall.EIO
	}
	if c := n.in.liveEnt[name]; c != nil {
		if flags&syscall.O_EXCL != 0 {
			return nil, nil, 0, syscall.EEXIST
		}
		if c.isDir() {
			return nil, nil, 0, syscall.EISDIR
		}
		if flags&syscall.O_TRUNC != 0 && len(c.live) > 0 {
			f.m.truncate(c, 0)
		}
		return n.child(ctx, c, out), nil, fuse.FOPEN_KEEP_CACHE, 0
	}
	if errno := f.check(OpCreate, n.path(name), 0); errno != 0 {
		return nil, nil, 0, errno
	}
	c := f.m.newInode(syscall.S_IFREG | mode&0o7777)
	f.m.dirOp(OpCreate, change{n.in, name, c})
	return n.child(ctx, c, out), nil, fuse.FOPEN_KEEP_CACHE, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		return nil, syscall.EIO
	}
	if n.in.liveEnt[name] != nil {
		return nil, syscall.EEXIST
	}
	if errno := f.check(OpMkdir, n.path(name), 0); errno != 0 {
		return nil, errno
	}
	c := f.m.newInode(syscall.S_IFDIR | mode&0o7777)
	f.m.dirOp(OpMkdir, change{n.in, name, c})
	return n.child(ctx, c, out), 0
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.ENOTSUP
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) { return nil, syscall.EINVAL }

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		return syscall.EIO
	}
	c := n.in.liveEnt[name]
	if c == nil {
		return syscall.ENOENT
	}
	if c.isDir() {
		return syscall.EISDIR
	}
	if errno := f.check(OpUnlink, n.path(name), 0); errno != 0 {
		return errno
	}
	f.m.dirOp(OpUnlink, change{n.in, name, nil})
	return 0
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		return syscall.EIO
	}
	c := n.in.liveEnt[name]
	if c == nil {
		return syscall.ENOENT
	}
	if !c.isDir() {
		return syscall.ENOTDIR
	}
	if len(c.liveEnt) > 0 {
		return syscall.ENOTEMPTY
	}
	if errno := f.check(OpRmdir, n.path(name), 0); errno != 0 {
		return errno
	}
	f.m.dirOp(OpRmdir, change{n.in, name, nil})
	return 0
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	f := n.fsys
	np := newParent.(*node)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		return syscall.EIO
	}
	if flags&^uint32(1) != 0 { // only RENAME_NOREPLACE
		return syscall.EINVAL
	}
	c := n.in.liveEnt[name]
	if c == nil {
		return syscall.ENOENT
	}
	if old := np.in.liveEnt[newName]; old != nil {
		if flags&1 != 0 {
			return syscall.EEXIST
		}
		if old == c {
			return 0
		}
		switch {
		case old.isDir() && !c.isDir():
			return syscall.EISDIR
		case !old.isDir() && c.isDir():
			return syscall.ENOTDIR
		case old.isDir() && len(old.liveEnt) > 0:
			return syscall.ENOTEMPTY
		}
	}
	if errno := f.check(OpRename, np.path(newName), 0); errno != 0 {
		return errno
	}
	f.m.dirOp(OpRename, change{n.in, name, nil}, change{np.in, newName, c})
	return 0
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	f := n.fsys
	t := target.(*node)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		return nil, syscall.EIO
	}
	if t.in.isDir() {
		return nil, syscall.EPERM
	}
	if n.in.liveEnt[name] != nil {
		return nil, syscall.EEXIST
	}
	if errno := f.check(OpLink, n.path(name), 0); errno != 0 {
		return nil, errno
	}
	f.m.dirOp(OpLink, change{n.in, name, t.in})
	return n.child(ctx, t.in, out), 0
}

func (n *node) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		return nil, syscall.EIO
	}
	live := n.in.live
	if off >= int64(len(live)) {
		return fuse.ReadResultData(nil), 0
	}
	k := copy(dest, live[off:])
	return fuse.ReadResultData(dest[:k]), 0
}

func (n *node) Write(ctx context.Context, fh fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		return 0, syscall.EIO
	}
	grow := off + int64(len(data)) - int64(len(n.in.live))
	if errno := f.check(OpWrite, n.path(""), grow); errno != 0 {
		return 0, errno
	}
	f.m.write(n.in, off, data)
	return uint32(len(data)), 0
}

func (n *node) Allocate(ctx context.Context, fh fs.FileHandle, off uint64, size uint64, mode uint32) syscall.Errno {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		return syscall.EIO
	}
	if mode != 0 {
		return syscall.EOPNOTSUPP
	}
	end := int64(off + size)
	if end <= int64(len(n.in.live)) {
		return 0
	}
	if errno := f.check(OpTruncate, n.path(""), end-int64(len(n.in.live))); errno != 0 {
		return errno
	}
	f.m.truncate(n.in, end)
	return 0
}

func (n *node) Flush(ctx context.Context, fh fs.FileHandle) syscall.Errno { return 0 }

func (n *node) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		return syscall.EIO
	}
	if n.in == f.syncfsNode {
		f.syncfs++
		f.m.syncAll()
		return 0
	}
	p := n.path("")
	if errno := f.check(OpFsync, p, 0); errno != 0 {
		if !n.in.isDir() {
			// Linux marks the pages of a failed writeback clean: they are never written, and
			// a later fsync that succeeds says nothing about them.
			f.lost += f.m.dropData(n.in)
		}
		return errno
	}
	if f.lie.Match != nil && f.lie.Match(p, n.in.isDir()) && (f.lie.Count == 0 || f.lied < f.lie.Count) {
		f.lied++
		return 0
	}
	if n.in.isDir() {
		f.m.syncDir(n.in)
	} else {
		f.m.syncFile(n.in, f.cfg.SyncNewFileEntry)
	}
	return 0
}

func (n *node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen {
		return nil, syscall.EIO
	}
	ents := make([]fuse.DirEntry, 0, len(n.in.liveEnt))
	for name, c := range n.in.liveEnt {
		ents = append(ents, fuse.DirEntry{Name: name, Mode: c.mode & syscall.S_IFMT, Ino: c.ino})
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name < ents[j].Name })
	return fs.NewListDirStream(ents), 0
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	total := uint64(1 << 30)
	if f.cfg.Budget > 0 {
		total = uint64(f.cfg.Budget)
	}
	used := uint64(max(f.m.used, 0))
	out.Bsize = 4096
	out.Frsize = 4096
	out.Blocks = total / 4096
	out.Bfree = (total - min(used, total)) / 4096
	out.Bavail = out.Bfree
	out.Files = 1 << 20
	out.Ffree = 1 << 20
	out.NameLen = 255
	return 0
}
