package txn

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"

	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// Fast paths for the board's JSON (board.go): what encoding/json writes for an outcome or a request,
// read without reflection; anything else is decoded by encoding/json, to the same values
// (FuzzBoardCodecs).

// DecodeFast reads an outcome line's body (wal.FastDecoder) whose results are all TSNs.
func (o *offerOutcome) DecodeFast(body []byte) bool {
	var out offerOutcome
	s := wal.NewScanner(body)
	var ok bool
	if !s.Lit(`{"owner":`) {
		return false
	}
	if out.Owner, ok = s.Str(); !ok || !s.Lit(`,"seq":`) {
		return false
	}
	if out.Seq, ok = s.Uint(); !ok {
		return false
	}
	if s.Lit(`,"local":true`) {
		out.Local = true
	}
	if s.Lit(`,"lineage":`) {
		if out.Lineage, ok = s.Str(); !ok || out.Lineage == "" {
			return false
		}
	}
	if s.Lit(`,"res":[`) {
		for {
			if !s.Lit(`{"tsn":`) {
				return false
			}
			t, ok := s.Uint()
			if !ok || t == 0 || !s.Lit(`}`) {
				return false
			}
			out.Res = append(out.Res, offerResult{TSN: pages.TSN(t)})
			if s.Lit(`]`) {
				break
			}
			if !s.Lit(`,`) {
				return false
			}
		}
		if len(out.Res) == 0 {
			return false
		}
	}
	if !s.Done() {
		return false
	}
	*o = out
	return true
}

// parseForeign reads a request body as encodeForeign writes it; false for anything else.
func parseForeign(body []byte) ([]foreignTx, bool) {
	s := wal.NewScanner(body)
	if !s.Lit(`[`) {
		return nil, false
	}
	var txs []foreignTx
	if s.Lit(`]`) {
		return []foreignTx{}, s.Done()
	}
	for {
		ft, ok := parseForeignTx(s)
		if !ok {
			return nil, false
		}
		txs = append(txs, ft)
		if s.Lit(`]`) {
			return txs, s.Done()
		}
		if !s.Lit(`,`) {
			return nil, false
		}
	}
}

func parseForeignTx(s *wal.Scanner) (foreignTx, bool) {
	var ft foreignTx
	var ok bool
	if !s.Lit(`{"snap":`) {
		return ft, false
	}
	snap, ok := s.Uint()
	if !ok || !s.Lit(`,"lineage":`) {
		return ft, false
	}
	ft.Snap = pages.TSN(snap)
	if ft.Lineage, ok = s.Str(); !ok {
		return ft, false
	}
	ft.Ser = s.Lit(`,"ser":true`)
	if s.Lit(`,"deps":{`) {
		ft.Deps = map[string]bool{}
		for {
			k, ok := s.Str()
			if !ok || !s.Lit(`:`) {
				return ft, false
			}
			switch {
			case s.Lit(`true`):
				ft.Deps[k] = true
			case s.Lit(`false`):
				ft.Deps[k] = false
			default:
				return ft, false
			}
			if s.Lit(`}`) {
				break
			}
			if !s.Lit(`,`) {
				return ft, false
			}
		}
	}
	if s.Lit(`,"pre":[`) {
		for {
			p, ok := s.Str()
			if !ok {
				return ft, false
			}
			ft.Pre = append(ft.Pre, p)
			if s.Lit(`]`) {
				break
			}
			if !s.Lit(`,`) {
				return ft, false
			}
		}
	}
	ft.Listed = s.Lit(`,"listed":true`)
	if s.Lit(`,"reads":[`) {
		for {
			var rd foreignRead
			if !s.Lit(`{"inc":`) {
				return ft, false
			}
			if rd.Inc, ok = s.Str(); !ok || !s.Lit(`,"page":`) {
				return ft, false
			}
			if rd.Page, ok = s.Uint(); !ok || !s.Lit(`,"ns":`) {
				return ft, false
			}
			if rd.NS, ok = s.Str(); !ok {
				return ft, false
			}
			rd.Exists = s.Lit(`,"exists":true`)
			if s.Lit(`,"keys":[`) {
				rd.Keys = []string{}
				for {
					k, ok := s.Str()
					if !ok {
						return ft, false
					}
					rd.Keys = append(rd.Keys, k)
					if s.Lit(`]`) {
						break
					}
					if !s.Lit(`,`) {
						return ft, false
					}
				}
			}
			if !s.Lit(`}`) {
				return ft, false
			}
			ft.Reads = append(ft.Reads, rd)
			if s.Lit(`]`) {
				break
			}
			if !s.Lit(`,`) {
				return ft, false
			}
		}
	}
	if s.Lit(`,"scans":{`) {
		ft.Scans = map[string]string{}
		for {
			k, ok := s.Str()
			if !ok || !s.Lit(`:`) {
				return ft, false
			}
			v, ok := s.Str()
			if !ok {
				return ft, false
			}
			ft.Scans[k] = v
			if s.Lit(`}`) {
				break
			}
			if !s.Lit(`,`) {
				return ft, false
			}
		}
	}
	if !s.Lit(`,"ops":`) {
		return ft, false
	}
	ops, ok := s.Skip()
	if !ok || !s.Lit(`}`) {
		return ft, false
	}
	ft.Ops = json.RawMessage(ops)
	return ft, true
}

