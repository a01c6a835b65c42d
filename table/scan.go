package table

import (
	"encoding/json"
	"slices"

	"github.com/txtdb/txtdb/pages"
)

// scanned is what scanEntry reads of an entry: its key, pk and del, and where the text of its
// "row" member is (rowFrom, rowTo; both 0 if there is none), so that a row is decoded without its
// entry.
type scanned struct {
	key, pk        any
	del            bool
	rowFrom, rowTo int
}

// scanEntry reads a JSON leaf entry's "key", "pk" and "del" without decoding the rest (a row, and
// its index values, are decoded only when asked for): on a miss of the node cache an insert
// decodes the whole leaf, and with the standard decoder that was a fifth of a fill's time. It
// takes the compact shape encoding/json writes (no whitespace, member names without escapes,
// each member once) and, in key and pk, strings of printable ASCII without escapes, numbers, and
// arrays of those; for anything else it reports false and the caller uses the standard decoder,
// so it is a fast path, never a second grammar: what it accepts decodes to the same values
// (json.Number for numbers, as the store's decoder gives them) (FuzzScanEntry).
//
// The text is a stored object, valid JSON when it was stored, so the members it skips need only
// be delimited, not validated.
func scanEntry(o pages.Object) (e scanned, ok bool) {
	if o.Format() != pages.JSON {
		return scanned{}, false
	}
	s := entScanner{b: o.Text()}
	if !s.lit('{') {
		return scanned{}, false
	}
	var seen [5]string // the members read so far: each may come once
	for n := 0; !s.lit('}'); n++ {
		if n > 0 && !s.lit(',') {
			return scanned{}, false
		}
		name, ok := s.str()
		if !ok || !s.lit(':') || n == len(seen) || slices.Contains(seen[:n], name) {
			return scanned{}, false
		}
		seen[n] = name
		switch name {
		case "key":
			e.key, ok = s.keyValue(0)
		case "pk":
			e.pk, ok = s.keyValue(0)
		case "del":
			e.del = s.word("true")
			ok = e.del || s.word("false")
		case "row":
			e.rowFrom = s.i
			ok = s.skip()
			e.rowTo = s.i
		case "ix":
			// ix is decoded into a map when asked for: anything but an object (which always
			// decodes into one) is the decoder's to judge now, as it was before the fast path.
			ok = s.i < len(s.b) && s.b[s.i] == '{' && s.skip()
		default:
			ok = false // a member no entry has: let the decoder judge
		}
		if !ok {
			return scanned{}, false
		}
	}
	if s.i != len(s.b) || !slices.Contains(seen[:], "key") {
		return scanned{}, false
	}
	return e, true
}

type entScanner struct {
	b string
	i int
}

func (s *entScanner) lit(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *entScanner) word(w string) bool {
	if len(s.b)-s.i >= len(w) && s.b[s.i:s.i+len(w)] == w {
		s.i += len(w)
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes.
func (s *entScanner) str() (string, bool) {
	if !s.lit('"') {
		return "", false
	}
	start := s.i
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return "", false
		}
	}
	return "", false
}

// keyValue reads a key or pk: a string, a number, or (depth 0) an array of those.
func (s *entScanner) keyValue(depth int) (any, bool) {
	if s.i >= len(s.b) {
		return nil, false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c == '[' && depth == 0:
		s.i++
		var out []any
		if s.lit(']') {
			return nil, false // no key is an empty array: let the decoder say what it is
		}
		for {
			v, ok := s.keyValue(1)
			if !ok {
				return nil, false
			}
			out = append(out, v)
			if s.lit(']') {
				return out, true
			}
			if !s.lit(',') {
				return nil, false
			}
		}
	}
	return nil, false
}

// number reads a JSON number (its grammar exactly) as the json.Number of its text.
func (s *entScanner) number() (any, bool) {
	start := s.i
	s.lit('-')
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.lit('0') {
		if s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			return nil, false
		}
	} else if digits() == 0 {
		return nil, false
	}
	if s.lit('.') && digits() == 0 {
		return nil, false
	}
	if s.lit('e') || s.lit('E') {
		if !s.lit('+') {
			s.lit('-')
		}
		if digits() == 0 {
			return nil, false
		}
	}
	return json.Number(s.b[start:s.i]), true
}

// skip passes over one JSON value of a valid text: it tracks strings (and their escapes) and
// nesting, nothing more.
func (s *entScanner) skip() bool {
	start, depth := s.i, 0
	for s.i < len(s.b) {
		c := s.b[s.i]
		if depth == 0 && (c == ',' || c == '}') {
			return s.i > start
		}
		switch c {
		case '"':
			for s.i++; s.i < len(s.b) && s.b[s.i] != '"'; s.i++ {
				if s.b[s.i] == '\\' {
					s.i++
				}
			}
			if s.i >= len(s.b) {
				return false
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth < 0 {
				return false
			}
		}
		s.i++
	}
	return false
}
