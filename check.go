package txtdb

import (
	"context"

	"github.com/txtdb/txtdb/txn"
)

// Problem is one defect Check found: Path (relative to the data directory) and Err, which
// matches ErrCorrupt, ErrVersion, ErrUnexpectedFile, ErrLeftover or a file system error. A
// Problem is an error; String and Error give one line, "path: message".
type Problem = txn.Problem

// Check verifies the store this handle has open without changing anything; see CheckDir. It
// waits for a running checkpoint at most Options.LockTimeout or until ctx ends.
func (db *DB) Check(ctx context.Context) ([]Problem, error) { return db.eng.Check(ctx) }

// CheckDir verifies the store in dir without opening it, so it works on a store too damaged to
// open, and changes nothing (files are opened read-only, nothing is created or repaired). It
// checks txtdb.json, state, the log's checksum chain and TSN sequence up to state, the
// checkpoint, that every page version file decodes and that the versions the checkpoint needs
// exist, files outside the layout and leftovers of dead processes. It returns the problems,
// sorted by path (none for a healthy store), and an error only when the check could not run
// (dir cannot be read, or ctx ended while it waited for a running checkpoint).
func CheckDir(ctx context.Context, dir string) ([]Problem, error) { return txn.CheckDir(ctx, dir) }
