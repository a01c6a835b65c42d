package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// SubscribeOptions selects what a subscription delivers.
type SubscribeOptions struct {
	// Namespaces filters the changes: a name matches itself and the namespaces below it ("a"
	// matches "a.b"); a rename matches on either name. Empty: every namespace.
	Namespaces []string
	// From is the TSN to resume after: 0 = the commits after now.
	From pages.TSN
	// Lineage, if set, is the lineage From belongs to: another lineage is ErrLineage.
	Lineage string
	// Values: each Change carries the objects it wrote.
	Values bool
}

// Buffer is the capacity of a subscription's channel. A subscriber that falls further behind
// leaves the rest in the log: its reader waits, and reads on when it is drained.
const Buffer = 16

// chunk is the first read size in a segment; a record longer than that doubles it.
const chunk = 1 << 20

// errUserClose ends a subscription closed by its owner (Err is nil then).
var errUserClose = errors.New("subscription closed")

// Subscription is one subscriber's view of the feed: one goroutine reads the log from its own
// position, never past state's, and sends one Event per matching commit, in TSN order, exactly
// once. Its methods are safe for concurrent use.
type Subscription struct {
	fd      *Feed
	f       filter
	values  bool
	start   pages.TSN
	lineage string

	ch     chan Event
	wake   chan struct{} // capacity 1: a pending wake-up covers any number of commits
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}
	err    error // set before done is closed

	// owned by the subscription's goroutine (and Subscribe, before it starts)
	pos wal.Pos   // just past the last record read
	tsn pages.TSN // the TSN at pos (reservation records keep it)
	seg *os.File  // the segment pos is in (held open: a segment trimmed under it stays readable)
}

