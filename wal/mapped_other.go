//go:build !unix

package wal

import "os"

// mapFile maps nothing where there is no mmap(2): reads use pread.
func mapFile(*os.File, int) []byte { return nil }

func unmapFile([]byte) {}

func copyMapped(dst, m []byte) bool { return false }
