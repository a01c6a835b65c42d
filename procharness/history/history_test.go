package history

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWriterReaderRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, "w1")
	require.NoError(t, w.Write(Line{Type: Ready, Value: Value(ReadyInfo{PID: 7, Workload: "bank"})}))
	op, err := w.Invoke("transfer", Transfer{From: 1, To: 2, Amount: 3})
	require.NoError(t, err)
	require.Equal(t, int64(1), op)
	require.NoError(t, w.Complete(OK, op, "transfer", 9, 8, Transfer{From: 1, To: 2, Amount: 3}, nil))
	require.Error(t, w.Complete(Invoke, op, "transfer", 0, 0, nil, nil))

	lines, trunc, err := ReadAll(&buf)
	require.NoError(t, err)
	require.False(t, trunc)
	require.Len(t, lines, 3)
	require.Equal(t, "w1", lines[1].Worker)
	require.Equal(t, uint64(9), lines[2].TSN)
	var tr Transfer
	require.NoError(t, lines[2].Decode(&tr))
	require.Equal(t, Transfer{From: 1, To: 2, Amount: 3}, tr)
	require.LessOrEqual(t, lines[1].Time, lines[2].Time, "monotonic")
}

func TestReaderToleratesTornLastLine(t *testing.T) {
	in := `{"type":"invoke","worker":"w","op":1,"time":1}` + "\n" + `{"type":"ok","wor`
	lines, trunc, err := ReadAll(strings.NewReader(in))
	require.NoError(t, err)
	require.True(t, trunc)
	require.Len(t, lines, 1)

	// A broken line that is not the last is an error.
	_, _, err = ReadAll(strings.NewReader(`{"type":"ok","wor` + "\n" + `{"type":"ok"}` + "\n"))
	require.Error(t, err)
}

func TestWriterConcurrentLinesStayWhole(t *testing.T) {
	var buf lockedBuf
	w := NewWriter(&buf, "w")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				op, err := w.Invoke("incr", Incr{Key: 1})
				if err == nil {
					err = w.Complete(OK, op, "incr", 1, 1, Incr{Key: 1, Value: 2}, nil)
				}
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	var h History
	lines, _, err := ReadAll(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	h.Add(lines...)
	ops, err := h.Ops()
	require.NoError(t, err)
	require.Len(t, ops, 800)
	for _, o := range ops {
		require.Equal(t, OK, o.Type())
	}
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) Bytes() []byte { return l.b.Bytes() }

func TestHistoryOpsUnknownWithoutCompletion(t *testing.T) {
	var h History
	h.Add(Line{Type: Invoke, Worker: "a", Op: 1, F: "incr", Time: 10},
		Line{Type: Invoke, Worker: "b", Op: 1, F: "incr", Time: 5},
		Line{Type: OK, Worker: "b", Op: 1, F: "incr", Time: 20})
	ops, err := h.Ops()
	require.NoError(t, err)
	require.Len(t, ops, 2)
	require.Equal(t, "b", ops[0].Worker, "sorted by invoke time")
	require.Equal(t, OK, ops[0].Type())
	require.Equal(t, Unknown, ops[1].Type())
	require.Equal(t, int64(math.MaxInt64), ops[1].End())

	h.Add(Line{Type: OK, Worker: "c", Op: 3, Time: 30})
	_, err = h.Ops()
	require.ErrorContains(t, err, "never invoked")
}

func TestMicroOpJSON(t *testing.T) {
	txn := Txn{{F: OpAppend, Key: 1, Value: 5}, {F: OpRead, Key: 2}, {F: OpRead, Key: 3, Read: []int64{}}, {F: OpRead, Key: 4, Read: []int64{1, 2}}}
	b, err := json.Marshal(txn)
	require.NoError(t, err)
	require.Equal(t, `[["append",1,5],["r",2,null],["r",3,[]],["r",4,[1,2]]]`, string(b))
	var back Txn
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, txn, back)
	require.Error(t, json.Unmarshal([]byte(`[["x",1,2]]`), &back))
}

// EachOp sees every operation Ops returns (completed ones at their completion, the ones that
// never completed last) and rejects the same broken protocols.
func TestEachOpMatchesOps(t *testing.T) {
	var h History
	for i := range 3 * chunkLines { // past several chunks
		w := []string{"a", "b", "c"}[i%3]
		op := int64(i/3 + 1)
		h.Add(Line{Type: Invoke, Worker: w, Op: op, F: "incr", Time: int64(i / 2)}) // equal times
		if i%7 != 0 {
			h.Add(Line{Type: OK, Worker: w, Op: op, F: "incr", Time: int64(i + 1)})
		}
	}
	require.Equal(t, 3*chunkLines+3*chunkLines-(3*chunkLines+6)/7, h.Len())
	ops, err := h.Ops()
	require.NoError(t, err)
	require.Len(t, ops, 3*chunkLines)
	place := func(o Op) int64 { return (o.ID-1)*3 + int64(o.Worker[0]-'a') } // i above
	for i, o := range ops {
		require.Equal(t, int64(i), place(o), "op %d: by invoke time, equal times in invoke order", i)
	}
	byKey := map[string]Op{}
	unknownLast := true
	sawUnknown := false
	require.NoError(t, h.EachOp(func(o Op) {
		byKey[fmt.Sprint(o.Worker, o.ID)] = o
		if o.Type() == Unknown {
			sawUnknown = true
		} else if sawUnknown {
			unknownLast = false
		}
	}))
	require.True(t, unknownLast, "operations that never completed come last")
	require.Len(t, byKey, len(ops))
	for _, o := range ops {
		require.Equal(t, o, byKey[fmt.Sprint(o.Worker, o.ID)])
	}

	for name, tc := range map[string]struct {
		lines []Line
		want  string
	}{
		"invoked twice":   {[]Line{{Type: Invoke, Worker: "a", Op: 1}, {Type: OK, Worker: "a", Op: 1}, {Type: Invoke, Worker: "a", Op: 1}}, "invoked op 1 twice"},
		"completed twice": {[]Line{{Type: Invoke, Worker: "a", Op: 1}, {Type: OK, Worker: "a", Op: 1}, {Type: Fail, Worker: "a", Op: 1}}, "completed op 1 twice"},
		"never invoked":   {[]Line{{Type: Invoke, Worker: "a", Op: 1}, {Type: OK, Worker: "b", Op: 1}}, "never invoked"},
	} {
		var bad History
		bad.Add(tc.lines...)
		_, err := bad.Ops()
		require.ErrorContains(t, err, tc.want, name)
		require.ErrorContains(t, bad.EachOp(func(Op) {}), tc.want, name)
	}
}
