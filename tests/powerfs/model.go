package powerfs

import (
	"math/rand/v2"
	"slices"
	"sort"
	"syscall"
	"time"
)

// SectorSize is the unit a torn write keeps or loses (DataSectors).
const SectorSize = 512

// inode is one file or directory of the model. Every field is guarded by FS.mu.
type inode struct {
	ino  uint64
	mode uint32 // S_IFREG or S_IFDIR | permission bits

	// Files.
	live    []byte // what reads see (the page cache)
	durable []byte // what is on the disk
	nlink   int    // live links

	// Directories.
	liveEnt map[string]*inode // what lookups see (the dentry cache)
	durEnt  map[string]*inode // what is on the disk

	mtime time.Time
}

func (in *inode) isDir() bool { return in.mode&syscall.S_IFMT == syscall.S_IFDIR }

// dataOp is one pending change of a file's contents, in write order.
type dataOp struct {
	seq   uint64
	in    *inode
	off   int64
	data  []byte // a write of these bytes at off
	trunc bool   // or a truncation (or extension with zeros) to size
	size  int64
}

// apply applies the op to buf (a file's contents) and returns the result.
func (op *dataOp) apply(buf []byte) []byte {
	if op.trunc {
		return resize(buf, op.size)
	}
	end := op.off + int64(len(op.data))
	if int64(len(buf)) < end {
		buf = resize(buf, end)
	}
	copy(buf[op.off:], op.data)
	return buf
}

// sectors returns the sectors the op changes in a file of the given size before it.
func (op *dataOp) sectors(before int64) (first, last int64) {
	if op.trunc {
		lo, hi := min(before, op.size), max(before, op.size)
		return lo / SectorSize, (hi + SectorSize - 1) / SectorSize
	}
	return op.off / SectorSize, (op.off + int64(len(op.data)) + SectorSize - 1) / SectorSize
}

func resize(buf []byte, size int64) []byte {
	if int64(len(buf)) >= size {
		return buf[:size]
	}
	return append(buf, make([]byte, size-int64(len(buf)))...)
}

// change is one directory entry change: name in dir now names to (nil: removed).
type change struct {
	dir  *inode
	name string
	to   *inode
}

type entryKey struct {
	dir  *inode
	name string
}

// metaOp is one pending directory operation (create, mkdir, link, unlink, rmdir, rename). Its
// changes are durable together or not at all (a rename is one journal transaction).
type metaOp struct {
	seq     uint64
	kind    Op
	changes []change
}

func (op *metaOp) touches(dir *inode) bool {
	for _, c := range op.changes {
		if c.dir == dir {
			return true
		}
	}
	return false
}

// model is the durability state of the file system: every inode's live and durable contents,
// and the pending changes between them. Guarded by FS.mu.
type model struct {
	root    *inode
	nextIno uint64
	seq     uint64
	data    []*dataOp // pending data changes, in write order
	meta    []*metaOp // pending directory operations, in order
	used    int64     // bytes of live file contents
}

func newModel() *model {
	m := &model{nextIno: 1 << 20}
	m.root = m.newInode(syscall.S_IFDIR | 0o755)
	return m
}

func (m *model) newInode(mode uint32) *inode {
	m.nextIno++
	in := &inode{ino: m.nextIno, mode: mode, mtime: time.Now()}
	if in.isDir() {
		in.liveEnt = map[string]*inode{}
		in.durEnt = map[string]*inode{}
	}
	return in
}

// write records a write of data at off into in's page cache.
func (m *model) write(in *inode, off int64, data []byte) {
	m.seq++
	op := &dataOp{seq: m.seq, in: in, off: off, data: slices.Clone(data)}
	before := int64(len(in.live))
	in.live = op.apply(in.live)
	m.used += int64(len(in.live)) - before
	m.data = append(m.data, op)
	in.mtime = time.Now()
}

// truncate records a size change of in.
func (m *model) truncate(in *inode, size int64) {
	m.seq++
	op := &dataOp{seq: m.seq, in: in, trunc: true, size: size}
	before := int64(len(in.live))
	in.live = op.apply(in.live)
	m.used += int64(len(in.live)) - before
	m.data = append(m.data, op)
	in.mtime = time.Now()
}

