//go:build !linux

package wal

import "os"

// Datasync is fsync where fdatasync(2) is not available.
func Datasync(f *os.File) error { return f.Sync() }
