package txn

import (
	"os"

	"github.com/txtdb/txtdb/wal"
)

// The engine's short names for the log format's types (package wal).
type (
	logPos    = wal.Pos
	state     = wal.State
	record    = wal.Record
	op        = wal.Op
	scanned   = wal.Scanned
	stateFile = wal.StateFile
)

// Op kinds, as the engine spells them.
const (
	opPut     = wal.OpPut
	opAppend  = wal.OpAppend
	opDel     = wal.OpDel
	opCreate  = wal.OpCreate
	opDrop    = wal.OpDrop
	opRename  = wal.OpRename
	opReserve = wal.OpReserve
)

// eraseSync is wal.EraseSync behind the engine's fault hook.
func eraseSync(f *os.File, from, to int64) error {
	if err := faults.hit(faultLogErase); err != nil {
		return err
	}
	return wal.EraseSync(f, from, to)
}

// writeState is StateFile.Write behind the engine's fault hook. REQUIRES: commit lock held.
func writeState(sf *stateFile, s state, sync bool) error {
	if err := faults.hit(faultStateWrite); err != nil {
		return err
	}
	return sf.Write(s, sync)
}

// syncState is StateFile.Sync behind the engine's fault hook. REQUIRES: commit lock held.
func syncState(sf *stateFile) error {
	if err := faults.hit(faultStateSync); err != nil {
		return err
	}
	return sf.Sync()
}
