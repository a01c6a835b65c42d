// Package pages is txtdb's lowest storage layer for data: text formats, objects,
// page files, names, and the data directory's page version files. It knows
// nothing of transactions; it defines TSN, the version number the engine
// assigns.
//
// # Objects
//
// An Object is one stored value kept as its exact text in one Format: compact
// JSON (the default), one YAML document, or one XML element. Encode makes one
// from a Go value, ObjectFromText from text (validated, lightly normalized),
// and Object.Decode decodes it into the caller's type. An Object handed back to
// Encode is returned verbatim, never re-encoded, so text a person wrote keeps
// its number literals, key order and escapes. JSON numbers decoded into any
// are json.Number, so no digit is lost.
//
// # Page files
//
// A page is an ordered list of objects of one format in one file
// (EncodePage, DecodePage). The layouts are part of the on-disk format:
//
//	JSON   an array indented by two spaces, final newline; "[]\n" when empty
//	YAML   "---\n" before each object, "...\n" at the end; "# empty page\n" when empty
//	XML    `<?xml version="1.0" encoding="UTF-8"?>`, "<page>", each object on
//	       its own line(s) indented by two spaces, "</page>"
//
// Guaranteed: DecodePage(f, EncodePage(f, objs)) gives objects with exactly
// the original texts; every page file ends with a terminator ("]", "...",
// "</page>"), so a truncated file is reported as corrupt rather than read as a
// shorter page; garbage gives an error matching ErrCorrupt, never a panic.
// Page files hold data only: no layout version, no type tags.
//
// # File naming
//
// Namespace "app.users" lives in folder "app/users" of the data directory
// (NamespacePath). Page IDs are "page" and the page number padded to six
// digits, wider past 999999: "page000001", "page1000000" (PageID). A page
// version is the immutable file "<page ID>.<ext>.v<TSN>", for example
// "app/users/page000001.json.v42" (VersionFileName). While a version is being
// written it is a temporary file "." + that name + "." + random + ".tmp"
// in the same folder, which no parser accepts. MetaDir (".txtdb") holds the
// engine's metadata; no namespace can name it, since namespace segments
// cannot start with a dot.
//
// # Data directory
//
// Dir confines every access to the data directory with os.Root, after
// validating names: a crafted namespace or page ID is ErrInvalidName, and a
// symbolic link pointing outside is refused. WriteVersion publishes a version
// atomically (temporary file, fsync, hard link to the final name, fsync of the
// folder) and never overwrites one (fs.ErrExist). A Folder (OpenFolder) is an
// open folder for a caller that writes many files there: WriteVersion creates
// a version under its final name, Recycle writes one into the file of another
// (rename without replacing, then overwrite from the start and cut to length),
// Remove removes one, each relative to the folder's descriptor. ReadFolder
// lists a folder without a stat per entry.
//
// # Concurrency and errors
//
// Every function, Object and Dir method is safe for concurrent use by
// multiple goroutines, and Dir is safe to share a directory with other
// processes. Nothing blocks except on file I/O. Errors match the sentinels
// with errors.Is: ErrInvalidName (*NameError), ErrCorrupt (*CorruptError),
// ErrUnsupported, ErrFormat; file errors keep their fs.ErrExist and
// fs.ErrNotExist.
//
// # Caveats
//
//   - Not for NFS or other network file systems: atomic publishing and
//     directory fsync are only as good as the file system.
//   - os.Root stops names and symbolic links, not bind mounts or hard links
//     someone else made inside the directory.
//   - Namespaces are case-sensitive, so on a case-insensitive file system
//     (the macOS and Windows defaults) "App" and "app" share a folder.
//     Windows reserved names (CON, NUL, ...) are not rejected.
//   - Where hard links are not supported, WriteVersion falls back to
//     check-then-rename, which does not stop two concurrent writers of the
//     same version; the engine serializes checkpoints anyway.
//   - RemoveVersion is durable only after SyncNamespace.
//   - XML cannot hold every string: encoding/xml writes characters XML
//     forbids (most control characters, invalid UTF-8) as U+FFFD. Maps,
//     nil and values that marshal to several elements are ErrUnsupported.
//   - YAML uses go.yaml.in/yaml/v3's defaults: struct fields are lowercased
//     unless tagged, and decoding into any gives int, uint64 or float64.
//     A value yaml.v3 cannot read back after writing it (a string with a tab
//     before a line break, say) is ErrUnsupported, never stored damaged.
//   - time.Time values come back with a fixed zone of the same offset, not
//     the original *time.Location; their instants and offsets are exact.
//   - Layout.PageSize is a budget for object text plus ObjectOverhead per
//     object, not the exact size of the file (JSON indentation is extra).
package pages
