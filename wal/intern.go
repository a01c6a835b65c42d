package wal

import "sync/atomic"

// Catching up decodes the same few names over and over: a record's process id, and each op's
// namespace, incarnation and page id. intern returns an earlier string equal to b where its slot
// of a small direct-mapped table holds one, so a name seen before costs no allocation. The table
// is shared by every goroutine (each slot an atomic pointer; a miss replaces the slot) and holds
// at most internSlots strings of at most internMax bytes.
const (
	internSlots = 4096
	internMax   = 64
)

var internTab [internSlots]atomic.Pointer[string]

func intern(b []byte) string {
	if len(b) > internMax {
		return string(b)
	}
	h := uint32(2166136261) // FNV-1a
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	slot := &internTab[h%internSlots]
	if p := slot.Load(); p != nil && *p == string(b) {
		return *p
	}
	s := string(b)
	slot.Store(&s)
	return s
}
