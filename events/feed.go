package events

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// Store layout the feed reads (PART OF THE FORMAT, see docs/FORMAT.md; package txn writes it).
const (
	stateName = "state"
	logDir    = "log"
)

// PollInterval is how often a degraded feed (no watcher, or one that overflowed) re-checks state.
const PollInterval = time.Second

// overflowPoll is how long a feed keeps polling after its watcher reported an overflow.
const overflowPoll = time.Minute

// Status says how a feed is woken. Safe to copy.
type Status struct {
	Watching  bool      // an fsnotify watcher is running
	Polling   bool      // the fallback poll is running (no watcher, or shortly after an overflow)
	Reason    string    // why the feed polls or last polled ("" if it never did)
	Overflows int64     // ErrEventOverflow reports (or other watcher errors) since Open
	Since     time.Time // when Reason was set
	Subs      int       // live subscriptions
}

// Feed is the change feed of one data directory for one process: one fsnotify watcher (on the
// directories .txtdb/ and .txtdb/log/) shared by every subscription. The watcher only wakes
// subscriptions; each reads the log itself. Safe for concurrent use.
type Feed struct {
	dir, meta, logDir string
	format            pages.Format
	state             *wal.StateFile

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the watcher loop and every subscription's goroutine

	mu struct {
		sync.Mutex
		subs   map[*Subscription]struct{}
		status Status
		closed bool
		poll   time.Time // poll until then (zero: not since an overflow)
	}

	hooks   hooks
	watcher *fsnotify.Watcher // nil if it could not start
}

// hooks are test seams (export_test.go); all nil in production.
type hooks struct {
	read      func(what string)            // before each state or log read
	drop      func(ev fsnotify.Event) bool // true: the event is dropped as if never delivered
	inject    chan error                   // errors handled as if the watcher reported them
	noWatcher bool                         // behave as if the watcher could not start
	poll      time.Duration                // poll interval instead of PollInterval
}

// Open starts the feed of the store in dir, whose format is f. The store must exist. It starts the
// watcher (or, if that fails, the fallback poll, with the reason in Status). Close stops it.
func Open(dir string, f pages.Format) (*Feed, error) { return open(dir, f, hooks{}) }

func open(dir string, f pages.Format, h hooks) (*Feed, error) {
	fd := &Feed{dir: dir, meta: filepath.Join(dir, pages.MetaDir), format: f, hooks: h}
	fd.logDir = filepath.Join(fd.meta, logDir)
	if fd.hooks.poll <= 0 {
		fd.hooks.poll = PollInterval
	}
	var err error
	if fd.state, err = wal.OpenStateFile(filepath.Join(fd.meta, stateName), 0, true); err != nil {
		return nil, fmt.Errorf("txtdb: events: open %s: %w", dir, err)
	}
	fd.mu.subs = map[*Subscription]struct{}{}
	fd.ctx, fd.cancel = context.WithCancel(context.Background())
	if err := fd.startWatcher(); err != nil {
		fd.mu.status.Reason = "watcher: " + err.Error()
		fd.mu.status.Since = time.Now()
		fd.mu.status.Polling = true
	} else {
		fd.mu.status.Watching = true
	}
	fd.wg.Add(1)
	go fd.loop()
	return fd, nil
}

