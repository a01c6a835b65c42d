package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/procharness/history"
)

// opTimeout bounds one operation (its lock waits and retries included). Operations do not use
// the stop context: a commit that has joined a group must learn its outcome.
const opTimeout = 2 * time.Minute

// maxRetries bounds the attempts of one operation on ErrConflict; past it the operation fails.
const maxRetries = 200

// errSetupMismatch: the store's namespace does not have the shape this worker's flags ask for.
var errSetupMismatch = errors.New("store does not match the workload's flags")

// workload is one workload's code. step runs one operation and writes its lines; it returns an
// error only when the worker cannot go on. final runs the final reads when the worker stops.
type workload interface {
	setup(ctx context.Context, e *env) error
	step(e *env) error
	final(e *env) error
}

// env is what a workload works with. Used by one goroutine.
type env struct {
	db   *txtdb.DB
	w    *history.Writer
	rng  *rand.Rand
	p    params
	stop context.Context // ends when the worker is told to stop
	sum  history.SummaryInfo
	// conflicts counts the conflicts of the operation in progress (op resets it).
	conflicts int
	// setups counts the "setup" operations, which -ops does not count.
	setups int64
}

// errNoWrite from an update function: the transaction decided to write nothing; it is rolled
// back and the operation completes as a read.
var errNoWrite = errors.New("nothing to write")

