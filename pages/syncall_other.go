//go:build !linux

package pages

// SyncAll reports false: this platform has no syncfs(2); fsync file by file instead.
func (d *Dir) SyncAll() (bool, error) { return false, nil }

// CanSyncAll reports false: fsync file by file.
func (d *Dir) CanSyncAll() bool { return false }
