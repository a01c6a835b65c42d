package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/txtdb/txtdb/procharness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := procharness.RemoveBinary(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
	}
	os.Exit(code)
}

// size returns short under -short, else long.
func size[T any](short, long T) T {
	if testing.Short() {
		return short
	}
	return long
}
