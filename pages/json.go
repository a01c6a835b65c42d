package pages

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// JSON objects are compact JSON text; a JSON page file is the indented array
// of them. json.Compact and json.Indent only touch white space outside
// strings, so an object's text survives the trip through a page file exactly.

// encodeJSON encodes v as compact JSON without HTML escaping.
func encodeJSON(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	// The Encoder compacts the output of MarshalJSON methods too; it ends
	// with one newline. Encode checks UTF-8.
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// jsonFromText validates that text is one JSON value and returns it compacted.
func jsonFromText(text []byte) (string, error) {
	var b bytes.Buffer
	if err := json.Compact(&b, text); err != nil {
		return "", corrupt(jsonErrorOffset(err, len(text)), "json: %w", err)
	}
	if b.Len() == 0 {
		return "", corrupt(0, "json: no value")
	}
	return b.String(), nil
}

// decodeJSON decodes text into v, keeping numbers exact in any. A target that holds no interface
// (an int, a struct of plain fields) cannot tell UseNumber from its absence, so it is decoded
// with json.Unmarshal, which costs less than a Decoder (its buffer alone is 512 bytes). text is
// one JSON value (an Object's), so the two accept the same input.
func decodeJSON(text string, v any) error {
	if !holdsInterface(reflect.TypeOf(v)) {
		return json.Unmarshal([]byte(text), v)
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	return dec.Decode(v)
}

// interfaceTypes caches holdsInterface by type.
var interfaceTypes sync.Map // reflect.Type -> bool

// holdsInterface reports whether decoding into a value of type t may decode into an interface
// (where UseNumber matters): t is, or contains through pointers, slices, arrays, maps and struct
// fields, an interface type. A nil t (v is nil) says yes: let the Decoder report it.
func holdsInterface(t reflect.Type) bool {
	if t == nil {
		return true
	}
	if r, ok := interfaceTypes.Load(t); ok {
		return r.(bool)
	}
	r := containsInterface(t, map[reflect.Type]bool{})
	interfaceTypes.Store(t, r)
	return r
}

func containsInterface(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false // a recursive type: its other fields decide
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return containsInterface(t.Elem(), seen)
	case reflect.Map:
		return containsInterface(t.Key(), seen) || containsInterface(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if containsInterface(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
}

// encodeJSONPage returns the objects as an indented JSON array (2 spaces)
// with a trailing newline.
func encodeJSONPage(objs []Object) ([]byte, error) {
	n := 2
	for _, o := range objs {
		n += len(o.text) + 1
	}
	raw := make([]byte, 0, n)
	raw = append(raw, '[')
	for i, o := range objs {
		if i > 0 {
			raw = append(raw, ',')
		}
		raw = append(raw, o.text...)
	}
	raw = append(raw, ']')
	var b bytes.Buffer
	b.Grow(n + n/4)
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		// INVARIANT: every JSON Object holds one valid JSON value.
		return nil, fmt.Errorf("pages: encode json page: %w", err)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// decodeJSONPage splits a JSON array into compact objects. One json.Compact of the whole page
// validates it and removes the indentation; the objects are then the top-level elements of that
// compact text, substrings of one string (a page read back from its file costs one pass and one
// allocation, not a reflective decode and a compaction per object).
func decodeJSONPage(data []byte) ([]Object, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return nil, corrupt(int64(len(data)-len(trimmed)), "json page: not an array")
	}
	var b bytes.Buffer
	b.Grow(len(data))
	if err := json.Compact(&b, data); err != nil {
		// Compact does not say where the text went wrong: the decoder does.
		var raws []json.RawMessage
		if uerr := json.Unmarshal(data, &raws); uerr != nil {
			err = uerr
		}
		return nil, corrupt(jsonErrorOffset(err, len(data)), "json page: %w", err)
	}
	text := b.String() // INVARIANT: one valid JSON value, compact, starting with '['
	if len(text) == 2 {
		return nil, nil // []
	}
	var objs []Object
	depth, start, inString := 0, 1, false
	for i := 1; i < len(text); i++ {
		c := text[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
		case '}', ']':
			if depth > 0 {
				depth--
				continue
			}
			fallthrough // the array's own ']'
		case ',':
			if depth == 0 {
				objs = append(objs, Object{format: JSON, text: text[start:i]})
				start = i + 1
			}
		}
	}
	return objs, nil
}

// jsonErrorOffset returns where encoding/json found err, or end.
func jsonErrorOffset(err error, end int) int64 {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return se.Offset
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Offset
	}
	return int64(end)
}