// startWatcher watches the directories that hold state and the log segments.
func (fd *Feed) startWatcher() error {
	if fd.hooks.noWatcher {
		return errors.New("disabled by test")
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	for _, d := range []string{fd.meta, fd.logDir} {
		if err := w.Add(d); err != nil {
			_ = w.Close()
			return fmt.Errorf("watch %s: %w", d, err)
		}
	}
	fd.watcher = w
	return nil
}

// loop owns the watcher: it turns its events into wake-ups, and polls while degraded.
func (fd *Feed) loop() {
	defer fd.wg.Done()
	var evs <-chan fsnotify.Event
	var errs <-chan error
	if fd.watcher != nil {
		evs, errs = fd.watcher.Events, fd.watcher.Errors
		defer func() { _ = fd.watcher.Close() }()
	}
	tick := time.NewTicker(fd.hooks.poll)
	defer tick.Stop()
	if fd.watcher != nil {
		tick.Stop() // not degraded: no poll, an idle feed wakes nobody
	}
	for {
		select {
		case <-fd.ctx.Done():
			return
		case ev, ok := <-evs:
			if !ok {
				evs = nil
				fd.degrade(errors.New("watcher stopped"), tick, time.Time{})
				continue
			}
			if fd.hooks.drop != nil && fd.hooks.drop(ev) {
				continue
			}
			if fd.wakes(ev) {
				fd.wakeAll()
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			fd.overflow(err, tick)
		case err := <-fd.hooks.inject:
			fd.overflow(err, tick)
		case <-tick.C:
			fd.mu.Lock()
			until := fd.mu.poll
			fd.mu.Unlock()
			if fd.watcher != nil && !until.IsZero() && time.Now().After(until) {
				fd.mu.Lock()
				fd.mu.poll = time.Time{}
				fd.mu.status.Polling = false
				fd.mu.Unlock()
				tick.Stop()
			}
			fd.wakeAll()
		}
	}
}

// wakes reports whether a watcher event may mean a new commit: a write or replacement of state,
// or a new segment. Writes into segments precede the state write that announces them, so they
// wake nobody.
func (fd *Feed) wakes(ev fsnotify.Event) bool {
	switch filepath.Dir(ev.Name) {
	case fd.meta:
		return filepath.Base(ev.Name) == stateName && ev.Has(fsnotify.Write|fsnotify.Create|fsnotify.Rename)
	case fd.logDir:
		return ev.Has(fsnotify.Create | fsnotify.Rename)
	}
	return false
}

// overflow handles a watcher error (ErrEventOverflow: events were lost): every subscription
// re-checks now, and the feed polls for a while in case the watcher keeps losing events.
func (fd *Feed) overflow(err error, tick *time.Ticker) {
	fd.mu.Lock()
	fd.mu.status.Overflows++
	fd.mu.Unlock()
	fd.degrade(err, tick, time.Now().Add(overflowPoll))
}

// degrade records why the feed polls and starts the poll (until until; zero: for good).
func (fd *Feed) degrade(err error, tick *time.Ticker, until time.Time) {
	fd.mu.Lock()
	fd.mu.status.Reason = err.Error()
	fd.mu.status.Since = time.Now()
	fd.mu.status.Polling = true
	if until.IsZero() {
		fd.mu.status.Watching = false
	}
	fd.mu.poll = until
	fd.mu.Unlock()
	tick.Reset(fd.hooks.poll)
	fd.wakeAll()
}

// wakeAll tells every subscription to re-check state. It never blocks: a subscription that
// already has a wake-up pending needs no second one.
func (fd *Feed) wakeAll() {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	for s := range fd.mu.subs {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Status reports how the feed is woken. Safe for concurrent use.
func (fd *Feed) Status() Status {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	st := fd.mu.status
	st.Subs = len(fd.mu.subs)
	return st
}

// Close ends every subscription (their Err is ErrClosed), stops the watcher and waits for every
// goroutine of the feed. Idempotent.
func (fd *Feed) Close() error {
	fd.mu.Lock()
	if fd.mu.closed {
		fd.mu.Unlock()
		return nil
	}
	fd.mu.closed = true
	for s := range fd.mu.subs {
		s.cancel(ErrClosed)
	}
	fd.mu.Unlock()
	fd.cancel()
	fd.wg.Wait()
	return fd.state.Close()
}

// readState reads state (through the read hook).
func (fd *Feed) readState() (wal.State, error) {
	if fd.hooks.read != nil {
		fd.hooks.read("state")
	}
	return fd.state.Read()
}

// openSeg opens a log segment; a missing one is ErrCompacted.
func (fd *Feed) openSeg(seg pages.TSN) (*os.File, error) {
	if fd.hooks.read != nil {
		fd.hooks.read("log")
	}
	f, err := os.Open(filepath.Join(fd.logDir, wal.SegName(seg)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: segment %s trimmed", ErrCompacted, wal.SegName(seg))
	}
	if err != nil {
		return nil, fmt.Errorf("txtdb: events: open log segment: %w", err)
	}
	return f, nil
}

// listSegs lists the log segments (through the read hook).
func (fd *Feed) listSegs() ([]pages.TSN, error) {
	if fd.hooks.read != nil {
		fd.hooks.read("log")
	}
	return wal.ListSegments(fd.logDir)
}

// readRange reads [from, to) of a segment (through the read hook).
func (fd *Feed) readRange(f *os.File, from, to int64) ([]byte, error) {
	if fd.hooks.read != nil {
		fd.hooks.read("log")
	}
	return wal.ReadRange(f, from, to)
}