// Subscribe starts a subscription. ctx bounds its life (its end ends the feed with ctx's error).
// It reads state and opens the segment to start in; it fails with ErrLineage if opts.Lineage is
// set and is not the store's lineage (or From is past the store's last commit: it cannot belong
// to this history), ErrCompacted if the retained log no longer holds the commit after From,
// ErrClosed after Close. Safe for concurrent use.
func (fd *Feed) Subscribe(ctx context.Context, opts SubscribeOptions) (*Subscription, error) {
	for _, ns := range opts.Namespaces {
		if err := pages.ValidateNamespace(ns); err != nil {
			return nil, fmt.Errorf("txtdb: subscribe: %w", err)
		}
	}
	s := &Subscription{fd: fd, f: filter(append([]string(nil), opts.Namespaces...)), values: opts.Values,
		ch: make(chan Event, Buffer), wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancelCause(ctx)
	// Registered before state is read: a commit after that read wakes it.
	fd.mu.Lock()
	if fd.mu.closed {
		fd.mu.Unlock()
		s.cancel(ErrClosed)
		return nil, ErrClosed
	}
	fd.mu.subs[s] = struct{}{}
	fd.wg.Add(1)
	fd.mu.Unlock()
	if err := s.init(opts); err != nil {
		fd.drop(s)
		fd.wg.Done()
		s.cancel(err)
		if s.seg != nil {
			_ = s.seg.Close()
		}
		return nil, fmt.Errorf("txtdb: subscribe: %w", err)
	}
	go func() {
		defer fd.wg.Done()
		s.run()
	}()
	return s, nil
}

// init finds where the subscription starts.
func (s *Subscription) init(opts SubscribeOptions) error {
	st, err := s.fd.readState()
	if err != nil {
		return err
	}
	s.lineage = st.Lineage
	if opts.Lineage != "" && opts.Lineage != st.Lineage {
		return fmt.Errorf("%w: subscriber's %s, store's %s", ErrLineage, opts.Lineage, st.Lineage)
	}
	if opts.From == 0 {
		s.start, s.pos, s.tsn = st.TSN, st.Pos, st.TSN
		s.seg, err = s.fd.openSeg(st.Pos.Seg)
		return err
	}
	if opts.From > st.TSN {
		return fmt.Errorf("%w: from %d is past the store's last commit %d", ErrLineage, opts.From, st.TSN)
	}
	segs, err := s.fd.listSegs()
	if err != nil {
		return err
	}
	// The commit after From is in the last segment named at or below From+1.
	var seg pages.TSN
	for _, n := range segs {
		if n <= opts.From+1 {
			seg = n
		}
	}
	if seg == 0 {
		first := pages.TSN(0)
		if len(segs) > 0 {
			first = segs[0]
		}
		return fmt.Errorf("%w: resume after %d, the log starts at %d", ErrCompacted, opts.From, first)
	}
	if s.seg, err = s.fd.openSeg(seg); err != nil {
		return err
	}
	if s.fd.hooks.read != nil {
		s.fd.hooks.read("log")
	}
	_, hdr, err := wal.ReadHeader(s.seg, seg)
	if err != nil {
		return corrupt(s.seg.Name(), 0, err)
	}
	s.start, s.pos, s.tsn = opts.From, hdr, seg-1
	return nil
}

// Start returns the TSN the subscription starts after: every commit after it that matches is
// delivered.
func (s *Subscription) Start() pages.TSN { return s.start }

// Lineage returns the store's lineage when the subscription started (its TSNs belong to it).
func (s *Subscription) Lineage() string { return s.lineage }

// Events returns the channel of events. It is closed when the subscription ends; Err says why.
func (s *Subscription) Events() <-chan Event { return s.ch }

// Done is closed when the subscription has ended.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err returns why the subscription ended: nil while it runs and after Close; ErrCompacted,
// ErrLineage, ErrClosed (the feed or its DB closed), the context's error, or a read error
// (ErrCorrupt for a damaged log).
func (s *Subscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close ends the subscription and waits for its goroutine. Idempotent.
func (s *Subscription) Close() {
	s.cancel(errUserClose)
	<-s.done
}

// run reads the log on every wake-up until the subscription ends.
func (s *Subscription) run() {
	defer func() {
		if s.seg != nil {
			_ = s.seg.Close()
		}
		s.fd.drop(s)
		close(s.done) // before ch: a reader that sees ch closed finds Err set
		close(s.ch)
	}()
	for {
		if err := s.catchUp(); err != nil {
			if c := context.Cause(s.ctx); c != nil && s.ctx.Err() != nil {
				err = c
			}
			s.end(err)
			return
		}
		select {
		case <-s.ctx.Done():
			s.end(context.Cause(s.ctx))
			return
		case <-s.wake:
		}
	}
}

// end records why the subscription ended.
func (s *Subscription) end(err error) {
	if errors.Is(err, errUserClose) {
		err = nil
	}
	s.err = err
}

// catchUp delivers everything up to state's position.
func (s *Subscription) catchUp() error {
	st, err := s.fd.readState()
	if errors.Is(err, wal.ErrNoState) {
		return nil // both slots unreadable: the next committer rebuilds state (and wakes us)
	}
	if err != nil {
		return err
	}
	if st.Lineage != s.lineage {
		return fmt.Errorf("%w: %s, now %s", ErrLineage, s.lineage, st.Lineage)
	}
	if st.Pos == s.pos {
		return nil
	}
	if st.TSN < s.tsn {
		return corrupt(s.fd.state.Path, 0, fmt.Errorf("state names TSN %d, the feed read %d", st.TSN, s.tsn))
	}
	return s.follow(st.Pos)
}

// follow reads from pos up to target, segment by segment.
func (s *Subscription) follow(target wal.Pos) error {
	for s.pos != target {
		if s.pos.Seg > target.Seg || (s.pos.Seg == target.Seg && s.pos.Off > target.Off) {
			return corrupt(s.fd.logDir, 0, fmt.Errorf("feed position %v is past state %v", s.pos, target))
		}
		to := int64(-1)
		if s.pos.Seg == target.Seg {
			to = target.Off
		}
		if err := s.readSeg(to); err != nil {
			return err
		}
		if to >= 0 {
			if s.pos != target {
				return corrupt(s.seg.Name(), s.pos.Off, fmt.Errorf("records end at %v, state says %v", s.pos, target))
			}
			return nil
		}
		segs, err := s.fd.listSegs()
		if err != nil {
			return err
		}
		var next pages.TSN
		for _, n := range segs {
			if n > s.pos.Seg {
				next = n
				break
			}
		}
		if next == 0 || next > target.Seg {
			return corrupt(s.fd.logDir, 0, fmt.Errorf("log segment after %s missing", wal.SegName(s.pos.Seg)))
		}
		if next != s.tsn+1 {
			return fmt.Errorf("%w: the feed read up to %d, the log goes on at %d", ErrCompacted, s.tsn, next)
		}
		nf, err := s.fd.openSeg(next)
		if err != nil {
			return err
		}
		if s.fd.hooks.read != nil {
			s.fd.hooks.read("log")
		}
		_, hdr, err := wal.ReadHeader(nf, next)
		if err != nil {
			_ = nf.Close()
			return corrupt(nf.Name(), 0, err)
		}
		_ = s.seg.Close()
		s.seg, s.pos = nf, hdr
	}
	return nil
}

// readSeg reads the records of the current segment from pos up to offset to (-1: to the segment's
// end, the first NUL where a record would start), in chunks, and delivers the commits.
func (s *Subscription) readSeg(to int64) error {
	size := chunk
	for {
		limit := to
		if to < 0 {
			fi, err := s.seg.Stat()
			if err != nil {
				return err
			}
			limit = fi.Size()
		}
		if s.pos.Off >= limit {
			return nil
		}
		n := min(int64(size), limit-s.pos.Off)
		data, err := s.fd.readRange(s.seg, s.pos.Off, s.pos.Off+n)
		if err != nil {
			return corrupt(s.seg.Name(), s.pos.Off, err)
		}
		end, last := len(data), s.pos.Off+n == limit
		if z := bytes.IndexByte(data, 0); z >= 0 {
			if to >= 0 {
				return corrupt(s.seg.Name(), s.pos.Off+int64(z), errors.New("zeros before state's offset"))
			}
			end, last = z, true
		} else if !last {
			i := bytes.LastIndexByte(data, '\n')
			if i < 0 {
				size *= 2 // a record longer than the chunk
				continue
			}
			end = i + 1
		}
		recs, bad := wal.ScanRecords(s.fd.format, data[:end], s.pos)
		if bad != nil {
			return corrupt(s.seg.Name(), s.pos.Off, bad)
		}
		for i := range recs {
			if err := s.deliver(&recs[i]); err != nil {
				return err
			}
		}
		if last {
			return nil
		}
	}
}

// deliver checks a record's place in the TSN sequence and sends its event if it is a commit after
// Start that matches the filter. It blocks while the channel is full (only this subscription).
func (s *Subscription) deliver(sc *wal.Scanned) error {
	r := &sc.Rec
	want := s.tsn + 1
	if r.IsReservation() {
		want = s.tsn
	}
	if r.TSN != want {
		return corrupt(s.seg.Name(), sc.Start.Off, fmt.Errorf("tsn %d after %d", r.TSN, s.tsn))
	}
	if !r.IsReservation() && r.TSN > s.start {
		if ev, ok := eventOf(r, s.f, s.values); ok {
			select {
			case s.ch <- ev:
			case <-s.ctx.Done():
				return context.Cause(s.ctx)
			}
		}
	}
	s.pos, s.tsn = sc.End, r.TSN
	return nil
}

// drop unregisters a subscription.
func (fd *Feed) drop(s *Subscription) {
	fd.mu.Lock()
	delete(fd.mu.subs, s)
	fd.mu.Unlock()
}

// corrupt wraps a damaged-log error so that it matches pages.ErrCorrupt.
func corrupt(path string, off int64, err error) error {
	return fmt.Errorf("txtdb: events: %w", &pages.CorruptError{Path: path, Offset: off, Err: err})
}
