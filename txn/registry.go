package txn

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/txtdb/txtdb/lockfs"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// The process registry (PART OF THE FORMAT): every writable handle holds an exclusive flock on its
// own file .txtdb/procs/<uuid>.lock for its whole life. The file holds two checksummed slots with
// the pid, the start time and the handle's snapshot floor. A handle is alive exactly while its
// file is locked: a process that dies loses its flock at once, so nobody waits for a heartbeat.
const (
	procsDirName = "procs"
	procSuffix   = ".lock"
	procSlotSize = 128
	procTemp     = ".tmp"
)

// regEntry is one decoded registry slot.
type regEntry struct {
	seq   uint64
	pid   int
	start int64     // unix nanoseconds
	floor pages.TSN // oldest snapshot the handle may still read (valid unless idle)
	since int64     // unix nanoseconds: when floor took its value (the age of what it pins)
	idle  bool      // the handle has no open transaction: it pins nothing
}

func (e regEntry) encode() []byte {
	idle := 0
	if e.idle {
		idle = 1
	}
	return wal.SlotLine(fmt.Sprintf("txtdb-proc %d seq=%d pid=%d start=%d floor=%d since=%d idle=%d",
		layoutVersion, e.seq, e.pid, e.start, e.floor, e.since, idle), procSlotSize)
}

func decodeRegEntry(slot []byte) (regEntry, bool) {
	var e regEntry
	raw, ok := wal.SlotBody(slot, procSlotSize)
	if !ok {
		return e, false
	}
	body := string(raw)
	f := strings.Fields(body)
	if len(f) != 8 || f[0] != "txtdb-proc" {
		return e, false
	}
	vals := make([]int64, 0, 6)
	for j, k := range []string{"seq=", "pid=", "start=", "floor=", "since=", "idle="} {
		v, ok := strings.CutPrefix(f[2+j], k)
		if !ok {
			return e, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return e, false
		}
		vals = append(vals, n)
	}
	e.seq, e.pid, e.start, e.floor, e.since, e.idle = uint64(vals[0]), int(vals[1]), vals[2], pages.TSN(vals[3]), vals[4], vals[5] == 1
	return e, true
}

// registration is this handle's own registry file, locked for the handle's life.
type registration struct {
	id   string
	path string

	mu    sync.Mutex
	f     *os.File // guarded by mu; holds the flock
	entry regEntry // guarded by mu: the last slot written
}

// register creates, locks and publishes this handle's registry file with floor 0 (pinning
// everything), before the handle reads state for the first time. The file is created under a
// temporary name, locked, written and only then renamed into place, so nobody ever sees an
// unlocked live entry.
func register(procs string, perm os.FileMode) (*registration, error) {
	if err := lockfs.MkdirAll(procs, dirMode(perm)); err != nil {
		return nil, fmt.Errorf("register process: %w", err)
	}
	for range 100 {
		id := uuid.NewString()
		tmp := filepath.Join(procs, "."+id+procTemp)
		f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("register process: %w", err)
		}
		if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			_ = f.Close()
			continue // a cleaner took it for a dead leftover in the instant before the lock
		}
		// A cleaner may have unlinked the file between create and lock: then it is not ours.
		if same, err := samePath(f, tmp); err != nil || !same {
			_ = f.Close()
			continue
		}
		r := &registration{id: id, path: filepath.Join(procs, id+procSuffix), f: f}
		now := time.Now().UnixNano()
		r.entry = regEntry{pid: os.Getpid(), start: now, since: now, floor: 0}
		if err := r.writeLocked(r.entry); err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
			return nil, err
		}
		if err := os.Rename(tmp, r.path); err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
			return nil, fmt.Errorf("register process: %w", err)
		}
		return r, nil
	}
	return nil, errors.New("txtdb: register process: no free name")
}

// writeLocked writes e into the slot the last write did not use. REQUIRES: mu held or not yet
// shared.
func (r *registration) writeLocked(e regEntry) error {
	e.seq = r.entry.seq + 1
	if r.f == nil {
		return ErrClosed
	}
	if _, err := r.f.WriteAt(e.encode(), int64(e.seq%2)*procSlotSize); err != nil {
		return fmt.Errorf("publish snapshot floor: %w", err)
	}
	r.entry = e
	return nil
}

