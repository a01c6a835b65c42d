package table

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Key2 is a composite key of two parts, ordered by A, then B.
type Key2[A, B any] struct {
	A A
	B B
}

// Key3 is a composite key of three parts, ordered by A, then B, then C.
type Key3[A, B, C any] struct {
	A A
	B B
	C C
}

// scalar is one key part's type, as recorded in the schema (PART OF THE FORMAT).
type scalar string

const (
	sString scalar = "string"
	sUUID   scalar = "uuid"
	sTime   scalar = "time"
	// Integer types are named as in Go: "int", "int8" ... "uint64". Their width bounds the
	// values a stored key may hold.
)

var intBits = map[scalar]int{
	"int": 64, "int8": 8, "int16": 16, "int32": 32, "int64": 64,
	"uint": 64, "uint8": 8, "uint16": 16, "uint32": 32, "uint64": 64,
}

func (s scalar) signed() bool { return strings.HasPrefix(string(s), "int") }

func (s scalar) valid() bool {
	return s == sString || s == sUUID || s == sTime || intBits[s] != 0
}

// keyType is a key's type: one scalar, or two or three for a composite key. Its name ("int64",
// "key2(string,uuid)") is what the schema records.
type keyType []scalar

func (kt keyType) String() string {
	if len(kt) == 1 {
		return string(kt[0])
	}
	parts := make([]string, len(kt))
	for i, s := range kt {
		parts[i] = string(s)
	}
	return fmt.Sprintf("key%d(%s)", len(kt), strings.Join(parts, ","))
}

// parseKeyType parses a schema's key type name.
func parseKeyType(name string) (keyType, error) {
	if s := scalar(name); s.valid() {
		return keyType{s}, nil
	}
	for _, n := range []int{2, 3} {
		prefix := fmt.Sprintf("key%d(", n)
		if strings.HasPrefix(name, prefix) && strings.HasSuffix(name, ")") {
			parts := strings.Split(name[len(prefix):len(name)-1], ",")
			if len(parts) != n {
				break
			}
			kt := make(keyType, n)
			for i, p := range parts {
				if kt[i] = scalar(p); !kt[i].valid() {
					return nil, fmt.Errorf("%w: key type %q", ErrSchema, name)
				}
			}
			return kt, nil
		}
	}
	return nil, fmt.Errorf("%w: key type %q", ErrSchema, name)
}

var (
	uuidType = reflect.TypeFor[uuid.UUID]()
	timeType = reflect.TypeFor[time.Time]()
)

// scalarOf maps a Go type to its scalar ("" if it is not a key part).
func scalarOf(t reflect.Type) scalar {
	switch t {
	case uuidType:
		return sUUID
	case timeType:
		return sTime
	}
	switch t.Kind() {
	case reflect.String:
		return sString
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return scalar(t.Kind().String())
	}
	return ""
}

// codec converts a Go key type K to and from its dynamic form: int64, uint64, string, uuid.UUID
// or time.Time for one part, []any of those for a composite key.
type codec[K any] struct {
	kt    keyType
	parts []reflect.Type // a composite key's part types; nil for a scalar key
}

func newCodec[K any]() (codec[K], error) {
	t := reflect.TypeFor[K]()
	if s := scalarOf(t); s != "" {
		return codec[K]{kt: keyType{s}}, nil
	}
	if t.Kind() == reflect.Struct && (t.NumField() == 2 || t.NumField() == 3) &&
		strings.HasPrefix(t.Name(), fmt.Sprintf("Key%d[", t.NumField())) && t.PkgPath() == reflect.TypeFor[Key2[int, int]]().PkgPath() {
		c := codec[K]{}
		for i := range t.NumField() {
			ft := t.Field(i).Type
			s := scalarOf(ft)
			if s == "" {
				return c, fmt.Errorf("%w: key part %s of %s", ErrKeyType, ft, t)
			}
			c.kt = append(c.kt, s)
			c.parts = append(c.parts, ft)
		}
		return c, nil
	}
	return codec[K]{}, fmt.Errorf("%w: %s (use a string, an integer type, uuid.UUID, time.Time, Key2 or Key3)", ErrKeyType, t)
}

