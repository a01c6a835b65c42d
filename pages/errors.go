package pages

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers test for them with errors.Is; the details travel in
// *CorruptError and *NameError, which unwrap to ErrCorrupt and ErrInvalidName.
var (
	// ErrInvalidName reports a namespace, page ID or version file name that is
	// not valid (see ValidateNamespace and ParsePageID).
	ErrInvalidName = errors.New("pages: invalid name")
	// ErrCorrupt reports text that is not what this package writes: a page file
	// or object text that does not parse, is truncated or breaks the page
	// layout.
	ErrCorrupt = errors.New("pages: corrupt")
	// ErrUnsupported reports a Go value the format cannot represent, such as a
	// map in XML, a NaN in JSON or a channel in any format.
	ErrUnsupported = errors.New("pages: value not representable in this format")
	// ErrFormat reports a format mismatch: an Object of another format, an
	// invalid or zero Format or a zero Object.
	ErrFormat = errors.New("pages: format mismatch")
)

// CorruptError describes corrupt data: the file (a slash-separated path
// relative to the data directory; empty when the data did not come from a
// file, as in DecodePage), the byte offset where the problem was found (best
// effort: at or just past the problem) and the cause. It unwraps to ErrCorrupt.
type CorruptError struct {
	Path   string
	Offset int64
	Err    error
}

// Error returns "pages: corrupt <path> at <offset>: <err>".
func (e *CorruptError) Error() string {
	path := e.Path
	if path == "" {
		path = "data"
	}
	return fmt.Sprintf("pages: corrupt %s at %d: %v", path, e.Offset, e.Err)
}

// Unwrap returns ErrCorrupt.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// corrupt returns a *CorruptError without a path at offset off.
func corrupt(off int64, format string, args ...any) error {
	return &CorruptError{Offset: off, Err: fmt.Errorf(format, args...)}
}

// Kinds of name in NameError.Kind.
const (
	kindNamespace = "namespace"
	kindPage      = "page"
)

// NameError describes an invalid name. Kind is "namespace" or "page" (page
// IDs and version file names); Reason says what is wrong. It unwraps to
// ErrInvalidName.
type NameError struct {
	Kind   string
	Name   string
	Reason string
}

// Error returns `pages: invalid <kind> name "<name>": <reason>`.
func (e *NameError) Error() string {
	return fmt.Sprintf("pages: invalid %s name %q: %s", e.Kind, e.Name, e.Reason)
}

// Unwrap returns ErrInvalidName.
func (e *NameError) Unwrap() error { return ErrInvalidName }
