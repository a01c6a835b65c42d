package elle

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// fuzzHistory decodes arbitrary bytes into a history: every byte string is
// some history, mostly valid (appended values are unique unless a byte asks
// for a collision), with reads of values appended, unknown or never written.
func fuzzHistory(data []byte) ([]Txn, Level) {
	pos := 0
	next := func() int {
		if pos >= len(data) {
			return 0
		}
		b := data[pos]
		pos++
		return int(b)
	}
	level := Level(next()%4 + 1)
	var h []Txn
	value := 0
	for i := 0; pos < len(data) && i < 64; i++ {
		txn := Txn{Index: i, Process: fmt.Sprintf("p%d", next()%3), Type: Type(next()%3 + 1)}
		if b := next(); b&1 == 1 {
			txn.Start = int64(b >> 1)
			txn.End = txn.Start + int64(next()%8)
		}
		for range next() % 6 {
			b := next()
			op := MicroOp{Key: fmt.Sprintf("k%d", (b>>1)%3)}
			if b&1 == 0 {
				op.F = Append
				value++
				op.Value = value
				if b&0x80 != 0 {
					op.Value = next() % 4
				}
			} else {
				op.F = Read
				if b&0x80 == 0 {
					op.List = []int{}
					for range next() % 5 {
						op.List = append(op.List, next()%(value+2))
					}
				}
			}
			txn.Ops = append(txn.Ops, op)
		}
		h = append(h, txn)
	}
	return h, level
}

// checkNoPanic runs Check and the Result methods and checks that the verdict
// agrees with the failures.
func checkNoPanic(t *testing.T, h []Txn, level Level) {
	res, err := Check(h, Options{Level: level})
	if err != nil {
		require.ErrorIs(t, err, ErrInvalidHistory)
		return
	}
	_ = res.String()
	require.Equal(t, len(res.Failures()) == 0, res.Valid)
	for _, a := range res.Anomalies {
		require.NotEmpty(t, a.Txns, "%s", a)
		if a.Kind.cycle() {
			require.GreaterOrEqual(t, len(a.Cycle), 2, "%s", a)
		}
	}
}

// FuzzCheck feeds generated histories to Check: it must never panic, and
// a malformed history is an ErrInvalidHistory.
func FuzzCheck(f *testing.F) {
	f.Add([]byte{2, 0, 0, 0, 3, 0, 2, 1, 1, 1, 1, 2, 3, 0, 0})
	f.Add([]byte{3, 1, 0, 5, 4, 2, 1, 1, 2, 0, 1, 9, 3, 1, 0, 2, 0, 0x81, 1, 3, 2, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, level := fuzzHistory(data)
		checkNoPanic(t, h, level)
	})
}

// FuzzCheckJSON feeds arbitrary JSON to Check, seeded with the histories
// under testdata/: a history that decodes must never make Check panic.
func FuzzCheckJSON(f *testing.F) {
	paths, err := filepath.Glob("testdata/*.json")
	require.NoError(f, err)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		var hf historyFile
		require.NoError(f, json.Unmarshal(b, &hf))
		hb, err := json.Marshal(hf.History)
		require.NoError(f, err)
		f.Add(hb)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var h []Txn
		if json.Unmarshal(data, &h) != nil {
			return
		}
		for level := ReadCommitted; level <= StrictSerializable; level++ {
			checkNoPanic(t, h, level)
		}
	})
}
