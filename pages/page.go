package pages

import (
	"fmt"
	"unicode/utf8"
)

// EncodePage returns the page file holding objs, in order. Every object must
// be of format f (else an error matching ErrFormat). It is safe for concurrent
// use. The layouts (part of the on-disk format, see docs/FORMAT.md):
//   - JSON: an array indented by two spaces, with a final newline; each
//     object indented with json.Indent. An empty page is "[]\n".
//   - YAML: each object preceded by a line "---", then a final line "...".
//     An empty page is the line "# empty page".
//   - XML: an XML declaration, "<page>", each object on its own line(s)
//     indented by two spaces, "</page>".
//
// DecodePage(f, EncodePage(f, objs)) returns objects whose Text equals the
// originals exactly.
func EncodePage(f Format, objs []Object) ([]byte, error) {
	if err := checkFormat(f); err != nil {
		return nil, err
	}
	for i, o := range objs {
		if o.format != f {
			return nil, fmt.Errorf("encode %v page: object %d: %w: %v object", f, i, ErrFormat, o.format)
		}
	}
	switch f {
	case JSON:
		return encodeJSONPage(objs)
	case YAML:
		return encodeYAMLPage(objs), nil
	default:
		return encodeXMLPage(objs), nil
	}
}

// DecodePage splits a page file into its objects. Data that is not a page
// file of format f (corrupt, truncated, not UTF-8, or an object that fails
// ObjectFromText) gives a *CorruptError without a path, matching ErrCorrupt;
// callers that know the file set its Path. It never panics. It is safe for
// concurrent use. An empty page gives no objects and a nil error.
//
// Each object is the one ObjectFromText would make of its text in the file,
// so a page written by EncodePage reads back exactly, and a hand-edited one
// reads back normalized (compact JSON, for example).
func DecodePage(f Format, data []byte) ([]Object, error) {
	if err := checkFormat(f); err != nil {
		return nil, err
	}
	if !utf8.Valid(data) {
		return nil, corrupt(int64(firstInvalidUTF8(data)), "%v page is not valid UTF-8", f)
	}
	switch f {
	case JSON:
		return decodeJSONPage(data)
	case YAML:
		return decodeYAMLPage(data)
	default:
		return decodeXMLPage(data)
	}
}