// appendForeign appends txs as encodeForeign's encoding/json call writes them, without
// reflection, and reports false (b unchanged in meaning: the caller drops what was appended) for a
// string it would have to escape: a byte outside printable ASCII, a quote or a backslash. Map keys
// come out sorted, as encoding/json sorts them. Ops are written as they are: encodeOps writes
// them compact, which is what encoding/json would make of them (TestAppendForeignMatchesJSON).
func appendForeign(b []byte, txs []foreignTx) ([]byte, bool) {
	ok := true
	str := func(s string) {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
				ok = false
				return
			}
		}
		b = append(append(append(b, '"'), s...), '"')
	}
	seq := func(open, close byte, n int, item func(j int)) { // n items, comma-separated
		b = append(b, open)
		for j := range n {
			if j > 0 {
				b = append(b, ',')
			}
			item(j)
		}
		b = append(b, close)
	}
	strs := func(list []string) { seq('[', ']', len(list), func(j int) { str(list[j]) }) }
	object := func(keys []string, val func(k string)) { // members in keys' order
		seq('{', '}', len(keys), func(j int) {
			str(keys[j])
			b = append(b, ':')
			val(keys[j])
		})
	}
	b = append(b, '[')
	for i := range txs {
		t := &txs[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(append(b, `{"snap":`...), uint64(t.Snap), 10)
		b = append(b, `,"lineage":`...)
		str(t.Lineage)
		if t.Ser {
			b = append(b, `,"ser":true`...)
		}
		if len(t.Deps) > 0 {
			b = append(b, `,"deps":`...)
			object(slices.Sorted(maps.Keys(t.Deps)), func(k string) { b = strconv.AppendBool(b, t.Deps[k]) })
		}
		if len(t.Pre) > 0 {
			b = append(b, `,"pre":`...)
			strs(t.Pre)
		}
		if t.Listed {
			b = append(b, `,"listed":true`...)
		}
		if len(t.Reads) > 0 {
			b = append(b, `,"reads":`...)
			seq('[', ']', len(t.Reads), func(j int) {
				r := &t.Reads[j]
				b = append(b, `{"inc":`...)
				str(r.Inc)
				b = strconv.AppendUint(append(b, `,"page":`...), r.Page, 10)
				b = append(b, `,"ns":`...)
				str(r.NS)
				if r.Exists {
					b = append(b, `,"exists":true`...)
				}
				if len(r.Keys) > 0 {
					b = append(b, `,"keys":`...)
					strs(r.Keys)
				}
				b = append(b, '}')
			})
		}
		if len(t.Scans) > 0 {
			b = append(b, `,"scans":`...)
			object(slices.Sorted(maps.Keys(t.Scans)), func(k string) { str(t.Scans[k]) })
		}
		if len(t.Ops) == 0 {
			b = append(b, `,"ops":null}`...)
		} else {
			b = append(append(append(b, `,"ops":`...), t.Ops...), '}')
		}
		if !ok {
			return b, false
		}
	}
	return append(b, ']'), true
}
