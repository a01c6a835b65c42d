package txn

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"

	"github.com/txtdb/txtdb/wal"
)

// Fixed-size text slots (PART OF THE FORMAT of registry, horizon and board slots): the body, then
// " crc=<8 hex digits>" (CRC-32C of the body), padded with spaces to the slot's size, "\n" last.

// slotLine frames body as a slot of size bytes.
func slotLine(body string, size int) []byte {
	line := fmt.Sprintf("%s crc=%08x", body, crc32.Checksum([]byte(body), wal.CRCTable))
	buf := bytes.Repeat([]byte{' '}, size)
	copy(buf, line)
	buf[size-1] = '\n'
	return buf
}

// slotBody returns the body of a slot of size bytes; false if it is empty, torn or fails its
// checksum.
func slotBody(slot []byte, size int) (string, bool) {
	if len(slot) != size || slot[size-1] != '\n' {
		return "", false
	}
	line := strings.TrimRight(string(slot[:size-1]), " ")
	i := strings.LastIndex(line, " crc=")
	if i < 0 {
		return "", false
	}
	body := line[:i]
	want, err := strconv.ParseUint(line[i+5:], 16, 32)
	if err != nil || uint32(want) != crc32.Checksum([]byte(body), wal.CRCTable) {
		return "", false
	}
	return body, true
}
