//go:build !linux

package txn

import "time"

// haveFutex is false where there is no futex(2): an offer's owner maps no wake word, and learns
// its outcome under the commit lock.
const haveFutex = false

func futexWait(addr *uint32, val uint32, d time.Duration) { time.Sleep(d) }

func futexWake(addr *uint32) {}
