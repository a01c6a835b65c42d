package procharness

import (
	"context"
	"runtime"
)

// heavy limits how many process-heavy runs (a fleet of workers, several crash loops) go at once:
// one per two cores, at least one, so a 2-core machine runs them one at a time.
var heavy = make(chan struct{}, max(1, runtime.NumCPU()/2))

// Acquire waits for a slot for a process-heavy run and returns its release function (call it
// once). It fails only when ctx ends first.
func Acquire(ctx context.Context) (release func(), err error) {
	select {
	case heavy <- struct{}{}:
		return func() { <-heavy }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
