package pages

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// XML objects are single elements as encoding/xml's Marshal writes them. A
// page file wraps them in <page>, each on its own line(s), verbatim. Objects
// are cut out of a page by the decoder's token offsets (InputOffset), never by
// searching the text, so any well-formed element content is safe.

const (
	xmlHeader    = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"
	xmlPageOpen  = "<page>\n"
	xmlPageClose = "</page>\n"
	xmlIndent    = "  "
	xmlPageName  = "page"
)

// encodeXML marshals v; the result must be exactly one element.
func encodeXML(v any) (s string, err error) {
	defer recoveredUnsupported(&err)
	b, err := xml.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	s, err = xmlFromText(b)
	if err != nil || s != string(b) {
		return "", fmt.Errorf("%w: xml: %T does not marshal to exactly one element", ErrUnsupported, v)
	}
	return s, nil
}

// xmlFromText validates that text is exactly one element, optionally preceded
// by an XML declaration and surrounded by white space, and returns the element.
func xmlFromText(text []byte) (string, error) {
	d := xml.NewDecoder(bytes.NewReader(text))
	start, end := int64(-1), int64(-1)
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", corrupt(d.InputOffset(), "xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if !isXMLSpace(t) {
				return "", corrupt(off, "xml: text outside the element")
			}
		case xml.ProcInst:
			if t.Target != "xml" || off != 0 {
				return "", corrupt(off, "xml: processing instruction outside the element")
			}
		case xml.StartElement:
			if start >= 0 {
				return "", corrupt(off, "xml: more than one element")
			}
			if err := d.Skip(); err != nil {
				return "", corrupt(d.InputOffset(), "xml: %w", err)
			}
			start, end = off, d.InputOffset()
		default:
			return "", corrupt(off, "xml: %T outside the element", tok)
		}
	}
	if start < 0 {
		return "", corrupt(int64(len(text)), "xml: no element")
	}
	return string(text[start:end]), nil
}

// decodeXML unmarshals text into v.
func decodeXML(text string, v any) (err error) {
	defer recovered(&err)
	return xml.Unmarshal([]byte(text), v)
}

// encodeXMLPage returns the XML declaration, then <page>, each object on its
// own line(s) indented by two spaces, and </page>.
func encodeXMLPage(objs []Object) []byte {
	n := len(xmlHeader) + len(xmlPageOpen) + len(xmlPageClose)
	for _, o := range objs {
		n += len(xmlIndent) + len(o.text) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, xmlHeader...)
	b = append(b, xmlPageOpen...)
	for _, o := range objs {
		b = append(b, xmlIndent...)
		b = append(b, o.text...)
		b = append(b, '\n')
	}
	b = append(b, xmlPageClose...)
	return b
}

// decodeXMLPage cuts the elements inside <page> out of data verbatim.
func decodeXMLPage(data []byte) ([]Object, error) {
	const (
		before = iota
		inside
		after
	)
	var objs []Object
	state := before
	d := xml.NewDecoder(bytes.NewReader(data))
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, corrupt(d.InputOffset(), "xml page: %w", err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if !isXMLSpace(t) {
				return nil, corrupt(off, "xml page: text outside the objects")
			}
		case xml.Comment:
			// Allowed anywhere between elements; not kept.
		case xml.ProcInst:
			if t.Target != "xml" || off != 0 {
				return nil, corrupt(off, "xml page: unexpected processing instruction")
			}
		case xml.StartElement:
			switch state {
			case before:
				if t.Name.Space != "" || t.Name.Local != xmlPageName || len(t.Attr) != 0 {
					return nil, corrupt(off, "xml page: root element is not a plain <page>")
				}
				state = inside
			case inside:
				if err := d.Skip(); err != nil {
					return nil, corrupt(d.InputOffset(), "xml page: %w", err)
				}
				s, err := xmlFromText(data[off:d.InputOffset()])
				if err != nil {
					return nil, shift(err, off)
				}
				objs = append(objs, Object{format: XML, text: s})
			default:
				return nil, corrupt(off, "xml page: element after </page>")
			}
		case xml.EndElement:
			// The decoder matches end tags to start tags, so this is </page>.
			state = after
		default:
			return nil, corrupt(off, "xml page: unexpected %T", tok)
		}
	}
	if state != after {
		return nil, corrupt(int64(len(data)), "xml page: missing </page> (truncated?)")
	}
	return objs, nil
}

// isXMLSpace reports whether b is only XML white space.
func isXMLSpace(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			return false
		}
	}
	return true
}

// shift moves the offset of a *CorruptError by base.
func shift(err error, base int64) error {
	var ce *CorruptError
	if errors.As(err, &ce) {
		return &CorruptError{Path: ce.Path, Offset: ce.Offset + base, Err: ce.Err}
	}
	return err
}