// dirOp applies a directory operation to the live tree and records it as pending.
func (m *model) dirOp(kind Op, changes ...change) {
	m.seq++
	for _, c := range changes {
		old := c.dir.liveEnt[c.name]
		if old != nil && !old.isDir() {
			old.nlink--
		}
		if c.to == nil {
			delete(c.dir.liveEnt, c.name)
		} else {
			c.dir.liveEnt[c.name] = c.to
			if !c.to.isDir() {
				c.to.nlink++
			}
		}
		c.dir.mtime = time.Now()
	}
	m.meta = append(m.meta, &metaOp{seq: m.seq, kind: kind, changes: changes})
}

// persistData makes the pending data ops for which keep is true durable, in write order, and
// removes them from the pending list.
func (m *model) persistData(keep func(*dataOp) bool) int {
	n := 0
	rest := m.data[:0]
	for _, op := range m.data {
		if keep(op) {
			op.in.durable = op.apply(op.in.durable)
			n++
		} else {
			rest = append(rest, op)
		}
	}
	clear(m.data[len(rest):])
	m.data = rest
	return n
}

// dropData forgets in's pending data ops without making them durable: after a failed fsync the
// kernel marks the pages clean, so they are never written (reads still see them).
func (m *model) dropData(in *inode) int {
	n := 0
	rest := m.data[:0]
	for _, op := range m.data {
		if op.in == in {
			n++
			continue
		}
		rest = append(rest, op)
	}
	clear(m.data[len(rest):])
	m.data = rest
	return n
}

// closeMeta returns, for the pending directory ops marked in sel, the set closed under the
// model's dependencies: an op is durable only together with every earlier pending op on one of
// the same (directory, name) entries.
func (m *model) closeMeta(sel []bool) []bool {
	need := map[entryKey]bool{}
	out := make([]bool, len(m.meta))
	for i := len(m.meta) - 1; i >= 0; i-- {
		op := m.meta[i]
		take := sel[i]
		if !take {
			for _, c := range op.changes {
				if need[entryKey{c.dir, c.name}] {
					take = true
					break
				}
			}
		}
		if take {
			out[i] = true
			for _, c := range op.changes {
				need[entryKey{c.dir, c.name}] = true
			}
		}
	}
	return out
}

// persistMeta makes the selected pending directory ops (closed under dependencies) durable.
func (m *model) persistMeta(sel []bool) int {
	take := m.closeMeta(sel)
	n := 0
	rest := m.meta[:0]
	for i, op := range m.meta {
		if !take[i] {
			rest = append(rest, op)
			continue
		}
		for _, c := range op.changes {
			if c.to == nil {
				delete(c.dir.durEnt, c.name)
			} else {
				c.dir.durEnt[c.name] = c.to
			}
		}
		n++
	}
	clear(m.meta[len(rest):])
	m.meta = rest
	return n
}

// syncFile is a successful fsync of a file: its pending data is durable. With entry, so are
// the pending directory ops that gave it a name (and what they depend on).
func (m *model) syncFile(in *inode, entry bool) {
	m.persistData(func(op *dataOp) bool { return op.in == in })
	if entry {
		sel := make([]bool, len(m.meta))
		for i, op := range m.meta {
			for _, c := range op.changes {
				if c.to == in {
					sel[i] = true
				}
			}
		}
		m.persistMeta(sel)
	}
}

// syncDir is a successful fsync of a directory: every pending op that changes one of its
// entries is durable (with what it depends on).
func (m *model) syncDir(dir *inode) {
	sel := make([]bool, len(m.meta))
	for i, op := range m.meta {
		sel[i] = op.touches(dir)
	}
	m.persistMeta(sel)
}

// syncAll is syncfs(2): everything pending is durable.
func (m *model) syncAll() {
	m.persistData(func(*dataOp) bool { return true })
	m.persistMeta(slices.Repeat([]bool{true}, len(m.meta)))
}

// CutReport says what a power cut kept of what was pending.
type CutReport struct {
	Cut         Cut
	DataPending int // pending data changes (writes, truncations) at the cut
	DataKept    int // of those, kept whole
	DataTorn    int // kept in part (some sectors)
	MetaPending int // pending directory operations at the cut
	MetaKept    int // of those, kept
}

