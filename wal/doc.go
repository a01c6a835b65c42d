// Package wal is txtdb's commit log format: the checksummed, chained record lines of a log
// segment, the segment files themselves, and the two-slot state file that names the committed TSN
// and where the log ends. The engine (package txn) writes them under its commit lock; any reader
// (the engine's catch-up, the change feed, Check) reads them without a lock, never past state.
// docs/FORMAT.md ("Commit log and state") is the specification; constants that are part of the
// format say so.
//
// # Guarantees
//
//   - A record is valid only right after the record it was written after: its CRC-32C starts
//     from the previous line's (the segment header's starts from 0). ScanRecords stops at the
//     first line that is not a whole, valid record, and at the zeros a segment is preallocated
//     with; it never panics on garbage.
//   - A state slot that was torn by a concurrent write fails its checksum; Read then uses the
//     other slot. Write only ever overwrites the slot the last write did not use.
//   - Read copies both slots from a read-only shared mapping of the file (MappedFile), not with
//     a system call; a file something else cut short under the mapping never kills the process
//     with SIGBUS: it reads as what is left of it, zeros past the end within its last page (a
//     slot of zeros fails its checksum).
//   - A segment header, a state slot or a record of another layout version is ErrVersion, never
//     read as this one.
//
// # Caveats
//
//   - The package knows nothing of locks, recovery or transactions: callers that write hold the
//     commit lock (see package txn and docs/PROTOCOL.md).
//   - Segment files are preallocated with real zeros; ReadRange reads to the end of the file, so
//     callers bound what they read by state's position.
package wal
