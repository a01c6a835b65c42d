package powerfs

import (
	"fmt"
	"syscall"
)

// Op is a kind of file system operation the layer counts and can fail.
type Op uint8

// Operations. Write counts write(2) calls that reach the layer (a large write may arrive in
// pieces); Fsync counts fsync and fdatasync of files and of directories.
const (
	OpWrite Op = iota
	OpFsync
	OpRename
	OpCreate
	OpMkdir
	OpLink
	OpUnlink
	OpRmdir
	OpTruncate
	numOps
)

var opNames = [numOps]string{"write", "fsync", "rename", "create", "mkdir", "link", "unlink", "rmdir", "truncate"}

func (o Op) String() string {
	if o < numOps {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Ops lists every Op, for sweeps.
func Ops() []Op {
	out := make([]Op, numOps)
	for i := range out {
		out[i] = Op(i)
	}
	return out
}

// Counts holds how many operations of each kind reached the layer since it was mounted.
type Counts [numOps]int

// DataMode is what a power cut keeps of pending file contents.
type DataMode uint8

// Data modes.
const (
	DataNone    DataMode = iota // every unsynced write is lost
	DataAll                     // every write reached the disk
	DataSectors                 // each changed 512-byte sector survives or not, at random
	DataPrefix                  // the writes up to a random point (in write order), the last possibly torn
)

func (d DataMode) String() string {
	return [...]string{"data-none", "data-all", "data-sectors", "data-prefix"}[d]
}

// MetaMode is what a power cut keeps of pending directory operations.
type MetaMode uint8

// Metadata modes.
const (
	MetaNone   MetaMode = iota // every directory operation not made durable by an fsync is lost
	MetaAll                    // every directory operation reached the disk
	MetaSubset                 // a random subset, closed under the model's dependencies
	MetaPrefix                 // the operations up to a random point, in order (a journal)
)

func (m MetaMode) String() string {
	return [...]string{"meta-none", "meta-all", "meta-subset", "meta-prefix"}[m]
}

// Cut says what a power cut keeps of what is pending. Seed drives the random modes.
type Cut struct {
	Data DataMode
	Meta MetaMode
	Seed int64
}

func (c Cut) String() string { return fmt.Sprintf("%v/%v/seed=%d", c.Data, c.Meta, c.Seed) }

// Cuts returns one Cut of every combination of modes, seeded from seed.
func Cuts(seed int64) []Cut {
	var out []Cut
	for d := DataNone; d <= DataPrefix; d++ {
		for m := MetaNone; m <= MetaPrefix; m++ {
			out = append(out, Cut{Data: d, Meta: m, Seed: seed + int64(len(out))})
		}
	}
	return out
}

// Fault makes the N-th operation of kind Op (counted from 1 since the mount, or since the
// fault was set, see FS.SetFaults) fail with Err (EIO or ENOSPC). Path, if set, restricts the
// fault to operations on that path (relative to the mount point; the new name of a rename or
// link, the file of a write or fsync); counting then covers only those.
type Fault struct {
	Op   Op
	N    int
	Err  syscall.Errno
	Path string
}

func (f Fault) String() string {
	s := fmt.Sprintf("%v #%d -> %v", f.Op, f.N, f.Err)
	if f.Path != "" {
		s += " on " + f.Path
	}
	return s
}

// Lie makes fsyncs of the paths it matches succeed without making anything durable: a planted
// missing fsync. Match gets the path relative to the mount point and whether it is a directory.
// Only the first Count matching fsyncs lie (0: every one).
type Lie struct {
	Match func(path string, dir bool) bool
	Count int
}

// Config is the model a mount implements. The zero value is the strict model.
type Config struct {
	// SyncNewFileEntry makes an fsync of a file also make durable the directory operations that
	// gave it its names (ext4's behaviour in practice for a file's creating fsync, not a POSIX
	// promise). Off by default: only an fsync of the directory makes an entry durable.
	SyncNewFileEntry bool
	// Budget, if positive, is the disk size in bytes: a write or extension that would make the
	// files' contents exceed it fails with ENOSPC.
	Budget int64
}
