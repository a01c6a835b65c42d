package wal

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"unsafe"
	"weak"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

// Keeping one op's Objects (what the index does for a put: version.objs = o.Objects) must not
// keep the other ops' objects, and their texts, alive: a slice keeps its whole backing array
// reachable, so the ops of a record may not share one. (They did, for a while: a cached version
// then kept its whole record in memory, uncharged.)
func TestOneOpsObjectsDoNotKeepOtherOpsAlive(t *testing.T) {
	big := strings.Repeat("y", 1<<20) // 1 MiB per object: its own large allocation
	ops := []Op{
		{Kind: OpPut, NS: "t", Inc: "i1", Page: "page000001", New: true, Objs: []json.RawMessage{json.RawMessage(`"a` + big + `"`)}},
		{Kind: OpPut, NS: "t", Inc: "i1", Page: "page000002", New: true, Objs: []json.RawMessage{json.RawMessage(`"b` + big + `"`)}},
	}
	opsJSON, err := json.Marshal(ops)
	require.NoError(t, err)
	var b bytes.Buffer
	FrameOps(&b, 3, 1, "p", opsJSON, 0)
	line := b.Bytes()

	keep, other := func() ([]pages.Object, weak.Pointer[byte]) {
		var r Record
		_, err := Unframe(line, &r, 0)
		require.NoError(t, err)
		require.NoError(t, DecodeOps(pages.JSON, &r))
		require.False(t, r.Ops[0].shared, "a large record's objects are copied")
		text := r.Ops[1].Objects[0].Text()
		require.Equal(t, `"b`+big+`"`, text)
		// What the index keeps of a caught-up put: that op's Objects, nothing else of the record.
		return r.Ops[0].Objects, weak.Make(unsafe.StringData(text))
	}()
	b.Reset()
	line = nil
	for range 3 {
		runtime.GC()
	}
	require.Equal(t, `"a`+big+`"`, keep[0].Text())
	require.Nil(t, other.Value(),
		"op 1's 1 MiB text is still reachable while only op 0's Objects (len %d, cap %d) are kept: one backing array for the record's ops keeps every op's objects alive",
		len(keep), cap(keep))
	runtime.KeepAlive(keep)
}