// cut decides what of the pending state survives a power cut and makes it durable. Afterwards
// the durable trees are all that is left.
func (m *model) cut(c Cut) CutReport {
	rng := rand.New(rand.NewPCG(uint64(c.Seed), uint64(c.Seed)>>1^0x9e3779b97f4a7c15))
	rep := CutReport{Cut: c, DataPending: len(m.data), MetaPending: len(m.meta)}
	switch c.Data {
	case DataNone:
	case DataAll:
		rep.DataKept = m.persistData(func(*dataOp) bool { return true })
	case DataPrefix:
		k := rng.IntN(len(m.data) + 1)
		var torn *dataOp
		if k < len(m.data) && rng.IntN(2) == 0 {
			torn = m.data[k] // the write the power cut interrupted: a prefix of its sectors
		}
		cutSeq := uint64(0)
		if k > 0 {
			cutSeq = m.data[k-1].seq
		}
		if torn != nil {
			before := int64(len(torn.in.durable))
			first, last := torn.sectors(before)
			if !torn.trunc && last > first {
				keep := first + rng.Int64N(last-first)
				end := min(keep*SectorSize, torn.off+int64(len(torn.data)))
				if end > torn.off {
					part := &dataOp{in: torn.in, off: torn.off, data: torn.data[:end-torn.off]}
					torn.in.durable = part.apply(torn.in.durable)
					rep.DataTorn++
				}
			}
		}
		rep.DataKept = m.persistData(func(op *dataOp) bool { return op.seq <= cutSeq })
	case DataSectors:
		rep.DataKept, rep.DataTorn = m.cutSectors(rng)
	}
	sel := make([]bool, len(m.meta))
	switch c.Meta {
	case MetaNone:
	case MetaAll:
		for i := range sel {
			sel[i] = true
		}
	case MetaSubset:
		for i := range sel {
			sel[i] = rng.IntN(2) == 0
		}
	case MetaPrefix:
		k := rng.IntN(len(sel) + 1)
		for i := range k {
			sel[i] = true
		}
	}
	rep.MetaKept = m.persistMeta(sel)
	m.data = nil
	m.meta = nil
	return rep
}

// cutSectors keeps, per file with pending data, each changed sector with probability 1/2: its
// contents are then the newest written, else the durable ones. A file grows to the end of the
// last kept sector past its durable size (gaps read as zeros); a pending shrink is kept or not.
func (m *model) cutSectors(rng *rand.Rand) (kept, torn int) {
	byInode := map[*inode][]*dataOp{}
	var order []*inode
	for _, op := range m.data {
		if byInode[op.in] == nil {
			order = append(order, op.in)
		}
		byInode[op.in] = append(byInode[op.in], op)
	}
	sort.Slice(order, func(i, j int) bool { return order[i].ino < order[j].ino })
	for _, in := range order {
		ops := byInode[in]
		full := slices.Clone(in.durable)
		dirty := map[int64]bool{}
		for _, op := range ops {
			first, last := op.sectors(int64(len(full)))
			for s := first; s < last; s++ {
				dirty[s] = true
			}
			full = op.apply(full)
		}
		old := in.durable
		size := int64(len(old))
		if int64(len(full)) < size && rng.IntN(2) == 0 {
			size = int64(len(full))
		}
		secs := make([]int64, 0, len(dirty))
		for s := range dirty {
			secs = append(secs, s)
		}
		slices.Sort(secs)
		var keep []int64
		for _, s := range secs {
			if rng.IntN(2) == 0 {
				keep = append(keep, s)
				if end := min((s+1)*SectorSize, int64(len(full))); end > size {
					size = end
				}
			}
		}
		out := resize(slices.Clone(old), size)
		for _, s := range keep {
			lo, hi := s*SectorSize, min((s+1)*SectorSize, size, int64(len(full)))
			if lo < hi {
				copy(out[lo:hi], full[lo:hi])
			}
		}
		in.durable = out
		switch {
		case len(keep) == len(secs):
			kept += len(ops)
		case len(keep) > 0:
			torn += len(ops)
		}
	}
	return kept, torn
}
