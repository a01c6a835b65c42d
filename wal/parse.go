package wal

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/txtdb/txtdb/pages"
)

// parseRecord decodes a record body (a log line without its crc suffix: `{"tsn":...,"ops":[...]`)
// in the exact shape this package writes it (FrameOps, Frame): members in their order, strings
// without escapes, no whitespace. It reports false for anything else, and the caller decodes
// the line with encoding/json instead, so it is a fast path, never a second grammar: whatever it
// accepts, encoding/json decodes to the same Record (FuzzParseRecord). Catching up on other
// processes' commits decodes every record once; reflection made that a sixth of the CPU of a
// multi-process run.
func parseRecord(body []byte, r *Record, ar *scanArena) bool {
	p := parser{b: body, ar: ar}
	if ar != nil {
		p.objs = ar.objsFor()
		defer func() { ar.objs = p.objs }()
	}
	if !p.lit(`{"tsn":`) {
		return false
	}
	tsn, ok := p.uint()
	if !ok {
		return false
	}
	*r = Record{TSN: pages.TSN(tsn)}
	if p.lit(`,"time":`) {
		t, ok := p.int()
		if !ok {
			return false
		}
		r.Time = t
	}
	if p.lit(`,"proc":`) {
		if r.Proc, ok = p.str(); !ok {
			return false
		}
	}
	if !p.lit(`,"ops":`) {
		return false
	}
	if p.lit(`null`) {
		return p.i == len(p.b)
	}
	return p.opsArray(r)
}

// parser reads the canonical encoding of a record; every method reports false on anything else.
type parser struct {
	b    []byte
	i    int
	copy []byte            // p.b copied, once, for the objects' texts (the caller may reuse p.b)
	objs []json.RawMessage // the record's ops' Objs, one array for all of them (each op's capped)
	ar   *scanArena        // if set, where the Ops array and objs come from
}

// scanArena hands the records of one ScanRecords call their Ops arrays and their ops' Objs from
// a few shared arrays instead of two allocations per record (catching up decodes every record
// of every other process). Only these slice headers are shared: nothing a version keeps (an op's
// Objects and Keys, an object's text) comes from it, so a cached version pins no other record.
type scanArena struct {
	ops  []Op
	objs []json.RawMessage
	// skip, if set, reports whether the objects of a put or an append of page page of
	// incarnation inc may be left undecoded (the op is then Lazy).
	skip func(inc string, page uint64) bool
	// strs says the objects are JSON strings (YAML and XML stores): a skipped one is checked to
	// be one, as DecodeOps would find it.
	strs bool
}

// arenaChunk is how many Ops (or Objs) a scanArena array holds, at least.
const arenaChunk = 32

// opsFor returns an empty array with room for n ops.
func (ar *scanArena) opsFor(n int) []Op {
	if cap(ar.ops)-len(ar.ops) < n {
		ar.ops = make([]Op, 0, max(n, arenaChunk))
	}
	l := len(ar.ops)
	ar.ops = ar.ops[:l+n]
	return ar.ops[l : l : l+n]
}

// objsFor returns the array a record's Objs are appended to (parseRecord gives it back, grown).
func (ar *scanArena) objsFor() []json.RawMessage {
	if cap(ar.objs)-len(ar.objs) < 4 {
		ar.objs = make([]json.RawMessage, 0, arenaChunk)
	}
	return ar.objs
}

// own returns p.b[from:to] in a copy of p.b that nothing else refers to and nobody writes: one
// allocation per record for all its objects, however many.
func (p *parser) own(from, to int) json.RawMessage {
	if p.copy == nil {
		p.copy = append([]byte(nil), p.b...)
	}
	return json.RawMessage(p.copy[from:to:to])
}

// lit consumes s if the input continues with it.
func (p *parser) lit(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// uint reads a decimal unsigned integer without leading zeros (encoding/json's form).
func (p *parser) uint() (uint64, bool) {
	start := p.i
	var n uint64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		d := uint64(p.b[p.i] - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false // overflow: encoding/json would fail too; let it say so
		}
		n = n*10 + d
		p.i++
	}
	if p.i == start || (p.b[start] == '0' && p.i-start > 1) {
		return 0, false
	}
	return n, true
}

// int reads a decimal integer that fits an int64.
func (p *parser) int() (int64, bool) {
	neg := p.lit("-")
	n, ok := p.uint()
	if !ok || n > 1<<63-1 {
		return 0, false
	}
	if neg {
		if n == 0 {
			return 0, false // "-0": leave it to encoding/json
		}
		return -int64(n), true
	}
	return int64(n), true
}