// publish writes a new floor (or idle) unless it is what the file already says.
func (r *registration) publish(floor pages.TSN, idle bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.entry.idle == idle && (idle || r.entry.floor == floor) {
		return nil
	}
	e := r.entry
	if e.idle != idle || e.floor != floor {
		e.since = time.Now().UnixNano()
	}
	e.floor, e.idle = floor, idle
	return r.writeLocked(e)
}

// close removes the registry file (while still holding its lock) and releases the lock.
func (r *registration) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := os.Remove(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	err = errors.Join(err, r.f.Close())
	r.f = nil
	return err
}

// peer is what a probe of one registry file found.
type peer struct {
	id       string
	alive    bool
	readable bool // a valid slot was read (else the entry pins everything)
	entry    regEntry
}

// pins reports the floor a live peer imposes on cleanup: idle peers pin nothing, unreadable
// ones pin everything (0).
func (p peer) pins() (pages.TSN, bool) {
	if !p.alive {
		return 0, false
	}
	if !p.readable {
		return 0, true
	}
	if p.entry.idle {
		return 0, false
	}
	return p.entry.floor, true
}

// scanPeers probes every registry file. A file is alive while someone holds its flock; a file
// that cannot be opened or probed counts as alive and unreadable, so it pins everything.
func scanPeers(procs string) ([]peer, error) {
	ents, err := os.ReadDir(procs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("scan process registry: %w", err)
	}
	var out []peer
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), procSuffix)
		if !ok || strings.HasPrefix(id, ".") {
			continue
		}
		out = append(out, probePeer(filepath.Join(procs, e.Name()), id))
	}
	return out, nil
}

func probePeer(path, id string) peer {
	p := peer{id: id, alive: true}
	f, err := os.Open(path) // never O_CREATE: probing must not make files
	if errors.Is(err, fs.ErrNotExist) {
		return peer{id: id} // gone meanwhile: it deregistered
	}
	if err != nil {
		return p // cannot probe: alive, unreadable, pins everything
	}
	defer f.Close()
	switch err := flock(f, syscall.LOCK_SH|syscall.LOCK_NB); {
	case err == nil:
		_ = flock(f, syscall.LOCK_UN)
		p.alive = false
		return p
	case errors.Is(err, syscall.EWOULDBLOCK):
	default:
		return p
	}
	var buf [2 * procSlotSize]byte
	n, err := f.ReadAt(buf[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return p
	}
	for i := 0; i < 2 && (i+1)*procSlotSize <= n; i++ {
		e, ok := decodeRegEntry(buf[i*procSlotSize : (i+1)*procSlotSize])
		if ok && e.seq%2 == uint64(i) && (!p.readable || e.seq > p.entry.seq) {
			p.entry, p.readable = e, true
		}
	}
	return p
}

// removeDead unlinks a dead process's registry file, only while holding its lock and only if the
// path still names the file locked. It reports whether the file is gone.
func removeDead(path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return false, nil // alive again (a new owner) or busy: leave it
	}
	if same, err := samePath(f, path); err != nil || !same {
		return false, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	return true, nil
}

// removeDeadTemps removes registry files left under their temporary names by processes that died
// while registering.
func removeDeadTemps(procs string) error {
	ents, err := os.ReadDir(procs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") && strings.HasSuffix(e.Name(), procTemp) {
			if _, err := removeDead(filepath.Join(procs, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}

// samePath reports whether path still names the open file f.
func samePath(f *os.File, path string) (bool, error) {
	a, err := f.Stat()
	if err != nil {
		return false, err
	}
	b, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(a, b), nil
}

// livePeers reports whether a process other than this handle holds a registry entry (an entry
// that cannot be probed counts as alive).
func (db *DB) livePeers() bool {
	peers, err := scanPeers(db.procsDir)
	if err != nil {
		return true
	}
	for _, p := range peers {
		if p.alive && (db.reg == nil || p.id != db.reg.id) {
			return true
		}
	}
	return false
}
