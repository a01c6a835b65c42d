package main

import (
	"context"

	"github.com/txtdb/txtdb/procharness/history"
)

// hold opens one read transaction, reports its snapshot, and keeps it open until the worker is
// told to stop: it pins the versions that snapshot reads, for cleanup and retention tests.
type hold struct{ done bool }

func (h *hold) setup(context.Context, *env) error { return nil }

func (h *hold) step(e *env) error {
	if h.done {
		<-e.stop.Done()
		return nil
	}
	h.done = true
	tx, err := e.db.Begin(context.Background(), false)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	id, err := e.w.Invoke("hold", nil)
	if err != nil {
		return err
	}
	e.sum.Ops++
	if _, err := tx.Namespaces(); err != nil {
		return err
	}
	e.sum.OK++
	if err := e.w.Complete(history.OK, id, "hold", 0, uint64(tx.Snapshot()), nil, nil); err != nil {
		return err
	}
	<-e.stop.Done()
	return nil
}

func (h *hold) final(*env) error { return nil }
