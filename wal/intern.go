package wal

import (
	"hash/maphash"
	"sync/atomic"
)

// Catching up decodes the same few names over and over: a record's process id, and each op's
// namespace, incarnation and page id. intern returns an earlier string equal to b where its slot
// of a small direct-mapped table holds one, so a name seen before costs no allocation. The table
// is shared by every goroutine (each slot an atomic pointer; a miss replaces the slot) and holds
// at most internSlots strings of at most internMax bytes.
const (
	internSlots = 4096
	internMax   = 64
)

var (
	internTab  [internSlots]atomic.Pointer[string]
	internSeed = maphash.MakeSeed()
)

func intern(b []byte) string {
	if len(b) > internMax {
		return string(b)
	}
	slot := &internTab[maphash.Bytes(internSeed, b)%internSlots]
	if p := slot.Load(); p != nil && *p == string(b) {
		return *p
	}
	s := string(b)
	slot.Store(&s)
	return s
}

// pageTab interns page ids ("page000123") by their number: a store's pages are many more than
// its names, and their numbers spread them over the slots without hashing. A slot holds the
// number with the string, so a hit compares numbers, not bytes.
var pageTab [internSlots]atomic.Pointer[pageName]

type pageName struct {
	n uint64
	s string
}

// internPage is intern for a page id: for one in the canonical form (pages.PageID's: "page", at
// least 6 digits, no zero padding past 6), the slot of its number.
func internPage(b []byte) string {
	const prefix, minDigits, maxDigits = "page", 6, 19 // 19 digits never overflow
	digits := len(b) - len(prefix)
	if digits < minDigits || digits > maxDigits || string(b[:len(prefix)]) != prefix || (digits > minDigits && b[len(prefix)] == '0') {
		return intern(b)
	}
	var n uint64
	for _, c := range b[len(prefix):] {
		if c < '0' || c > '9' {
			return intern(b)
		}
		n = n*10 + uint64(c-'0')
	}
	slot := &pageTab[n%internSlots]
	if p := slot.Load(); p != nil && p.n == n {
		return p.s // the canonical id of n: the same bytes
	}
	s := string(b)
	slot.Store(&pageName{n: n, s: s})
	return s
}
