package table

import (
	"errors"
	"fmt"
)

// Errors, all usable with errors.Is.
var (
	ErrDuplicateKey   = errors.New("txtdb/table: duplicate key")             // an insert of a primary key or unique value that is taken (see DuplicateKeyError)
	ErrSchemaMismatch = errors.New("txtdb/table: schema mismatch")           // the code defines another key type or other indexes than the store records
	ErrNotTable       = errors.New("txtdb/table: not a table")               // the namespace exists but holds no table schema
	ErrSchema         = errors.New("txtdb/table: bad schema")                // a stored schema or node this version cannot read
	ErrKeyType        = errors.New("txtdb/table: unsupported key type")      // a Go type that cannot be a key or index value
	ErrInvalidKey     = errors.New("txtdb/table: invalid key")               // a key value that cannot be stored, or a stored key of the wrong type
	ErrNoIndex        = errors.New("txtdb/table: no such index")             // DropIndex of an index the store does not have
	ErrInconsistent   = errors.New("txtdb/table: rows and indexes disagree") // Check: an index entry without its row, or a row without its entry
)

// DuplicateKeyError details an ErrDuplicateKey: which index ("" for the primary key) and the key.
type DuplicateKeyError struct {
	Table string
	Index string // "" for the primary key
	Key   any    // the key or index value, as the caller gave it
}

func (e *DuplicateKeyError) Error() string {
	if e.Index == "" {
		return fmt.Sprintf("%v: %s: primary key %v", ErrDuplicateKey, e.Table, e.Key)
	}
	return fmt.Sprintf("%v: %s: index %s value %v", ErrDuplicateKey, e.Table, e.Index, e.Key)
}

func (e *DuplicateKeyError) Unwrap() error { return ErrDuplicateKey }
