package wal

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

// chainOf frames n small commit records chained from prev and returns them.
func chainOf(n int, prev uint32) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		ops := fmt.Appendf(nil, `[{"op":"put","ns":"app.users","inc":"c7a851b0-0839-4ac5-9f64-446519878c76","page":"page000001","objs":[{"i":%d}]}]`, i)
		prev = FrameOps(&b, pages.TSN(i), 0, "", ops, prev)
	}
	return b.Bytes()
}

// The log ends at a NUL where a record would start; a NUL inside a line, before its newline, is
// a torn record. Both hold however much zeroed space follows.
func TestScanRecordsNUL(t *testing.T) {
	recs := chainOf(3, 0)
	lines := bytes.SplitAfter(recs, []byte("\n"))
	zeros := make([]byte, 4096)
	from := Pos{Seg: 1}

	t.Run("end of log", func(t *testing.T) {
		got, bad := ScanRecords(pages.JSON, append(bytes.Clone(recs), zeros...), from)
		require.NoError(t, bad)
		require.Len(t, got, 3)
		require.Equal(t, int64(len(recs)), got[2].End.Off)
	})
	t.Run("torn with NUL", func(t *testing.T) {
		// Record 3 with a NUL in its middle (a write cut short, or zeros over its start),
		// its newline and the zeroed space still behind it.
		third := bytes.Clone(lines[2])
		third[len(third)/2] = 0
		data := append(append(bytes.Clone(lines[0]), lines[1]...), third...)
		data = append(data, zeros...)
		got, bad := ScanRecords(pages.JSON, data, from)
		require.ErrorIs(t, bad, ErrBadRecord)
		require.ErrorContains(t, bad, fmt.Sprintf("torn record at offset %d", len(lines[0])+len(lines[1])))
		require.Len(t, got, 2, "the records before the torn one are returned")
	})
	t.Run("torn at end of data", func(t *testing.T) {
		data := append(bytes.Clone(lines[0]), lines[1][:len(lines[1])-1]...) // no newline, no NUL
		got, bad := ScanRecords(pages.JSON, data, from)
		require.ErrorIs(t, bad, ErrBadRecord)
		require.Len(t, got, 1)
	})
}

// BenchmarkScanRecords reads n records followed by a segment's 1 MiB of preallocated zeros. The
// cost per record must not grow with n.
func BenchmarkScanRecords(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			data := append(chainOf(n, 0), make([]byte, 1<<20)...)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				recs, bad := ScanRecords(pages.JSON, data, Pos{Seg: 1})
				if bad != nil || len(recs) != n {
					b.Fatalf("scanned %d records (%v), want %d", len(recs), bad, n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
		})
	}
}
