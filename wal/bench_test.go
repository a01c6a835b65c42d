package wal

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/txtdb/txtdb/pages"
)

// BenchmarkAppend: the log append of one commit, as a group leader does it for a group of one:
// frame a 2-page commit record chained to the one before, write it at the log's end over the
// segment's preallocated zeros (growing them by 1 MiB when they run out, as the engine does), and
// fdatasync (sync=fdatasync) or not (sync=none).
func BenchmarkAppend(b *testing.B) {
	for _, sync := range []bool{true, false} {
		b.Run(map[bool]string{true: "sync=fdatasync", false: "sync=none"}[sync], func(b *testing.B) {
			const grow = 1 << 20
			dir := b.TempDir()
			hdr, err := CreateSegment(dir, 1, "c7a851b0-0839-4ac5-9f64-446519878c76", 0o644, grow)
			if err != nil {
				b.Fatal(err)
			}
			f, err := os.OpenFile(filepath.Join(dir, SegName(1)), os.O_RDWR, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			off, size, chain := hdr.Off, hdr.Off+grow, hdr.Chain
			var buf bytes.Buffer
			fsyncs := 0
			tsn := pages.TSN(0)
			for b.Loop() {
				tsn++
				ops := fmt.Appendf(nil, `[{"op":"put","ns":"acct","inc":"c7a851b0-0839-4ac5-9f64-446519878c76","page":"page000001","objs":[%d]},`+
					`{"op":"put","ns":"acct","inc":"c7a851b0-0839-4ac5-9f64-446519878c76","page":"page000002","objs":[%d]}]`, tsn, tsn)
				buf.Reset()
				chain = FrameOps(&buf, tsn, 1764590000000000000, "9b2f6c1e-4f61-4d0c-8a51-0b7e3c2d1a90", ops, chain)
				end := off + int64(buf.Len())
				if end > size {
					if err := WriteZeros(f, size, end+grow); err != nil {
						b.Fatal(err)
					}
					size = end + grow
				}
				if _, err := f.WriteAt(buf.Bytes(), off); err != nil {
					b.Fatal(err)
				}
				if sync {
					if err := Datasync(f); err != nil {
						b.Fatal(err)
					}
					fsyncs++
				}
				off = end
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			b.ReportMetric(float64(fsyncs)/float64(b.N), "fsyncs/commit")
			b.ReportMetric(float64(off-hdr.Off)/float64(b.N), "bytes/commit")
		})
	}
}

// BenchmarkIntern: the names a record's ops repeat (an incarnation id, a page id), seen before.
func BenchmarkIntern(b *testing.B) {
	names := [][]byte{[]byte("6f3e1c2a-0b4d-4c5e-9f60-7a8b9c0d1e2f"), []byte("page000123"), []byte("acct")}
	for b.Loop() {
		for _, n := range names {
			_ = intern(n)
		}
	}
}
