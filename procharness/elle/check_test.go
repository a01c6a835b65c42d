package elle

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEnumsRoundTrip(t *testing.T) {
	for _, typ := range []Type{OK, Fail, Info} {
		got, err := ParseType(typ.String())
		require.NoError(t, err)
		require.Equal(t, typ, got, "ParseType(%q)", typ)
	}
	for _, f := range []Func{Append, Read} {
		got, err := ParseFunc(f.String())
		require.NoError(t, err)
		require.Equal(t, f, got, "ParseFunc(%q)", f)
	}
	for _, k := range Kinds() {
		got, err := ParseKind(k.String())
		require.NoError(t, err)
		require.Equal(t, k, got, "ParseKind(%q)", k)
	}
	for l := ReadCommitted; l <= StrictSerializable; l++ {
		got, err := ParseLevel(l.String())
		require.NoError(t, err)
		require.Equal(t, l, got, "ParseLevel(%q)", l)
	}
	for _, bad := range []string{"", "OK", "committed"} {
		_, err := ParseType(bad)
		require.Error(t, err, "ParseType(%q)", bad)
	}
	_, err := json.Marshal(Txn{})
	require.Error(t, err, "marshalling the zero Type must fail")
}

// TestTxnJSON proves the JSON form keeps an empty read apart from an
// unknown one.
func TestTxnJSON(t *testing.T) {
	in := Txn{Process: "p1", Index: 3, Type: OK, Start: 10, End: 20, Ops: []MicroOp{
		{F: Append, Key: "x", Value: 1}, {F: Read, Key: "y", List: []int{}}, {F: Read, Key: "z"},
	}}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	require.JSONEq(t, `{"process":"p1","index":3,"type":"ok","start":10,"end":20,"ops":[
		{"f":"append","key":"x","value":1,"list":null},{"f":"r","key":"y","list":[]},{"f":"r","key":"z","list":null}]}`, string(b))
	var out Txn
	require.NoError(t, json.Unmarshal(b, &out))
	require.Equal(t, in, out)
	require.NotNil(t, out.Ops[1].List)
	require.Nil(t, out.Ops[2].List)
	require.Error(t, json.Unmarshal([]byte(`{"type":"maybe"}`), &out))
	require.Error(t, json.Unmarshal([]byte(`{"type":"ok","ops":[{"f":"cas"}]}`), &out))
}

func TestInvalidHistory(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    []Txn
		txn  int
	}{
		{"zero type", []Txn{{Type: OK}, {}}, 1},
		{"zero func", []Txn{{Type: OK, Ops: []MicroOp{{Key: "x"}}}}, 0},
		{"value appended twice", []Txn{
			{Type: Fail, Ops: []MicroOp{{F: Append, Key: "x", Value: 1}}},
			{Type: OK, Ops: []MicroOp{{F: Append, Key: "x", Value: 1}}},
		}, 1},
		{"end before start", []Txn{{Type: OK, Start: 5, End: 4}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Check(tc.h, DefaultOptions())
			require.Nil(t, res)
			require.ErrorIs(t, err, ErrInvalidHistory)
			var he *HistoryError
			require.True(t, errors.As(err, &he), "Check error %v is not a *HistoryError", err)
			require.Equal(t, tc.txn, he.Txn)
		})
	}
	_, err := Check(nil, Options{Level: 9})
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrInvalidHistory)

	// The same value on two keys is fine.
	_, err = Check([]Txn{{Type: OK, Ops: []MicroOp{{F: Append, Key: "x", Value: 1}, {F: Append, Key: "y", Value: 1}}}}, DefaultOptions())
	require.NoError(t, err)
}

func TestLevelForbids(t *testing.T) {
	// Per level, the kinds it permits; everything else it forbids.
	permits := map[Level][]Kind{
		ReadCommitted:      {LostUpdate, GSingle, G2Item},
		SnapshotIsolation:  {G2Item},
		Serializable:       nil,
		StrictSerializable: nil,
	}
	for level, ok := range permits {
		for _, k := range Kinds() {
			want := true
			for _, p := range ok {
				want = want && p != k
			}
			require.Equal(t, want, level.Forbids(k), "%s.Forbids(%s)", level, k)
		}
	}
}

func TestResultString(t *testing.T) {
	// Seven write-skew pairs: String shows a few and counts the rest.
	var h []Txn
	for i := range 7 {
		x, y := fmt.Sprintf("x%d", i), fmt.Sprintf("y%d", i)
		h = append(h,
			Txn{Index: 3 * i, Type: OK, Ops: []MicroOp{{F: Read, Key: x, List: []int{}}, {F: Read, Key: y, List: []int{}}, {F: Append, Key: x, Value: 1}}},
			Txn{Index: 3*i + 1, Type: OK, Ops: []MicroOp{{F: Read, Key: x, List: []int{}}, {F: Read, Key: y, List: []int{}}, {F: Append, Key: y, Value: 1}}},
			Txn{Index: 3*i + 2, Type: OK, Ops: []MicroOp{{F: Read, Key: x, List: []int{1}}, {F: Read, Key: y, List: []int{1}}}},
		)
	}
	res, err := Check(h, Options{Level: SnapshotIsolation})
	require.NoError(t, err)
	require.True(t, res.Valid, "write skew is allowed at snapshot isolation:\n%s", res)
	require.Equal(t, map[string]int{"G2-item": 7}, res.Counts)
	s := res.String()
	require.Contains(t, s, "valid at snapshot-isolation")
	require.Contains(t, s, "G2-item: 7, allowed at snapshot-isolation")
	require.Contains(t, s, "... and 2 more")
	require.Equal(t, maxPerKind, strings.Count(s, "  - "), "String:\n%s", s)
	require.Empty(t, res.Failures())

	res, err = Check(h, DefaultOptions())
	require.NoError(t, err)
	require.False(t, res.Valid)
	require.Len(t, res.Failures(), 7)
	require.Contains(t, res.String(), "INVALID at serializable")
	for _, a := range res.Anomalies {
		require.Len(t, a.Cycle, 2, "%s", a)
		require.Len(t, a.Txns, 2, "%s", a)
		for _, s := range a.Cycle {
			require.Equal(t, RW, s.Dep, "%s", a)
		}
	}
}

func TestFmtList(t *testing.T) {
	require.Equal(t, "[]", fmtList(nil))
	require.Equal(t, "[1 2 3]", fmtList([]int{1, 2, 3}))
	l := make([]int, 100)
	for i := range l {
		l[i] = i + 1
	}
	require.Equal(t, "[1 2 3 ... (92 more) ... 96 97 98 99 100]", fmtList(l))
}

// ExampleCheck checks a history with a read skew: T1 sees T0's append to y
// but not its append to x.
func ExampleCheck() {
	h := []Txn{
		{Process: "p0", Index: 0, Type: OK, Ops: []MicroOp{{F: Append, Key: "x", Value: 1}, {F: Append, Key: "y", Value: 1}}},
		{Process: "p1", Index: 1, Type: OK, Ops: []MicroOp{{F: Read, Key: "x", List: []int{}}, {F: Read, Key: "y", List: []int{1}}}},
	}
	res, err := Check(h, DefaultOptions())
	if err != nil {
		panic(err)
	}
	fmt.Print(res)
	// Output:
	// list-append history: INVALID at serializable (2 txns, 2 in the dependency graph)
	// G-single: 1
	//   - T0 (p0) -wr y-> T1 (p1) -rw x-> T0 (p0)
}
