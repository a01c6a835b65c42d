package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/procharness/history"
)

// feedWatch subscribes to the change feed (-ns: the namespaces, empty for all) and writes an
// event line for every event: its TSN, the namespaces of its changes, the committing handle and
// the change kinds. -from resumes after a TSN (the harness passes a restarted worker the last
// TSN its slot recorded). When told to stop it commits a mark into namespace <first filter
// namespace>.mark (events.mark without a filter), which its own filter matches, and records
// events until the mark's: so the subscription is known to have delivered every commit before
// it.
type feedWatch struct {
	filter []string
	from   uint64
	markNS string
	sub    *txtdb.Subscription
	cancel context.CancelFunc
	// dropped: the planted violation (-plant-violation) dropped its event.
	dropped bool
}

func newFeedWatch(p params) *feedWatch {
	w := &feedWatch{from: p.from, markNS: "events.mark"}
	for _, ns := range strings.Split(p.filter, ",") {
		if ns != "" {
			w.filter = append(w.filter, ns)
		}
	}
	if len(w.filter) > 0 {
		w.markNS = w.filter[0] + ".mark"
	}
	return w
}

func (w *feedWatch) setup(ctx context.Context, e *env) error {
	if _, err := e.ensurePages(ctx, w.markNS, -1, nil); err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(context.Background())
	sub, err := e.db.Subscribe(sctx, txtdb.SubscribeOptions{Namespaces: w.filter, From: txtdb.TSN(w.from)})
	if err != nil {
		cancel()
		return err
	}
	w.sub, w.cancel = sub, cancel
	return nil
}

func (w *feedWatch) ready(ri *history.ReadyInfo) {
	ri.From = uint64(w.sub.Start())
	ri.Filter = w.filter
}

func (w *feedWatch) step(e *env) error {
	select {
	case ev, ok := <-w.sub.Events():
		if !ok {
			return fmt.Errorf("feed ended: %w", w.sub.Err())
		}
		if e.p.plant && !w.dropped {
			w.dropped = true // the planted violation: an event not recorded
			return nil
		}
		_, err := w.record(e, ev)
		return err
	case <-e.stop.Done():
		return nil
	}
}

// record writes ev's line and returns its TSN.
func (w *feedWatch) record(e *env, ev txtdb.Event) (uint64, error) {
	var nss, kinds []string
	for _, c := range ev.Changes {
		if !slices.Contains(nss, c.Namespace) {
			nss = append(nss, c.Namespace)
		}
		kinds = append(kinds, c.Kind.String())
	}
	return uint64(ev.TSN), e.w.Write(history.Line{Type: history.Event, TSN: uint64(ev.TSN), NS: nss,
		Value: history.Value(history.FeedEvent{Process: ev.Process, Kinds: kinds})})
}

func (w *feedWatch) final(e *env) error {
	defer w.cancel()
	var mark uint64
	err := e.op("mark", []string{w.markNS}, nil, func(ctx context.Context) (any, uint64, uint64, error) {
		tsn, snap, err := e.update(ctx, func(tx *txtdb.Tx) error {
			_, err := tx.Insert(w.markNS, e.p.name)
			return err
		})
		mark = tsn
		return nil, tsn, snap, err
	})
	if err != nil || mark == 0 {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for {
		select {
		case ev, ok := <-w.sub.Events():
			if !ok {
				return fmt.Errorf("feed ended before the mark (TSN %d): %w", mark, w.sub.Err())
			}
			tsn, err := w.record(e, ev)
			if err != nil || tsn >= mark {
				return err
			}
		case <-ctx.Done():
			return fmt.Errorf("no event for the mark (TSN %d): %w", mark, ctx.Err())
		}
	}
}
