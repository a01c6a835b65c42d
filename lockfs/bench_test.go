package lockfs

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkLock: an uncontended take and release, on a fresh descriptor each time and on a
// retained (kept) one.
func BenchmarkLock(b *testing.B) {
	for _, retained := range []bool{false, true} {
		b.Run(map[bool]string{false: "fresh", true: "retained"}[retained], func(b *testing.B) {
			l := newTestLock(b)
			if retained {
				defer l.Retain()()
			}
			benchLock(b, l)
		})
	}
}

func benchLock(b *testing.B, l *Lock) {
	ctx := context.Background()
	for b.Loop() {
		unlock, err := l.Lock(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := unlock(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRLock(b *testing.B) {
	l := newTestLock(b)
	ctx := context.Background()
	for b.Loop() {
		unlock, err := l.RLock(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := unlock(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRLockHeld takes and releases a shared lock that another goroutine holds: it joins
// the held flock without a system call.
func BenchmarkRLockHeld(b *testing.B) {
	l := newTestLock(b)
	ctx := context.Background()
	hold, err := l.RLock(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer hold()
	for b.Loop() {
		unlock, err := l.RLock(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := unlock(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTryLock(b *testing.B) {
	l := newTestLock(b)
	for b.Loop() {
		unlock, ok, err := l.TryLock()
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
		if err := unlock(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandoff passes the exclusive lock back and forth between this process and a
// helper process; pipes say when to take it. Each iteration is two hand-offs.
func BenchmarkHandoff(b *testing.B) {
	l := newTestLock(b)
	ctx := context.Background()
	p := startHelper(b, "pingpong", l, exclusive)
	p.expect("ready")
	unlock, err := l.Lock(ctx)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	start := time.Now()
	for b.Loop() {
		p.send("go") // the helper goes for the lock
		if err := unlock(); err != nil {
			b.Fatal(err)
		}
		p.expect("got")
		p.send("rel") // the helper lets go while this process waits for the lock
		if unlock, err = l.Lock(ctx); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(2*n)/time.Since(start).Seconds(), "handoffs/s")
	if err := unlock(); err != nil {
		b.Fatal(err)
	}
	p.wait()
}

func BenchmarkWriteFile(b *testing.B) {
	path := filepath.Join(b.TempDir(), "f")
	data := make([]byte, 4096)
	for b.Loop() {
		if err := WriteFile(path, data, 0); err != nil {
			b.Fatal(err)
		}
	}
}