func partToDyn(v reflect.Value) any {
	switch x := v.Interface().(type) {
	case uuid.UUID:
		return x
	case time.Time:
		return x
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	default:
		return v.Uint()
	}
}

func partFromDyn(t reflect.Type, d any) reflect.Value {
	v := reflect.New(t).Elem()
	switch x := d.(type) {
	case uuid.UUID, time.Time:
		v.Set(reflect.ValueOf(x))
	case string:
		v.SetString(x)
	case int64:
		v.SetInt(x)
	case uint64:
		v.SetUint(x)
	}
	return v
}

func (c codec[K]) toDyn(k K) any {
	v := reflect.ValueOf(&k).Elem()
	if c.parts == nil {
		return partToDyn(v)
	}
	out := make([]any, len(c.parts))
	for i := range c.parts {
		out[i] = partToDyn(v.Field(i))
	}
	return out
}

func (c codec[K]) fromDyn(d any) K {
	var k K
	v := reflect.ValueOf(&k).Elem()
	if c.parts == nil {
		v.Set(partFromDyn(v.Type(), d))
		return k
	}
	for i, p := range d.([]any) {
		v.Field(i).Set(partFromDyn(c.parts[i], p))
	}
	return k
}

// Time keys are UTC nanoseconds since 1970: instants outside int64's range are refused.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// encPart appends the order-preserving text of one part: fixed-width hex for numbers, UUIDs and
// times, hex bytes and a "." for strings (prefix-free, and '.' sorts below every hex digit, so
// "ab" < "abc"). The result is ASCII, so it survives JSON unchanged (PART OF THE FORMAT: it is
// the key a keyed append names).
func encPart(b []byte, s scalar, d any) ([]byte, error) {
	switch s {
	case sString:
		b = hex.AppendEncode(b, []byte(d.(string)))
		return append(b, '.'), nil
	case sUUID:
		u := d.(uuid.UUID)
		return hex.AppendEncode(b, u[:]), nil
	case sTime:
		t := d.(time.Time)
		if t.Before(minTime) || t.After(maxTime) {
			return nil, fmt.Errorf("%w: time %s is outside the range of UTC nanoseconds", ErrInvalidKey, t)
		}
		return fmt.Appendf(b, "%016x", uint64(t.UnixNano())^(1<<63)), nil
	}
	if s.signed() {
		return fmt.Appendf(b, "%016x", uint64(d.(int64))^(1<<63)), nil
	}
	return fmt.Appendf(b, "%016x", d.(uint64)), nil
}

// enc returns the order-preserving text of a dynamic key.
func (kt keyType) enc(d any) (string, error) {
	var b []byte
	var err error
	if len(kt) == 1 {
		b, err = encPart(b, kt[0], d)
	} else {
		for i, p := range d.([]any) {
			if b, err = encPart(b, kt[i], p); err != nil {
				break
			}
		}
	}
	return string(b), err
}

// stored returns the value a page holds for a dynamic key: numbers as numbers, strings as
// strings, UUIDs in their canonical text, times as RFC 3339 in UTC; a composite key as a list.
func (kt keyType) stored(d any) any {
	part := func(s scalar, p any) any {
		switch x := p.(type) {
		case uuid.UUID:
			return x.String()
		case time.Time:
			return x.UTC().Format(time.RFC3339Nano)
		}
		return p
	}
	if len(kt) == 1 {
		return part(kt[0], d)
	}
	ps := d.([]any)
	out := make([]any, len(ps))
	for i, p := range ps {
		out[i] = part(kt[i], p)
	}
	return out
}

