package wal

// Scanner reads JSON in the canonical shape encoding/json writes for a struct: members in their
// order, strings without escapes (and ASCII only), no whitespace. Every method reports false on
// anything else, and the caller then decodes with encoding/json instead: it is a fast path for the
// engine's own small files, never a second grammar.
type Scanner struct{ p parser }

// NewScanner scans b.
func NewScanner(b []byte) *Scanner { return &Scanner{p: parser{b: b}} }

// Lit consumes lit if the text continues with it.
func (s *Scanner) Lit(lit string) bool { return s.p.lit(lit) }

// Uint reads a decimal integer that fits a uint64.
func (s *Scanner) Uint() (uint64, bool) { return s.p.uint() }

// Str reads a string with no escapes, no control characters and no bytes above 0x7f.
func (s *Scanner) Str() (string, bool) { return s.p.str() }

// Skip reads one JSON value and returns its text.
func (s *Scanner) Skip() ([]byte, bool) {
	start := s.p.i
	if !s.p.value(0) {
		return nil, false
	}
	return s.p.b[start:s.p.i], true
}

// Done reports whether the whole text was read.
func (s *Scanner) Done() bool { return s.p.i == len(s.p.b) }

// FastDecoder is a value Unframe decodes with its own DecodeFast first: body is the line without
// its checksum suffix (and so without the object's closing brace). On false it must leave itself
// as it was before; Unframe then uses encoding/json.
type FastDecoder interface {
	DecodeFast(body []byte) bool
}
