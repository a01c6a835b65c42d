package wal

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// AppendOp appends o's JSON encoding, exactly as a json.Encoder with SetEscapeHTML(false) writes
// it (without the newline), to b. The common op, whose strings need no escaping, is written
// directly; any other goes through encoding/json. Objects are compacted and checked as
// encoding/json does with a RawMessage. FuzzAppendOp holds the two to the same bytes.
func AppendOp(b *bytes.Buffer, o *Op) error {
	if !plainOp(o) {
		return encodeOpJSON(b, o)
	}
	start := b.Len()
	b.WriteString(`{"op":"`)
	b.WriteString(o.Kind)
	b.WriteString(`","ns":"`)
	b.WriteString(o.NS)
	b.WriteString(`","inc":"`)
	b.WriteString(o.Inc)
	b.WriteByte('"')
	if o.To != "" {
		b.WriteString(`,"to":"`)
		b.WriteString(o.To)
		b.WriteByte('"')
	}
	if o.Page != "" {
		b.WriteString(`,"page":"`)
		b.WriteString(o.Page)
		b.WriteByte('"')
	}
	if o.New {
		b.WriteString(`,"new":true`)
	}
	if len(o.Keys) > 0 {
		b.WriteString(`,"keys":[`)
		for i, k := range o.Keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('"')
			b.WriteString(k)
			b.WriteByte('"')
		}
		b.WriteByte(']')
	}
	if len(o.Objs) > 0 {
		b.WriteString(`,"objs":[`)
		for i, raw := range o.Objs {
			if i > 0 {
				b.WriteByte(',')
			}
			if raw == nil {
				b.WriteString("null") // what encoding/json writes for a nil RawMessage
				continue
			}
			if o.Compact {
				b.Write(raw) // what compacting it would write
				continue
			}
			if err := json.Compact(b, raw); err != nil {
				b.Truncate(start)
				return encodeOpJSON(b, o) // its error, in its words
			}
		}
		b.WriteByte(']')
	}
	var num [20]byte
	if o.From != 0 {
		b.WriteString(`,"from":`)
		b.Write(strconv.AppendUint(num[:0], o.From, 10))
	}
	if o.Upto != 0 {
		b.WriteString(`,"upto":`)
		b.Write(strconv.AppendUint(num[:0], o.Upto, 10))
	}
	b.WriteByte('}')
	return nil
}

// encodeOpJSON is AppendOp through encoding/json.
func encodeOpJSON(b *bytes.Buffer, o *Op) error {
	start := b.Len()
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(o); err != nil {
		b.Truncate(start)
		return err
	}
	b.Truncate(b.Len() - 1) // Encode's newline
	return nil
}

// plainOp reports whether every string of o is written by encoding/json as it is.
func plainOp(o *Op) bool {
	if !plainString(o.Kind) || !plainString(o.NS) || !plainString(o.Inc) || !plainString(o.To) || !plainString(o.Page) {
		return false
	}
	for _, k := range o.Keys {
		if !plainString(k) {
			return false
		}
	}
	return true
}

// plainString reports whether s is printable ASCII without '"' and '\\': the bytes encoding/json
// copies unchanged into a string's quotes (with HTML escaping off).
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
