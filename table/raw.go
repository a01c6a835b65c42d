package table

import (
	"errors"
	"fmt"

	"github.com/txtdb/txtdb"
)

// The functions below read tables without their Go types, from the stored schemas: for tools
// such as the txtdb command. Keys are written as people write them (see ParseKey).

// Info describes a stored table.
type Info struct {
	Name    string
	Key     string // the key type: "int64", "uuid", "key2(string,time)" ...
	Indexes []IndexInfo
}

// IndexInfo describes a stored index.
type IndexInfo struct {
	Name   string
	Unique bool
	Key    string // the value type
}

// Describe returns the schema of the table in namespace ns; ErrNotTable if ns holds none.
func Describe(tx *txtdb.Tx, ns string) (Info, error) {
	s, err := readSchema(tx, ns)
	if err != nil {
		return Info{}, err
	}
	info := Info{Name: ns, Key: s.doc.Key}
	for _, ix := range s.doc.Indexes {
		info.Indexes = append(info.Indexes, IndexInfo{Name: ix.Name, Unique: ix.Unique, Key: ix.Key})
	}
	return info, nil
}

// Tables lists the namespaces that hold tables.
func Tables(tx *txtdb.Tx) ([]string, error) {
	nss, err := tx.Namespaces()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ns := range nss {
		objs, err := tx.PeekPage(ns, schemaPage)
		if errors.Is(err, txtdb.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if isSchema(objs) {
			out = append(out, ns)
		}
	}
	return out, nil
}

// ParseKey parses a key of the table in ns as a person writes it: a decimal integer, a UUID, an
// RFC 3339 time, a string as it is; a composite key as a JSON list (["a", 7]). It returns the key
// as the table stores it (numbers as int64 or uint64, the rest as strings, a list for a composite
// key). ErrInvalidKey if the text is no key of the table's type.
func ParseKey(tx *txtdb.Tx, ns, text string) (any, error) {
	s, err := readSchema(tx, ns)
	if err != nil {
		return nil, err
	}
	d, err := parseKeyText(s.kt, text)
	if err != nil {
		return nil, fmt.Errorf("table %s (%s keys): %w", ns, s.doc.Key, err)
	}
	return s.kt.stored(d), nil
}

// RawRow is one row read without its Go type.
type RawRow struct {
	Key any // as stored
	Row any // decoded generically (JSON numbers as json.Number, with their exact digits)
}

// ScanRaw calls fn for the rows with from <= key < to, in key order; an empty from or to is
// open. The bounds are parsed as ParseKey parses them.
func ScanRaw(tx *txtdb.Tx, ns, from, to string, fn func(RawRow) error) error {
	s, err := readSchema(tx, ns)
	if err != nil {
		return err
	}
	var lo, hi string
	for _, b := range []struct {
		text string
		enc  *string
	}{{from, &lo}, {to, &hi}} {
		if b.text == "" {
			continue
		}
		d, err := parseKeyText(s.kt, b.text)
		if err != nil {
			return fmt.Errorf("table %s (%s keys): %w", ns, s.doc.Key, err)
		}
		if *b.enc, err = s.kt.enc(d); err != nil {
			return err
		}
	}
	if hi != "" && hi <= lo {
		return nil
	}
	return s.primary.scan(tx, lo, hi, func(e *ent) (bool, error) {
		r, err := rawRow(s, e)
		if err != nil {
			return false, err
		}
		return true, fn(r)
	})
}

// GetRaw returns the row with the key text (parsed as ParseKey parses it); ErrNotFound if
// there is none.
func GetRaw(tx *txtdb.Tx, ns, key string) (RawRow, error) {
	s, err := readSchema(tx, ns)
	if err != nil {
		return RawRow{}, err
	}
	d, err := parseKeyText(s.kt, key)
	if err != nil {
		return RawRow{}, fmt.Errorf("table %s (%s keys): %w", ns, s.doc.Key, err)
	}
	enc, err := s.kt.enc(d)
	if err != nil {
		return RawRow{}, err
	}
	_, _, e, err := s.primary.lookup(tx, enc)
	if err != nil {
		return RawRow{}, err
	}
	if e == nil {
		return RawRow{}, fmt.Errorf("%w: table %s, key %s", txtdb.ErrNotFound, ns, key)
	}
	return rawRow(s, e)
}

func rawRow(s *schema, e *ent) (RawRow, error) {
	var r struct {
		Row any `json:"row" yaml:"row"`
	}
	if err := e.obj.Decode(&r); err != nil {
		return RawRow{}, fmt.Errorf("%w: %s: row %s: %v", ErrSchema, s.ns, e.enc, err)
	}
	return RawRow{Key: s.kt.stored(e.key), Row: r.Row}, nil
}
