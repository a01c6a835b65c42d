package wal

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/txtdb/txtdb/pages"
)

// The fast state decoder takes the canonical slots Encode writes, agrees with DecodeState on
// them, reuses unchanged strings, and leaves every other form to DecodeState.
func TestDecodeStateFast(t *testing.T) {
	for _, s := range []State{
		{Seq: 1, TSN: 1, Pos: Pos{Seg: 1, Off: 0}, Lineage: "l", Boot: "b"},
		{Seq: 7, TSN: 123456, Pos: Pos{Seg: 99, Off: 1 << 40, Chain: 0xdeadbeef}, Lineage: "3f1c-aa", Boot: "boot-1", NoSync: true},
	} {
		prev := State{Lineage: s.Lineage, Boot: "other"}
		got, ok := decodeStateFast(s.Encode(), &prev)
		require.True(t, ok)
		require.Equal(t, s, got)
		want, err := DecodeState(s.Encode())
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	// A checksummed slot in another spacing: not the fast path's, still a valid slot.
	body := fmt.Sprintf("txtdb-state %d  seq=2 tsn=3 seg=1 off=10 chain=00000000 lineage=l boot=b nosync=0", Version)
	slot := frameSlot(body)
	_, ok := decodeStateFast(slot, &State{})
	require.False(t, ok)
	s, err := decodeState(slot, &State{})
	require.NoError(t, err)
	require.Equal(t, State{Seq: 2, TSN: 3, Pos: Pos{Seg: 1, Off: 10}, Lineage: "l", Boot: "b"}, s)
	// A torn slot fails both.
	torn := State{Seq: 2, TSN: 3, Pos: Pos{Seg: 1}, Lineage: "l", Boot: "b"}.Encode()
	torn[20] ^= 1
	_, ok = decodeStateFast(torn, &State{})
	require.False(t, ok)
	_, err = decodeState(torn, &State{})
	require.ErrorIs(t, err, ErrBadSlot)
}

// frameSlot frames a state body as Encode does.
func frameSlot(body string) []byte {
	line := fmt.Sprintf("%s crc=%08x", body, crc32.Checksum([]byte(body), CRCTable))
	buf := bytes.Repeat([]byte{' '}, StateSlotSize)
	copy(buf, line)
	buf[StateSlotSize-1] = '\n'
	return buf
}

// Encode writes the format FORMAT.md gives, byte for byte (the fields in their order, %08x
// hex, space padding, a newline last).
func TestStateEncodeFormat(t *testing.T) {
	for _, s := range []State{
		{Seq: 1, TSN: 2, Pos: Pos{Seg: 1, Off: 0, Chain: 0}, Lineage: "l", Boot: "b"},
		{Seq: 1<<64 - 1, TSN: 1 << 62, Pos: Pos{Seg: 77, Off: 1<<63 - 1, Chain: 0xdeadbeef}, Lineage: "6f3e1c2a-0b4d-4c5e-9f60-7a8b9c0d1e2f", Boot: "0b4d4c5e-9f60-7a8b-9c0d-1e2f6f3e1c2a", NoSync: true},
	} {
		ns := 0
		if s.NoSync {
			ns = 1
		}
		body := fmt.Sprintf("txtdb-state %d seq=%d tsn=%d seg=%d off=%d chain=%08x lineage=%s boot=%s nosync=%d",
			Version, s.Seq, s.TSN, s.Pos.Seg, s.Pos.Off, s.Pos.Chain, s.Lineage, s.Boot, ns)
		require.Equal(t, string(frameSlot(body)), string(s.Encode()))
	}
}

// A handle reads what another handle of the same file writes, whether it maps the file or reads
// it (a file still empty when opened is read, then mapped once it holds both slots); a file cut
// short under the mapping reads as what is left of it (no valid state), not a crash; a read after
// Close fails.
func TestStateFileReadsOtherWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	writer, err := OpenStateFile(path, 0o644, false)
	require.NoError(t, err)
	reader, err := OpenStateFile(path, 0o644, true) // empty: nothing to map yet
	require.NoError(t, err)
	require.Nil(t, reader.m.mapped)
	_, err = reader.Read()
	require.ErrorIs(t, err, ErrNoState)
	for seq := uint64(1); seq <= 5; seq++ {
		s := State{Seq: seq, TSN: pages.TSN(seq * 10), Pos: Pos{Seg: 1, Off: int64(seq)}, Lineage: "l", Boot: "b"}
		require.NoError(t, writer.Write(s, false))
		if seq == 1 {
			require.NoError(t, writer.Write(State{Seq: 0, Pos: Pos{Seg: 1}, Lineage: "l", Boot: "b"}, false))
		}
		got, err := reader.Read()
		require.NoError(t, err)
		require.Equal(t, s, got)
	}
	require.NotNil(t, reader.m.mapped, "a file holding both slots is mapped")
	mapped, err := OpenStateFile(path, 0o644, true)
	require.NoError(t, err)
	require.NotNil(t, mapped.m.mapped)
	got, err := mapped.Read()
	require.NoError(t, err)
	require.Equal(t, uint64(5), got.Seq)

	require.NoError(t, os.Truncate(path, 0))
	_, err = mapped.Read()
	require.ErrorIs(t, err, ErrNoState)
	require.Nil(t, mapped.m.mapped)

	require.NoError(t, mapped.Close())
	_, err = mapped.Read()
	require.ErrorIs(t, err, os.ErrClosed)
	require.NoError(t, reader.Close())
	require.NoError(t, writer.Close())
}

