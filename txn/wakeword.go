package txn

import (
	"encoding/binary"
	"os"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// wakeWordSize is the length <i>.wake is extended to and mapped: one page (PART OF THE FORMAT:
// the word is its first 4 bytes).
const wakeWordSize = 4096

// wakeWord is a shared mapping of a slot's <i>.wake file, whose first 4 bytes count the wakes of
// the slot's owner: a holder that published the outcome of the slot's offer writes the count
// plus one and wakes the futex there; the owner sleeps on it (futexWait). It is only a hint: the
// owner reads the outcome and tries the lock whatever woke it, and sleeps a bounded time. The
// count is written with pwrite(2), not through the mapping, so that an owner that watches the
// file for changes instead (inotify) sees it change too.
type wakeWord struct {
	f    *os.File // the holder's, to write the count; nil for the owner
	m    []byte
	word *uint32
}

// mapWakeWord opens path (creating it), extends it to wakeWordSize (a file only ever grows), and
// maps it shared; keep keeps the descriptor, to ring. nil where that fails or there is no futex:
// the owner learns under the lock.
func mapWakeWord(path string, perm os.FileMode, keep bool) *wakeWord {
	if !haveFutex {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, perm)
	if err != nil {
		return nil
	}
	m, err := mapWakePage(f)
	if err != nil || !keep {
		_ = f.Close() // a mapping outlives its descriptor
	}
	if err != nil {
		return nil
	}
	w := &wakeWord{m: m, word: (*uint32)(unsafe.Pointer(&m[0]))}
	if keep {
		w.f = f
	}
	return w
}

// mapWakePage extends f to wakeWordSize if it is shorter and maps that page shared.
func mapWakePage(f *os.File) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() < wakeWordSize {
		if err := f.Truncate(wakeWordSize); err != nil {
			return nil, err
		}
	}
	return syscall.Mmap(int(f.Fd()), 0, wakeWordSize, syscall.PROT_READ, syscall.MAP_SHARED)
}

// load returns the word; ok is false if the file was cut short under the mapping.
func (w *wakeWord) load() (v uint32, ok bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return atomic.LoadUint32(w.word), true
}

// ring adds one to the word and wakes whoever sleeps on it. REQUIRES: w kept its descriptor.
func (w *wakeWord) ring() {
	v, _ := w.load()
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v+1)
	_, _ = w.f.WriteAt(b[:], 0)
	futexWake(w.word)
}

func (w *wakeWord) close() {
	if w != nil {
		_ = syscall.Munmap(w.m)
		if w.f != nil {
			_ = w.f.Close()
		}
	}
}
