package pages

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Names that are part of the on-disk format.
const (
	// MetaDir is the name of the metadata folder at the top of the data
	// directory. No namespace can map to it.
	MetaDir = ".txtdb"
	// MaxNameLen is the longest namespace name, in bytes.
	MaxNameLen = 200
	// MaxSegmentLen is the longest segment of a namespace name (one folder
	// name), in bytes.
	MaxSegmentLen = 100

	pagePrefix   = "page"
	pageIDDigits = 6
	nsSeparator  = "."
)

// PageID returns the page ID of page number n: "page" and n in decimal, padded
// with zeros to six digits ("page000001"), wider past 999999 ("page1000000").
// Page numbers start at 1.
//
// REQUIRES: n >= 1; PageID panics on 0, which no page has.
func PageID(n uint64) string {
	if n == 0 {
		panic("pages: PageID(0): page numbers start at 1")
	}
	var b [len(pagePrefix) + 20]byte // one allocation: the string
	i := len(b)
	for ; n > 0 || len(b)-i < pageIDDigits; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	i -= len(pagePrefix)
	copy(b[i:], pagePrefix)
	return string(b[i:])
}

// ParsePageID returns the page number of id. It is strict: id must be exactly
// what PageID returns for some n >= 1 (no sign, no extra zeros, no other
// characters), else the error is a *NameError of Kind "page".
func ParsePageID(id string) (uint64, error) {
	bad := func(reason string) (uint64, error) {
		return 0, &NameError{Kind: kindPage, Name: id, Reason: reason}
	}
	digits, ok := strings.CutPrefix(id, pagePrefix)
	if !ok {
		return bad(`does not start with "page"`)
	}
	if len(digits) < pageIDDigits {
		return bad("fewer than 6 digits")
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return bad("not a decimal number")
		}
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return bad("number out of range")
	}
	if n == 0 {
		return bad("page numbers start at 1")
	}
	if len(digits) > pageIDDigits && digits[0] == '0' { // PageID pads to 6 digits, no further
		return bad("extra leading zeros")
	}
	return n, nil
}

// VersionFileName returns the name of the file holding version tsn of page
// pageID in format f: "page000001.json.v42". It does not validate its
// arguments; WriteVersion and friends do.
func VersionFileName(pageID string, f Format, tsn TSN) string {
	return pageID + "." + f.Ext() + ".v" + strconv.FormatUint(uint64(tsn), 10)
}

// ParseVersionFileName splits a version file name made by VersionFileName.
// It is strict: the page ID must parse, the extension must be exactly
// "json", "yaml" or "xml", and the TSN must be decimal without leading zeros
// and not 0. Else the error is a *NameError of Kind "page".
func ParseVersionFileName(name string) (pageID string, f Format, tsn TSN, err error) {
	bad := func(reason string) (string, Format, TSN, error) {
		return "", 0, 0, &NameError{Kind: kindPage, Name: name, Reason: reason}
	}
	id, rest, ok := strings.Cut(name, ".")
	if !ok {
		return bad("not <page>.<ext>.v<tsn>")
	}
	if _, err := ParsePageID(id); err != nil {
		return bad("bad page ID")
	}
	ext, v, ok := strings.Cut(rest, ".")
	if !ok {
		return bad("not <page>.<ext>.v<tsn>")
	}
	switch ext {
	case "json":
		f = JSON
	case "yaml":
		f = YAML
	case "xml":
		f = XML
	default:
		return bad("unknown extension")
	}
	digits, ok := strings.CutPrefix(v, "v")
	if !ok || digits == "" || digits[0] == '0' {
		return bad("bad version")
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return bad("bad version")
		}
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return bad("version out of range")
	}
	return id, f, TSN(n), nil
}

// ValidateNamespace checks a namespace name: segments separated by dots, any
// depth, case-sensitive. The error is a *NameError of Kind "namespace" for an
// empty name, an empty segment ("a..b", ".a", "a."), a "." or ".." segment, a
// segment starting with a dot (so MetaDir can never be reached), '/', '\\',
// NUL or any other control character, invalid UTF-8, a name longer than
// MaxNameLen bytes, or a segment longer than MaxSegmentLen bytes. It is safe
// for concurrent use.
func ValidateNamespace(ns string) error {
	if reason := namespaceProblem(ns); reason != "" {
		return &NameError{Kind: kindNamespace, Name: ns, Reason: reason}
	}
	return nil
}

// namespaceProblem says what is wrong with namespace name ns, or "".
func namespaceProblem(ns string) string {
	if ns == "" {
		return "empty"
	}
	if len(ns) > MaxNameLen {
		return "longer than " + strconv.Itoa(MaxNameLen) + " bytes"
	}
	for seg := range strings.SplitSeq(ns, nsSeparator) {
		if reason := segmentProblem(seg); reason != "" {
			return reason
		}
	}
	return ""
}

// NamespacePath returns the folder of namespace ns relative to the data
// directory, slash-separated: "app.users" -> "app/users". Invalid names give
// the error of ValidateNamespace.
func NamespacePath(ns string) (string, error) {
	if err := ValidateNamespace(ns); err != nil {
		return "", err
	}
	return strings.ReplaceAll(ns, nsSeparator, "/"), nil
}

// Namespace returns the namespace name of a folder path made by
// NamespacePath: "app/users" -> "app.users". Invalid paths give a *NameError
// of Kind "namespace".
func Namespace(nsPath string) (string, error) {
	if strings.Contains(nsPath, nsSeparator) {
		return "", &NameError{Kind: kindNamespace, Name: nsPath, Reason: "path segment contains a dot"}
	}
	ns := strings.ReplaceAll(nsPath, "/", nsSeparator)
	if reason := namespaceProblem(ns); reason != "" {
		return "", &NameError{Kind: kindNamespace, Name: nsPath, Reason: reason}
	}
	return ns, nil
}

// segmentProblem says what is wrong with one namespace segment, or "".
func segmentProblem(seg string) string {
	switch {
	case seg == "":
		return "empty segment"
	case len(seg) > MaxSegmentLen:
		return "segment longer than " + strconv.Itoa(MaxSegmentLen) + " bytes"
	case seg == MetaDir:
		return "segment " + MetaDir + " is reserved"
	case strings.HasPrefix(seg, "."):
		return "segment starts with a dot"
	case !utf8.ValidString(seg):
		return "invalid UTF-8"
	}
	for _, r := range seg {
		switch {
		case r == '/' || r == '\\':
			return "contains a slash or backslash"
		case r == 0:
			return "contains NUL"
		case unicode.IsControl(r):
			return "contains a control character"
		}
	}
	return ""
}