// str reads a JSON string with no escapes and no control characters.
func (p *parser) str() (string, bool) { return p.strWith(intern) }

// strWith is str with the given interning of the string's bytes.
func (p *parser) strWith(intern func([]byte) string) (string, bool) {
	if !p.lit(`"`) {
		return "", false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := intern(p.b[start:p.i])
			p.i++
			return s, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", false // escapes, control bytes and non-ASCII (UTF-8 validity): encoding/json
		}
		p.i++
	}
	return "", false
}

// opKinds are the op kinds with their JSON text.
var opKinds = [...]struct{ kind, text string }{
	{OpPut, `"` + OpPut + `"`}, {OpAppend, `"` + OpAppend + `"`}, {OpDel, `"` + OpDel + `"`},
	{OpCreate, `"` + OpCreate + `"`}, {OpDrop, `"` + OpDrop + `"`}, {OpRename, `"` + OpRename + `"`},
	{OpReserve, `"` + OpReserve + `"`},
}

// kind reads an op kind: one of the constants, without allocating; any other string as str does.
func (p *parser) kind() (string, bool) {
	for _, k := range opKinds {
		if p.lit(k.text) {
			return k.kind, true
		}
	}
	return p.str()
}

// op reads one op object in Op's field order.
func (p *parser) op(o *Op) bool {
	var ok bool
	if !p.lit(`{"op":`) {
		return false
	}
	if o.Kind, ok = p.kind(); !ok {
		return false
	}
	if !p.lit(`,"ns":`) {
		return false
	}
	if o.NS, ok = p.str(); !ok {
		return false
	}
	if !p.lit(`,"inc":`) {
		return false
	}
	if o.Inc, ok = p.str(); !ok {
		return false
	}
	if p.lit(`,"to":`) {
		if o.To, ok = p.str(); !ok {
			return false
		}
	}
	if p.lit(`,"page":`) {
		if o.Page, ok = p.strWith(internPage); !ok {
			return false
		}
	}
	if p.lit(`,"new":`) {
		if !p.lit(`true`) {
			return false
		}
		o.New = true
	}
	if p.lit(`,"keys":[`) {
		if p.lit(`]`) {
			return false // omitempty never writes an empty list
		}
		for {
			k, ok := p.str()
			if !ok {
				return false
			}
			o.Keys = append(o.Keys, k)
			if p.lit(`]`) {
				break
			}
			if !p.lit(`,`) {
				return false
			}
		}
	}
	if p.lit(`,"objs":[`) {
		if p.lit(`]`) {
			return false // omitempty never writes an empty list; leave the rare form to encoding/json
		}
		if o.Lazy = p.lazy(o); o.Lazy {
			if !p.skipArray(p.ar.strs) {
				return false
			}
		} else if !p.objsArray(o) {
			return false
		}
	}
	if p.lit(`,"from":`) {
		if o.From, ok = p.uint(); !ok {
			return false
		}
	}
	if p.lit(`,"upto":`) {
		if o.Upto, ok = p.uint(); !ok {
			return false
		}
	}
	return p.lit(`}`)
}

// lazy reports whether the objects of o, read up to its objects, may be skipped: o is a put or an
// append, and the scanArena's skip says so for its page.
func (p *parser) lazy(o *Op) bool {
	if p.ar == nil || p.ar.skip == nil || (o.Kind != OpPut && o.Kind != OpAppend) {
		return false
	}
	n, err := pages.ParsePageID(o.Page)
	return err == nil && p.ar.skip(o.Inc, n)
}

// skipArray reads the rest of an array of objects (after its first '[') without keeping them;
// with strs, each must be a string.
func (p *parser) skipArray(strs bool) bool {
	for {
		if strs && (p.i >= len(p.b) || p.b[p.i] != '"') {
			return false // DecodeOps would refuse it: leave the verdict to the full decode
		}
		if !p.value(0) {
			return false
		}
		if p.lit(`]`) {
			return true
		}
		if !p.lit(`,`) {
			return false
		}
	}
}

