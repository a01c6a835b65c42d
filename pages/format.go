package pages

import (
	"fmt"
	"strconv"
	"strings"
)

// Format is the text format of a store's objects and page files. The numeric
// values are not part of the on-disk format; the names returned by String are.
type Format uint8

// The formats. JSON is the default.
const (
	JSON Format = iota + 1
	YAML
	XML
)

// String returns "json", "yaml" or "xml", or "Format(n)" for an invalid Format.
func (f Format) String() string {
	switch f {
	case JSON:
		return "json"
	case YAML:
		return "yaml"
	case XML:
		return "xml"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// Ext returns the file extension of the format without the dot: "json", "yaml"
// or "xml" (part of the on-disk format), or "" for an invalid Format.
func (f Format) Ext() string {
	if !f.Valid() {
		return ""
	}
	return f.String()
}

// Valid reports whether f is JSON, YAML or XML.
func (f Format) Valid() bool { return f >= JSON && f <= XML }

// ParseFormat parses "json", "yaml" (or "yml") and "xml", in any case. Any
// other string gives an error matching ErrFormat.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "json":
		return JSON, nil
	case "yaml", "yml":
		return YAML, nil
	case "xml":
		return XML, nil
	}
	return 0, fmt.Errorf("%w: unknown format %q", ErrFormat, s)
}

// checkFormat returns an error matching ErrFormat if f is not valid.
func checkFormat(f Format) error {
	if !f.Valid() {
		return fmt.Errorf("%w: invalid %v", ErrFormat, f)
	}
	return nil
}
