package pages

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// YAML objects are single documents as go.yaml.in/yaml/v3 emits them (2-space
// indent, final newline, no document markers). A page file is a multi-document
// stream: every object is preceded by a line "---" and the page ends with a
// line "...", so a truncated page is detected. An empty page is the single
// comment line yamlEmptyPage.
//
// Splitting is by lines that are exactly "---". That is exact because no
// object text contains a document marker line ("---" or "..." at the start of
// a line, followed by a blank or the end of the line): ObjectFromText rejects
// such text and Encode never produces it. Each piece is then validated as
// exactly one document on its own.

const (
	yamlIndent    = 2
	yamlDocStart  = "---\n"
	yamlDocEnd    = "...\n"
	yamlEmptyPage = "# empty page\n"
	utf8BOM       = "\ufeff"
)

// encodeYAML encodes v as one YAML document.
func encodeYAML(v any) (s string, err error) {
	defer recoveredUnsupported(&err)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(yamlIndent)
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	if err := enc.Close(); err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	s, err = yamlFromText(b.Bytes())
	if err != nil {
		return "", fmt.Errorf("%w: yaml.v3 output cannot be stored as one object: %w", ErrUnsupported, err)
	}
	return s, nil
}

// yamlFromText normalizes text (see ObjectFromText) and validates that it is
// exactly one YAML document with no document marker lines.
func yamlFromText(text []byte) (s string, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = "", corrupt(0, "yaml: panic: %v", r)
		}
	}()
	if bytes.HasPrefix(text, []byte(utf8BOM)) {
		return "", corrupt(0, "yaml: byte order mark")
	}
	base := int64(0)
	if bytes.HasPrefix(text, []byte(yamlDocStart)) {
		text = text[len(yamlDocStart):]
		base = int64(len(yamlDocStart))
	}
	t := string(text)
	if !strings.HasSuffix(t, "\n") {
		t += "\n"
	}
	if t == yamlDocEnd {
		t = ""
	} else if strings.HasSuffix(t, "\n"+yamlDocEnd) {
		t = t[:len(t)-len(yamlDocEnd)]
	}
	if off := yamlMarkerLine(t); off >= 0 {
		return "", corrupt(base+int64(off), "yaml: document marker line inside an object")
	}
	d := yaml.NewDecoder(strings.NewReader(t))
	var doc yaml.Node
	if err := d.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return "", corrupt(base, "yaml: no document")
		}
		return "", corrupt(base, "yaml: %w", err)
	}
	var v any
	if err := doc.Decode(&v); err != nil {
		return "", corrupt(base, "yaml: %w", err)
	}
	var next yaml.Node
	if err := d.Decode(&next); !errors.Is(err, io.EOF) {
		if err == nil {
			err = errors.New("more than one document")
		}
		return "", corrupt(base, "yaml: %w", err)
	}
	return t, nil
}

// decodeYAML unmarshals text into v.
func decodeYAML(text string, v any) (err error) {
	defer recovered(&err)
	return yaml.Unmarshal([]byte(text), v)
}

// yamlMarkerLine returns the offset of the first line of s that starts with a
// document marker ("---" or "..." followed by a blank, a line break or the
// end), or -1. Line breaks are those of yaml.v3's scanner: CR, LF, CRLF, NEL,
// LS and PS.
func yamlMarkerLine(s string) int {
	if isYAMLMarker(s, 0) {
		return 0
	}
	for i := 0; i < len(s); {
		if n := yamlBreakLen(s, i); n > 0 {
			i += n
			if isYAMLMarker(s, i) {
				return i
			}
			continue
		}
		i++
	}
	return -1
}

// isYAMLMarker reports whether s[i:] starts with a document marker.
func isYAMLMarker(s string, i int) bool {
	if len(s)-i < 3 {
		return false
	}
	if m := s[i : i+3]; m != "---" && m != "..." {
		return false
	}
	j := i + 3
	return j == len(s) || s[j] == ' ' || s[j] == '\t' || yamlBreakLen(s, j) > 0
}

// yamlBreakLen returns the length of the line break at s[i], or 0.
func yamlBreakLen(s string, i int) int {
	switch {
	case strings.HasPrefix(s[i:], "\r\n"):
		return 2
	case s[i] == '\r' || s[i] == '\n':
		return 1
	case strings.HasPrefix(s[i:], "\u0085"):
		return 2
	case strings.HasPrefix(s[i:], "\u2028"), strings.HasPrefix(s[i:], "\u2029"):
		return 3
	}
	return 0
}

// encodeYAMLPage returns "---\n" before every object and "...\n" at the end,
// or yamlEmptyPage for no objects.
func encodeYAMLPage(objs []Object) []byte {
	if len(objs) == 0 {
		return []byte(yamlEmptyPage)
	}
	n := len(yamlDocEnd)
	for _, o := range objs {
		n += len(yamlDocStart) + len(o.text)
	}
	b := make([]byte, 0, n)
	for _, o := range objs {
		b = append(b, yamlDocStart...)
		b = append(b, o.text...)
	}
	return append(b, yamlDocEnd...)
}

// decodeYAMLPage splits a page at its "---" lines and validates each piece.
func decodeYAMLPage(data []byte) ([]Object, error) {
	if string(data) == yamlEmptyPage {
		return nil, nil
	}
	if !bytes.HasSuffix(data, []byte("\n"+yamlDocEnd)) {
		return nil, corrupt(int64(len(data)), `yaml page: no final "..." line (truncated?)`)
	}
	body := data[:len(data)-len(yamlDocEnd)]
	if !bytes.HasPrefix(body, []byte(yamlDocStart)) {
		return nil, corrupt(0, `yaml page: no "---" line before the first object`)
	}
	sep := []byte("\n" + yamlDocStart)
	var objs []Object
	for start := len(yamlDocStart); ; {
		// body[start-1] is the newline that ends the "---" line.
		end := len(body)
		next := -1
		if i := bytes.Index(body[start-1:], sep); i >= 0 {
			end = start + i
			next = end + len(yamlDocStart)
		}
		s, err := yamlFromText(body[start:end])
		if err != nil {
			return nil, shift(err, int64(start))
		}
		objs = append(objs, Object{format: YAML, text: s})
		if next < 0 {
			return objs, nil
		}
		start = next
	}
}
