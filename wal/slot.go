package wal

import (
	"bytes"
	"hash/crc32"
	"strconv"
)

// Fixed-size text slots (PART OF THE FORMAT of the state slots here, and of the registry, horizon
// and board slots of package txn): the body, then " crc=<8 hex digits>" (CRC-32C of the body),
// padded with spaces to the slot's size, "\n" last.

// AppendSlot frames body as a slot of size bytes, appended to dst. It panics if body does not
// fit (every slot's fields are bounded).
func AppendSlot(dst, body []byte, size int) []byte {
	start := len(dst)
	return finishSlot(append(dst, body...), start, size)
}

// finishSlot frames dst[start:], a slot's body, as a slot of size bytes.
func finishSlot(dst []byte, start, size int) []byte {
	sum := crc32.Checksum(dst[start:], CRCTable)
	dst = append(dst, " crc="...)
	dst = appendHex32(dst, sum)
	if len(dst)-start > size-1 {
		panic("wal: slot overflow") // INVARIANT: fields are bounded (uuid-sized strings)
	}
	for len(dst)-start < size-1 {
		dst = append(dst, ' ')
	}
	return append(dst, '\n')
}

// SlotLine frames body as a slot of size bytes.
func SlotLine(body string, size int) []byte {
	return AppendSlot(make([]byte, 0, size), []byte(body), size)
}

// SlotBody returns the body of a slot of size bytes (a subslice of slot); false if it is empty,
// torn or fails its checksum.
func SlotBody(slot []byte, size int) ([]byte, bool) {
	if len(slot) != size || slot[size-1] != '\n' {
		return nil, false
	}
	line := bytes.TrimRight(slot[:size-1], " ")
	i := bytes.LastIndex(line, []byte(" crc="))
	if i < 0 {
		return nil, false
	}
	body := line[:i]
	want, err := strconv.ParseUint(string(line[i+len(" crc="):]), 16, 32)
	if err != nil || uint32(want) != crc32.Checksum(body, CRCTable) {
		return nil, false
	}
	return body, true
}

// appendHex32 appends v as 8 lowercase hex digits (%08x).
func appendHex32(b []byte, v uint32) []byte {
	const digits = "0123456789abcdef"
	for shift := 28; shift >= 0; shift -= 4 {
		b = append(b, digits[(v>>uint(shift))&15])
	}
	return b
}
