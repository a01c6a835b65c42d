package pages

import (
	"errors"
	"fmt"
	"reflect"
	"unicode/utf8"
)

// Object is one stored object, kept as its exact text in its format: compact
// JSON, one YAML document, or one XML element. An Object is immutable and safe
// to share between goroutines; the zero Object is invalid (its Format is not
// valid and every use gives an error matching ErrFormat).
//
// INVARIANT: a non-zero Object's text passed its format's validation (Encode
// and ObjectFromText are the only constructors), so it can be placed in a page
// file and read back exactly.
type Object struct {
	format Format
	text   string
}

// Encode encodes v as one object of format f.
//
// If v is an Object (or *Object) of format f it is returned verbatim, with the
// same text; an Object of another format gives an error matching ErrFormat.
// []byte and string values are encoded as values (a base64 or text string),
// never taken as text: use ObjectFromText for that.
//
// JSON: encoding/json without HTML escaping, compact. YAML: go.yaml.in/yaml/v3
// with a 2-space indent. XML: encoding/xml's Marshal, which must give exactly
// one element. A value the format cannot represent (a map in XML, a NaN in
// JSON, a channel, a nil in XML) gives an error matching ErrUnsupported.
func Encode(f Format, v any) (Object, error) {
	if err := checkFormat(f); err != nil {
		return Object{}, err
	}
	switch o := v.(type) {
	case Object:
		return o.as(f)
	case *Object:
		if o != nil {
			return o.as(f)
		}
	}
	var (
		text string
		err  error
	)
	switch f {
	case JSON:
		text, err = encodeJSON(v)
	case YAML:
		text, err = encodeYAML(v)
	case XML:
		text, err = encodeXML(v)
	}
	if err == nil && !utf8.ValidString(text) {
		// A marshal method can write invalid UTF-8 that the encoder passes on.
		err = fmt.Errorf("%w: invalid UTF-8 in the encoded text", ErrUnsupported)
	}
	if err != nil {
		return Object{}, fmt.Errorf("encode %v: %w", f, err)
	}
	return Object{format: f, text: text}, nil
}

// as returns o if it is a valid Object of format f.
func (o Object) as(f Format) (Object, error) {
	if o.format != f {
		return Object{}, fmt.Errorf("%w: %v object, want %v", ErrFormat, o.format, f)
	}
	return o, nil
}

// ObjectFromTrusted returns an Object for text that an Object of format f produced earlier (its
// Text), without validating it again: for text read back from a checksummed file txtdb itself
// wrote, such as the commit log. Text from anywhere else must go through ObjectFromText.
func ObjectFromTrusted(f Format, text string) Object {
	return Object{format: f, text: text}
}

// ObjectFromText validates that text is exactly one value of format f and
// returns it as an Object. Invalid text gives an error matching ErrCorrupt
// (a *CorruptError without a path, its offset into text).
//
// The text is kept as given except for these normalizations, which make
// ObjectFromText(f, o.Text()) return o unchanged:
//   - JSON is compacted (json.Compact), so JSON Object text is always compact;
//     number literals and string escapes are kept.
//   - YAML: a leading "---" line and a trailing "..." line are dropped and a
//     final newline is added. Text with any other document marker line ("---"
//     or "..." at the start of a line) is rejected, since page files use those
//     lines to separate objects.
//   - XML: white space around the element and a leading XML declaration are
//     dropped. Nothing else may stand outside the one element.
//
// Text must be valid UTF-8.
func ObjectFromText(f Format, text []byte) (Object, error) {
	if err := checkFormat(f); err != nil {
		return Object{}, err
	}
	if !utf8.Valid(text) {
		return Object{}, corrupt(int64(firstInvalidUTF8(text)), "%v text is not valid UTF-8", f)
	}
	var (
		s   string
		err error
	)
	switch f {
	case JSON:
		s, err = jsonFromText(text)
	case YAML:
		s, err = yamlFromText(text)
	case XML:
		s, err = xmlFromText(text)
	}
	if err != nil {
		return Object{}, err
	}
	return Object{format: f, text: s}, nil
}

// Decode decodes the object into v, which must be a non-nil pointer, with the
// format's standard decoder. JSON uses json.Decoder.UseNumber, so numbers
// decoded into any are json.Number with their exact digits; YAML decodes
// integers into int, int64 or uint64 as they fit. Decoding into *Object stores
// o itself. Bad input or a mismatched target type gives an error, never a panic.
func (o Object) Decode(v any) error {
	if !o.format.Valid() {
		return fmt.Errorf("decode: %w: zero Object", ErrFormat)
	}
	if p, ok := v.(*Object); ok && p != nil {
		*p = o
		return nil
	}
	if rv := reflect.ValueOf(v); rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("pages: decode %v: target must be a non-nil pointer, not %T", o.format, v)
	}
	var err error
	switch o.format {
	case JSON:
		err = decodeJSON(o.text, v)
	case YAML:
		err = decodeYAML(o.text, v)
	case XML:
		err = decodeXML(o.text, v)
	}
	if err != nil {
		return fmt.Errorf("pages: decode %v: %w", o.format, err)
	}
	return nil
}

// Text returns the object's exact stored text.
func (o Object) Text() string { return o.text }

// Format returns the object's format (0 for the zero Object).
func (o Object) Format() Format { return o.format }

// Size returns len(o.Text()).
func (o Object) Size() int { return len(o.text) }

// Equal reports whether o and p have the same format and the same text.
func (o Object) Equal(p Object) bool { return o.format == p.format && o.text == p.text }

// IsZero reports whether o is the zero (invalid) Object.
func (o Object) IsZero() bool { return o.format == 0 }

// String returns the object's text, for debugging.
func (o Object) String() string { return o.text }

// firstInvalidUTF8 returns the offset of the first invalid UTF-8 byte in b.
func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// recovered turns a panic in a third-party decoder into an error, so garbage
// input never crashes the caller. yaml.v3 panics for some errors.
func recovered(err *error) {
	if r := recover(); r != nil {
		*err = errors.Join(*err, fmt.Errorf("panic: %v", r))
	}
}

// recoveredUnsupported turns a panic in a third-party encoder into an error
// matching ErrUnsupported: yaml.v3 panics on types it cannot marshal.
func recoveredUnsupported(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %v", ErrUnsupported, r)
	}
}