// MappedFile.ReadAt reads at an offset from the mapping and, before the file holds all its
// bytes, with pread, giving what is there; the file is mapped once a read finds it whole.
func TestMappedFileReadAt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	m := NewMappedFile(f, 8192)
	defer m.Unmap()
	buf := make([]byte, 4)
	n, err := m.ReadAt(buf, 100)
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = f.WriteAt([]byte("abcd"), 100)
	require.NoError(t, err)
	n, err = m.ReadAt(buf, 100)
	require.NoError(t, err)
	require.Equal(t, "abcd", string(buf[:n]))
	require.Nil(t, m.mapped, "a file shorter than its size is not mapped")
	require.NoError(t, f.Truncate(8192))
	_, err = f.WriteAt([]byte("wxyz"), 8188)
	require.NoError(t, err)
	n, err = m.ReadAt(buf, 8188)
	require.NoError(t, err)
	require.Equal(t, "wxyz", string(buf[:n]))
	require.NotNil(t, m.mapped)
	_, err = f.WriteAt([]byte("ABCD"), 100)
	require.NoError(t, err)
	n, err = m.ReadAt(buf, 100)
	require.NoError(t, err)
	require.Equal(t, "ABCD", string(buf[:n]), "the mapping shows a later write")
}

// A state write that fails after its bytes reached the page cache (FUSE keeps them in a mapped
// page) must not read as state: the writer zeroes the slot, and readers take the other one.
func TestFailedStateWriteNotRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	writer, err := OpenStateFile(path, 0o644, false)
	require.NoError(t, err)
	defer func() { _ = writer.Close() }()
	s1 := State{Seq: 1, TSN: 10, Pos: Pos{Seg: 1, Off: 100}, Lineage: "l", Boot: "b"}
	require.NoError(t, writer.Write(State{Seq: 0, Pos: Pos{Seg: 1}, Lineage: "l", Boot: "b"}, false))
	require.NoError(t, writer.Write(s1, false))
	reader, err := OpenStateFile(path, 0o644, true)
	require.NoError(t, err)
	defer func() { _ = reader.Close() }()
	got, err := reader.Read()
	require.NoError(t, err)
	require.Equal(t, s1, got)
	require.NotNil(t, reader.m.mapped)

	failed := false
	writer.writeAt = func(b []byte, off int64) (int, error) {
		n, err := writer.f.WriteAt(b, off)
		if err == nil && !failed {
			failed = true
			return n, errors.New("injected: the file server refused the write")
		}
		return n, err
	}
	require.Error(t, writer.Write(State{Seq: 2, TSN: 11, Pos: Pos{Seg: 1, Off: 150}, Lineage: "l", Boot: "b"}, false))
	got, err = reader.Read()
	require.NoError(t, err)
	require.Equal(t, s1, got, "a failed state write reads as state")
}

// A copy of both slots that caught the older one before a commit overwrote it and the newer one
// torn by the commit after that finds only a state two commits old valid: Read copies again
// rather than return it. A slot that stays torn is given up on once two copies agree.
func TestStateReadRetriesTornCopy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	sf, err := OpenStateFile(path, 0o644, false)
	require.NoError(t, err)
	defer func() { _ = sf.Close() }()
	st := func(seq uint64) State {
		return State{Seq: seq, TSN: pages.TSN(seq + 100), Pos: Pos{Seg: 1, Off: int64(seq * 10)}, Lineage: "l", Boot: "b"}
	}
	both := func(a, b []byte) []byte { return append(append([]byte(nil), a...), b...) }
	torn := append(st(7).Encode()[:100], make([]byte, StateSlotSize-100)...)
	copies := [][]byte{
		both(st(4).Encode(), torn),           // slot 0 copied before seq 6 replaced it, slot 1 mid-write of seq 7
		both(st(6).Encode(), st(7).Encode()), // the next copy: both written
	}
	reads := 0
	sf.readAll = func(buf []byte) (int, error) {
		c := copies[min(reads, len(copies)-1)]
		reads++
		return copy(buf, c), nil
	}
	got, err := sf.Read()
	require.NoError(t, err)
	require.Equal(t, uint64(7), got.Seq, "a state two commits old was returned from a torn copy")
	require.Equal(t, 2, reads)

	copies = [][]byte{both(st(8).Encode(), make([]byte, StateSlotSize))} // slot 1 zeroed and left so
	reads = 0
	got, err = sf.Read()
	require.NoError(t, err)
	require.Equal(t, uint64(8), got.Seq)
	require.Equal(t, 2, reads, "a slot that stays torn costs one more copy")
}

// ReadFresh reads what Read reads, through a descriptor of its own: the newest valid slot, a
// torn one skipped, none at all ErrNoState.
func TestStateReadFresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	sf, err := OpenStateFile(path, 0o644, false)
	require.NoError(t, err)
	defer sf.Close()
	_, err = sf.ReadFresh()
	require.ErrorIs(t, err, ErrNoState)
	for seq := uint64(0); seq <= 3; seq++ {
		s := State{Seq: seq, TSN: pages.TSN(seq), Pos: Pos{Seg: 1, Off: int64(seq)}, Lineage: "l", Boot: "b"}
		require.NoError(t, sf.Write(s, false))
		got, err := sf.ReadFresh()
		require.NoError(t, err)
		require.Equal(t, s, got)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("torn"), StateSlotSize+40) // seq 3's slot
	require.NoError(t, err)
	require.NoError(t, f.Close())
	got, err := sf.ReadFresh()
	require.NoError(t, err)
	require.Equal(t, uint64(2), got.Seq)
	want, err := sf.Read()
	require.NoError(t, err)
	require.Equal(t, want, got)
}
