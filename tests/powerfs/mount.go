package powerfs

import (
	"os"
	"path/filepath"
	"testing"
)

// MustMount mounts the layer over backing (created if missing) at a fresh mount point for the
// test, skipping the test with the reason when the machine cannot (see Available). A cleanup
// unmounts it (also after a failure), so no mount outlives the test.
func MustMount(tb testing.TB, backing string, cfg Config) *FS {
	tb.Helper()
	if why := Available(); why != "" {
		tb.Skip(why)
	}
	if err := os.MkdirAll(backing, 0o755); err != nil {
		tb.Fatal(err)
	}
	mnt, err := os.MkdirTemp(filepath.Dir(backing), "mnt-")
	if err != nil {
		tb.Fatal(err)
	}
	f, err := Mount(backing, mnt, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			tb.Error(err)
		}
		os.Remove(mnt)
	})
	return f
}
