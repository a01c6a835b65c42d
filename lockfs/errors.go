package lockfs

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors of lock acquisition and release.
var (
	// ErrLockTimeout is matched by the error of a lock wait whose context's deadline passed
	// (see TimeoutError).
	ErrLockTimeout = errors.New("lockfs: lock timeout")
	// ErrClosed is matched by the error of an unlock func called a second time: the lock was
	// already released, and the second call changes nothing.
	ErrClosed = errors.New("lockfs: closed")
)

// TimeoutError is the error of a lock wait whose context's deadline passed before the lock was
// taken. errors.Is matches it against both ErrLockTimeout and context.DeadlineExceeded.
// A cancelled context (not a deadline) gives ctx.Err() wrapped instead.
type TimeoutError struct {
	Path   string        // the lock file, as given to New
	Waited time.Duration // from the call to the moment the wait gave up
}

// Error reports the lock file and how long the wait took.
func (e *TimeoutError) Error() string {
	return fmt.Sprintf("lockfs: lock timeout: %s: gave up after %v", e.Path, e.Waited)
}

// Unwrap returns ErrLockTimeout and context.DeadlineExceeded, so errors.Is matches both.
func (e *TimeoutError) Unwrap() []error {
	return []error{ErrLockTimeout, context.DeadlineExceeded}
}
