package txn

import (
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A ring through one mapping of a wake file wakes a sleeper on another mapping of it: the futex
// is keyed by the file, not the address (a private futex would leave the sleeper to time out:
// the hour here, so the test would hang, not pass). The file is extended to its page, and the
// count is what the ringer wrote.
func TestWakeWordAcrossMappings(t *testing.T) {
	if !haveFutex {
		t.Skip("no futex on this host")
	}
	path := filepath.Join(t.TempDir(), "0.wake")
	owner := mapWakeWord(path, 0o644, false)
	require.NotNil(t, owner)
	defer owner.close()
	holder := mapWakeWord(path, 0o644, true)
	require.NotNil(t, holder)
	defer holder.close()
	require.NotSame(t, owner.word, holder.word)
	for round := uint32(0); round < 3; round++ {
		v, ok := owner.load()
		require.True(t, ok)
		require.Equal(t, round, v)
		done := make(chan struct{})
		go func() {
			for {
				if now, _ := owner.load(); now != v {
					break
				}
				futexWait(owner.word, v, time.Hour)
			}
			close(done)
		}()
		holder.ring()
		<-done
		got, _ := owner.load()
		require.Equal(t, v+1, got)
	}
	// A wake alone, the count unchanged: only the futex can end the sleep.
	v, _ := owner.load()
	done := make(chan struct{})
	go func() {
		futexWait(owner.word, v, time.Hour)
		close(done)
	}()
	for woke := false; !woke; {
		futexWake(holder.word)
		select {
		case <-done:
			woke = true
		default:
			runtime.Gosched()
		}
	}
}
