package txn

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/txtdb/txtdb/pages"

	"github.com/stretchr/testify/require"
)

// The board's fast decoders agree with encoding/json wherever they accept the text, and accept
// what encoding/json writes for the common cases.
func FuzzBoardCodecs(f *testing.F) {
	outcomes := []offerOutcome{
		{Owner: "0b6c7f2e-5d4e-4e55-9a3e-1c7f1e0d2a91", Seq: 7},
		{Owner: "o", Seq: 1, Local: true},
		{Owner: "o", Seq: 9, Lineage: "l1", Res: []offerResult{{TSN: 4}, {TSN: 5}}},
		{Owner: "o", Seq: 9, Lineage: "l1", Res: []offerResult{{TSN: 4}, {Err: "x"}}},
		{Owner: "o", Seq: 9, Lineage: "l1", Res: []offerResult{{Conflict: &ConflictError{Namespace: "c", Reason: "write"}}}},
	}
	for _, o := range outcomes {
		b, err := json.Marshal(o)
		require.NoError(f, err)
		f.Add(b[:len(b)-1]) // a framed line's body: no closing brace
	}
	txs := []foreignTx{
		{Snap: 3, Lineage: "l", Ops: json.RawMessage(`[{"op":"put","ns":"c","inc":"i","page":"page000001","objs":[1]}]`)},
		{Snap: 3, Lineage: "l", Ser: true, Deps: map[string]bool{"a": true, "b": false}, Pre: []string{"x", "y.z"},
			Listed: true, Reads: []foreignRead{{Inc: "i", Page: 2, NS: "c", Exists: true, Keys: []string{"k1", "k2"}}, {Inc: "j", Page: 1, NS: "d"}},
			Scans: map[string]string{"i": "c"}, Ops: json.RawMessage(`[]`)},
		{Snap: 1, Lineage: "l", Reads: []foreignRead{{Inc: "i", Page: 2, NS: "c\u00e9", Keys: []string{"a\"b"}}}, Ops: json.RawMessage(`null`)},
	}
	b, err := json.Marshal(txs)
	require.NoError(f, err)
	f.Add(b)
	b, err = json.Marshal(txs[:2])
	require.NoError(f, err)
	f.Add(b)
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast offerOutcome
		if fast.DecodeFast(body) {
			var slow offerOutcome
			require.NoError(t, json.Unmarshal(append(append([]byte(nil), body...), '}'), &slow), "fast path took %q", body)
			require.Equal(t, slow, fast)
		}
		if got, ok := parseForeign(body); ok {
			var want []foreignTx
			require.NoError(t, json.Unmarshal(body, &want), "fast path took %q", body)
			require.Equal(t, len(want), len(got))
			for i := range want {
				require.JSONEq(t, string(want[i].Ops), string(got[i].Ops))
				want[i].Ops, got[i].Ops = nil, nil
			}
			require.Equal(t, want, got)
		}
	})
}

// What encoding/json writes for outcomes of TSNs and for requests without escapes takes the
// fast paths.
func TestBoardCodecsFastPathsTaken(t *testing.T) {
	o := offerOutcome{Owner: "o", Seq: 9, Lineage: "l1", Res: []offerResult{{TSN: 4}, {TSN: 5}}}
	b, err := json.Marshal(o)
	require.NoError(t, err)
	var got offerOutcome
	require.True(t, got.DecodeFast(b[:len(b)-1]))
	require.Equal(t, o, got)
	txs := []foreignTx{{Snap: 3, Lineage: "l", Ser: true, Deps: map[string]bool{"a": true}, Pre: []string{"x"}, Listed: true,
		Reads: []foreignRead{{Inc: "i", Page: 2, NS: "c", Exists: true, Keys: []string{"k"}}}, Scans: map[string]string{"i": "c"},
		Ops: json.RawMessage(`[{"op":"del","ns":"c","inc":"i","page":"page000002"}]`)}}
	b, err = json.Marshal(txs)
	require.NoError(t, err)
	ft, ok := parseForeign(b)
	require.True(t, ok)
	require.Equal(t, txs, ft)
}

// appendForeign writes exactly what encodeForeign's encoding/json call writes, whenever it takes
// the text; it takes every request whose names and keys are printable ASCII without quotes or
// backslashes, and gives up on the others.
func TestAppendForeignMatchesJSON(t *testing.T) {
	viaJSON := func(txs []foreignTx) []byte {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		require.NoError(t, enc.Encode(txs))
		return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	}
	rng := rand.New(rand.NewPCG(7, 11))
	alphabet := []string{"a", "c.d", "page000001", "0b6c7f2e-5d4e", "<&>", " ", "~"}
	unsafe := []string{"\"", "\\", "\u00e9", "\n", "\x7f", "\u2028"}
	word := func(bad *bool) string {
		if rng.IntN(40) == 0 {
			*bad = true
			return "x" + unsafe[rng.IntN(len(unsafe))]
		}
		return alphabet[rng.IntN(len(alphabet))] + strconv.Itoa(rng.IntN(3))
	}
	opsTexts := []json.RawMessage{
		json.RawMessage(`[{"op":"put","ns":"c","inc":"i","page":"page000001","objs":[1]}]`),
		json.RawMessage(`[{"op":"append","ns":"q","inc":"i","page":"page000003","keys":["k"],"objs":[{"s":"<a&b>"}]}]`),
		json.RawMessage(`[]`),
		nil,
	}
	for range 2000 {
		bad := false
		txs := make([]foreignTx, 1+rng.IntN(3))
		for i := range txs {
			ft := foreignTx{Snap: pages.TSN(rng.Uint64N(1 << 40)), Lineage: word(&bad), Ser: rng.IntN(2) == 0,
				Listed: rng.IntN(2) == 0, Ops: opsTexts[rng.IntN(len(opsTexts))]}
			for range rng.IntN(3) {
				if ft.Deps == nil {
					ft.Deps = map[string]bool{}
				}
				ft.Deps[word(&bad)] = rng.IntN(2) == 0
			}
			for range rng.IntN(3) {
				ft.Pre = append(ft.Pre, word(&bad))
			}
			for range rng.IntN(4) {
				rd := foreignRead{Inc: word(&bad), Page: rng.Uint64N(1 << 50), NS: word(&bad), Exists: rng.IntN(2) == 0}
				for range rng.IntN(3) {
					rd.Keys = append(rd.Keys, word(&bad))
				}
				ft.Reads = append(ft.Reads, rd)
			}
			for range rng.IntN(3) {
				if ft.Scans == nil {
					ft.Scans = map[string]string{}
				}
				ft.Scans[word(&bad)] = word(&bad)
			}
			txs[i] = ft
		}
		got, ok := appendForeign(nil, txs)
		require.Equal(t, !bad, ok, "fast path taken for %+v", txs)
		if ok {
			require.Equal(t, string(viaJSON(txs)), string(got))
		}
	}
}