// fromStored parses what a page holds (as decoded from JSON with UseNumber, or from YAML) back
// into a dynamic key, refusing anything that is not exactly of the key's type.
func (kt keyType) fromStored(v any) (any, error) {
	if len(kt) == 1 {
		return parsePart(kt[0], v)
	}
	vs, ok := v.([]any)
	if !ok || len(vs) != len(kt) {
		return nil, fmt.Errorf("%w: %v is not a %s", ErrInvalidKey, v, kt)
	}
	out := make([]any, len(kt))
	for i, p := range vs {
		d, err := parsePart(kt[i], p)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

func parsePart(s scalar, v any) (any, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: %v (%T) is not a %s%s", ErrInvalidKey, v, v, s, why)
	}
	switch s {
	case sString:
		if x, ok := v.(string); ok {
			return x, nil
		}
		return nil, bad("")
	case sUUID:
		x, ok := v.(string)
		if !ok {
			return nil, bad("")
		}
		u, err := uuid.Parse(x)
		if err != nil || u.String() != x {
			return nil, bad(": not a canonical UUID")
		}
		return u, nil
	case sTime:
		x, ok := v.(string)
		if !ok {
			return nil, bad("")
		}
		t, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return nil, bad(": " + err.Error())
		}
		return t.UTC(), nil
	}
	var text string
	switch x := v.(type) {
	case json.Number:
		text = string(x)
	case int:
		text = strconv.Itoa(x)
	case int64:
		text = strconv.FormatInt(x, 10)
	case uint64:
		text = strconv.FormatUint(x, 10)
	default:
		return nil, bad("")
	}
	return parseInt(s, text)
}

// parseInt parses a decimal integer of scalar s, within its width.
func parseInt(s scalar, text string) (any, error) {
	if s.signed() {
		n, err := strconv.ParseInt(text, 10, intBits[s])
		if err != nil {
			return nil, fmt.Errorf("%w: %q is not an %s", ErrInvalidKey, text, s)
		}
		return n, nil
	}
	n, err := strconv.ParseUint(text, 10, intBits[s])
	if err != nil {
		return nil, fmt.Errorf("%w: %q is not a %s", ErrInvalidKey, text, s)
	}
	return n, nil
}

// ParseKey parses a key written by a person, for a key type named as the schema names it: a
// decimal integer, a UUID, an RFC 3339 time, a string as it is; a composite key as a JSON list
// (["a", 7]). It returns the key's dynamic value, for tools without the table's Go types.
func parseKeyText(kt keyType, text string) (any, error) {
	if len(kt) == 1 {
		return parseScalarText(kt[0], text)
	}
	var parts []json.RawMessage
	if err := json.Unmarshal([]byte(text), &parts); err != nil || len(parts) != len(kt) {
		return nil, fmt.Errorf("%w: %q is not a JSON list of %d parts", ErrInvalidKey, text, len(kt))
	}
	out := make([]any, len(kt))
	for i, p := range parts {
		s := string(p)
		if kt[i] == sString || kt[i] == sUUID || kt[i] == sTime {
			// null unmarshals into a string without an error, leaving it "null".
			if err := json.Unmarshal(p, &s); err != nil || string(p) == "null" {
				return nil, fmt.Errorf("%w: part %d of %q is not a JSON string", ErrInvalidKey, i+1, text)
			}
		}
		d, err := parseScalarText(kt[i], s)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

func parseScalarText(s scalar, text string) (any, error) {
	switch s {
	case sString:
		return text, nil
	case sUUID:
		u, err := uuid.Parse(text)
		if err != nil {
			return nil, fmt.Errorf("%w: %q is not a UUID", ErrInvalidKey, text)
		}
		return u, nil
	case sTime:
		t, err := time.Parse(time.RFC3339Nano, text)
		if err != nil {
			return nil, fmt.Errorf("%w: %q is not an RFC 3339 time", ErrInvalidKey, text)
		}
		return t.UTC(), nil
	}
	return parseInt(s, text)
}