// objsArray reads the rest of an array of objects (after its first '[') into o.Objs.
func (p *parser) objsArray(o *Op) bool {
	o.shared = len(p.b) <= smallRecord
	if p.objs == nil {
		p.objs = make([]json.RawMessage, 0, 4)
	}
	first := len(p.objs)
	for {
		start := p.i
		if !p.value(0) {
			return false
		}
		p.objs = append(p.objs, p.own(start, p.i))
		if p.lit(`]`) {
			break
		}
		if !p.lit(`,`) {
			return false
		}
	}
	// A slice of one array per record: a later op's append never writes into it (the cap),
	// and an array outgrown stays with the ops that slice it.
	o.Objs = p.objs[first:len(p.objs):len(p.objs)]
	return true
}

// maxDepth bounds the nesting value follows (deeper values go to encoding/json).
const maxDepth = 64

// value skips one compact JSON value (an object's text as the log stores it): objects, arrays,
// strings (escapes checked for form, not decoded), numbers, true, false, null. It is strict where
// skipping would let invalid JSON through, and gives up (false) where it would have to be lenient.
func (p *parser) value(depth int) bool {
	if p.i >= len(p.b) || depth > maxDepth {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '{':
		p.i++
		if p.lit(`}`) {
			return true
		}
		for {
			if !p.skipString() || !p.lit(`:`) || !p.value(depth+1) {
				return false
			}
			if p.lit(`}`) {
				return true
			}
			if !p.lit(`,`) {
				return false
			}
		}
	case c == '[':
		p.i++
		if p.lit(`]`) {
			return true
		}
		for {
			if !p.value(depth + 1) {
				return false
			}
			if p.lit(`]`) {
				return true
			}
			if !p.lit(`,`) {
				return false
			}
		}
	case c == '"':
		return p.skipString()
	case c == 't':
		return p.lit(`true`)
	case c == 'f':
		return p.lit(`false`)
	case c == 'n':
		return p.lit(`null`)
	default:
		return p.number()
	}
}

// skipString skips a JSON string with the escapes JSON has (\" \\ \/ \b \f \n \r \t \uXXXX);
// a control byte or another escape goes to encoding/json.
func (p *parser) skipString() bool {
	if !p.lit(`"`) {
		return false
	}
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return true
		case c == '\\':
			if p.i+1 >= len(p.b) {
				return false
			}
			switch p.b[p.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i += 2
			case 'u':
				if p.i+6 > len(p.b) {
					return false
				}
				for _, h := range p.b[p.i+2 : p.i+6] {
					if !isHex(h) {
						return false
					}
				}
				p.i += 6
			default:
				return false
			}
		case c < 0x20:
			return false
		default:
			p.i++ // a RawMessage keeps its bytes as they are, so does this (UTF-8 or not)
		}
	}
	return false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// number skips a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *parser) number() bool {
	p.lit("-")
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.lit("0") {
		// no more integer digits
	} else if digits() == 0 {
		return false
	}
	if p.lit(".") && digits() == 0 {
		return false
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if !p.lit("+") {
			p.lit("-")
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

// ParseOps decodes an ops array as FrameOps writes it into a record (the text of `"ops":`), each
// op's Span naming its text in text, and fills the decoded fields as DecodeOps does. Text in
// another shape is decoded with encoding/json (the ops then have no spans).
func ParseOps(f pages.Format, text []byte) ([]Op, error) {
	r := Record{}
	if p := (parser{b: text}); !p.opsArray(&r) {
		r.Ops = nil
		if err := json.Unmarshal(text, &r.Ops); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadRecord, err)
		}
	}
	if err := DecodeOps(f, &r); err != nil {
		return nil, err
	}
	return r.Ops, nil
}

// opsArray reads an ops array that ends the text, each op's Span naming its text in p.b.
func (p *parser) opsArray(r *Record) bool {
	if !p.lit(`[`) {
		return false
	}
	if p.lit(`]`) {
		r.Ops = []Op{}
		return p.i == len(p.b)
	}
	if r.Ops == nil {
		n := max(1, bytes.Count(p.b[p.i:], []byte(`{"op":`))) // at least the ops: objects may hold the text too
		if p.ar != nil {
			r.Ops = p.ar.opsFor(n)
		} else {
			r.Ops = make([]Op, 0, n)
		}
	}
	for {
		var o Op
		start := p.i
		if !p.op(&o) {
			return false
		}
		o.Span = MakeSpan(p.b, start, p.i)
		if o.Lazy && o.Span.Len == 0 {
			return false // its objects can be read again only through its span: decode them now
		}
		r.Ops = append(r.Ops, o)
		if p.lit(`]`) {
			return p.i == len(p.b)
		}
		if !p.lit(`,`) {
			return false
		}
	}
}