// update runs fn in a writable transaction and commits it, retrying on ErrConflict. It returns
// the commit TSN (0 if fn wrote nothing) and the snapshot of the last attempt.
func (e *env) update(ctx context.Context, fn func(tx *txtdb.Tx) error) (tsn, snap uint64, err error) {
	backoff := 50 * time.Microsecond
	for attempt := 0; ; attempt++ {
		tx, err := e.db.Begin(ctx, true)
		if err != nil {
			return 0, 0, err
		}
		snap = uint64(tx.Snapshot())
		if err := fn(tx); err != nil {
			_ = tx.Rollback()
			if errors.Is(err, errNoWrite) {
				return 0, snap, nil
			}
			return 0, snap, err
		}
		err = tx.Commit()
		if err == nil {
			tsn = uint64(tx.CommitTSN())
			if tsn != 0 {
				e.sum.Commits++
			}
			return tsn, snap, nil
		}
		if !errors.Is(err, txtdb.ErrConflict) {
			return 0, snap, err
		}
		e.sum.Conflicts++
		e.conflicts++
		if attempt >= maxRetries {
			return 0, snap, fmt.Errorf("gave up after %d attempts: %w", attempt+1, err)
		}
		t := time.NewTimer(backoff/2 + rand.N(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, snap, fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(backoff*2, 20*time.Millisecond)
	}
}

// view runs fn in a read transaction and returns its snapshot.
func (e *env) view(ctx context.Context, fn func(tx *txtdb.Tx) error) (snap uint64, err error) {
	tx, err := e.db.Begin(ctx, false)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	return uint64(tx.Snapshot()), fn(tx)
}

// op runs one operation that writes namespaces ns (nil: a read): it writes the invoke line with
// input in, runs fn (which returns the
// completion's value, TSN and snapshot), and writes the completion: ok when fn succeeded, unknown
// when the commit's outcome is unknown, fail otherwise. A handle broken by an unknown commit
// ends the worker (the error is returned).
func (e *env) op(f string, ns []string, in any, fn func(ctx context.Context) (out any, tsn, snap uint64, err error)) error {
	id, err := e.w.InvokeNS(f, ns, in)
	if err != nil {
		return err
	}
	e.sum.Ops++
	e.conflicts = 0
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	out, tsn, snap, ferr := fn(ctx)
	cancel()
	typ := history.OK
	switch {
	case ferr == nil:
		e.sum.OK++
	case errors.Is(ferr, txtdb.ErrCommitUnknown), errors.Is(ferr, txtdb.ErrBroken):
		typ = history.Unknown
		e.sum.Unknown++
		e.sum.Errors++
	default:
		typ = history.Fail
		e.sum.Fail++
		if !errors.Is(ferr, txtdb.ErrConflict) {
			e.sum.Errors++
		}
	}
	if out == nil && typ != history.OK {
		out = in
	}
	l := history.Line{Type: typ, Op: id, F: f, TSN: tsn, Snap: snap, NS: ns, Conflicts: e.conflicts}
	if out != nil {
		l.Value = history.Value(out)
	}
	if ferr != nil {
		l.Err = ferr.Error()
	}
	if err := e.w.Write(l); err != nil {
		return err
	}
	if typ == history.Unknown {
		return fmt.Errorf("%s: %w", f, ferr)
	}
	return nil
}

// ensurePages makes namespace ns hold n pages (n < 0: any number; a new namespace is empty),
// creating them with initial(i) if ns does not exist, and returns their IDs in order. Several workers may run it at once: the first commit
// creates the namespace, the others conflict (or find it) and see its pages on their retry. It
// is an operation ("setup"), so that its commit is in the history like every other.
func (e *env) ensurePages(ctx context.Context, ns string, n int, initial func(i int) any) ([]string, error) {
	var ids []string
	var err error
	e.setups++
	oerr := e.op("setup", []string{ns}, nil, func(ctx context.Context) (any, uint64, uint64, error) {
		tsn, snap, uerr := e.ensure(ctx, ns, n, initial, &ids)
		err = uerr
		return nil, tsn, snap, uerr
	})
	slices.Sort(ids) // page IDs are zero-padded: text order is insertion order
	return ids, errors.Join(oerr, err)
}

func (e *env) ensure(ctx context.Context, ns string, n int, initial func(i int) any, out *[]string) (tsn, snap uint64, err error) {
	var ids []string
	defer func() { *out = ids }()
	return e.update(ctx, func(tx *txtdb.Tx) error {
		ids = ids[:0]
		created, err := createMissing(tx, ns)
		if err != nil {
			return err
		}
		if created {
			for i := range n {
				id, err := tx.Insert(ns, initial(i))
				if err != nil {
					return err
				}
				ids = append(ids, id)
			}
			return nil
		}
		if ids, err = pageIDs(tx, ns); err != nil {
			return err
		}
		if n >= 0 && len(ids) != n {
			return fmt.Errorf("namespace %s has %d pages, want %d: %w", ns, len(ids), n, errSetupMismatch)
		}
		return errNoWrite
	})
}

// createMissing creates namespace ns unless it exists, and reports whether it did.
func createMissing(tx *txtdb.Tx, ns string) (bool, error) {
	names, err := tx.Namespaces()
	if err != nil || slices.Contains(names, ns) {
		return false, err
	}
	return true, tx.CreateNamespace(ns)
}

// pageIDs returns the IDs of the pages of ns, in order.
func pageIDs(tx *txtdb.Tx, ns string) ([]string, error) {
	m, err := tx.Match(ns, "*")
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids) // page IDs are zero-padded: text order is insertion order
	return ids, nil
}

// readInt reads the single int64 object of a page.
func readInt(tx *txtdb.Tx, ns, id string) (int64, error) {
	var v int64
	return v, readOne(tx, ns, id, &v)
}

// readOne decodes the single object of a page into v.
func readOne(tx *txtdb.Tx, ns, id string, v any) error {
	objs, err := tx.ReadPage(ns, id)
	if err != nil {
		return err
	}
	if len(objs) != 1 {
		return fmt.Errorf("page %s/%s has %d objects, want 1", ns, id, len(objs))
	}
	return objs[0].Decode(v)
}

// readAll reads the int64 of every page in ids.
func readAll(tx *txtdb.Tx, ns string, ids []string) ([]int64, error) {
	out := make([]int64, len(ids))
	for i, id := range ids {
		v, err := readInt(tx, ns, id)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// genOf names generation g of the namespaces below parent: parent.g<g>. The append and register
// workloads move to a new generation as theirs fills, so that a long run keeps each list and
// register short.
func genOf(parent string, g int) string { return fmt.Sprintf("%s.g%d", parent, g) }

// gens returns the generations below parent in the store (parent.g0, parent.g1, ...), in order.
func (e *env) gens(ctx context.Context, parent string) (out []int, err error) {
	_, err = e.view(ctx, func(tx *txtdb.Tx) error {
		out = out[:0]
		names, err := tx.Namespaces()
		for _, n := range names {
			rest, ok := strings.CutPrefix(n, parent+".g")
			if g, aerr := strconv.Atoi(rest); ok && aerr == nil && g >= 0 {
				out = append(out, g)
			}
		}
		return err
	})
	slices.Sort(out)
	return out, err
}

// newestGen returns the newest generation below parent in the store (0 if there is none).
func (e *env) newestGen(ctx context.Context, parent string) (int, error) {
	gens, err := e.gens(ctx, parent)
	if err != nil || len(gens) == 0 {
		return 0, err
	}
	return gens[len(gens)-1], nil
}
