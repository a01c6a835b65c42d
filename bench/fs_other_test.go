//go:build !linux

package bench

// fileSystem is "" where statfs types are not known to this package.
func fileSystem(string) string { return "" }
