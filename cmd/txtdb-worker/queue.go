package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/procharness/history"
)

const queueNS = "queue"

// plantedNS is where a planted second completion writes (queue, plant).
const plantedNS = queueNS + ".planted"

// job is a queue page: a job waiting (no claimer) or claimed. A completed job's page is deleted.
type job struct {
	Job     string `json:"job"`
	Claimer string `json:"claimer,omitempty"` // the registry id (DB.ID) of the claimer
	// ClaimedAt is the claimer's wall clock (Unix ns) at the claim: only for the lease, never for
	// correctness.
	ClaimedAt int64 `json:"claimed_at,omitempty"`
}

// queue is a job queue in namespace queue, one page per job. A producer inserts jobs, at most
// bound of its own outstanding at a time; a consumer claims a job (writes its registry id into
// the page) and completes it (deletes the page), each a transaction that first reads the page,
// so a job is completed at most once however many consumers race for it. Both learn about jobs
// from the change feed (a subscription on the namespace, with the pages' contents), never by
// polling: a consumer's only timer is the lease of a job another handle claimed.
//
// The reclaim rule: a consumer may claim a job that another registry id claimed more than lease
// ago (by that claimer's wall clock, same host). A live claimer completes its job within
// milliseconds, so a claim older than the lease is almost always one of a worker that died; and
// if the claimer was merely slow, its completion finds another id in the page and does nothing:
// the lease decides only who may try, serializability decides who completes.
//
// When told to stop, a consumer drains the queue: it claims and completes every job it can see,
// waiting out the leases of jobs claimed by dead workers, until a read finds it empty (or
// opTimeout passes); every worker ends with a read of the whole queue.
type queue struct {
	produce, consume bool
	bound            int
	lease            time.Duration

	id     string
	sub    *txtdb.Subscription
	cancel context.CancelFunc
	mine   map[string]bool // pages of this worker's jobs not yet completed
	cand   map[string]job  // every job page in the queue, as far as the feed has told
	next   int64
	plant  bool // plant a second completion of the next job completed
}

func (q *queue) setup(ctx context.Context, e *env) error {
	if _, err := e.ensurePages(ctx, queueNS, -1, nil); err != nil {
		return err
	}
	q.id = e.db.ID()
	q.mine, q.cand = map[string]bool{}, map[string]job{}
	q.plant = e.p.plant
	// Every job at a snapshot, then the feed from that snapshot on: nothing falls between.
	var snap uint64
	var err error
	snap, err = e.view(ctx, func(tx *txtdb.Tx) error {
		m, err := tx.Match(queueNS, "*")
		for page, objs := range m {
			var j job
			if len(objs) == 1 && objs[0].Decode(&j) == nil {
				q.cand[page] = j
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(context.Background())
	q.sub, err = e.db.Subscribe(sctx, txtdb.SubscribeOptions{Namespaces: []string{queueNS}, From: txtdb.TSN(snap), Values: true})
	if err != nil {
		cancel()
		return err
	}
	q.cancel = cancel
	return nil
}

// apply updates what the worker knows of the queue from one event.
func (q *queue) apply(ev txtdb.Event) {
	for _, c := range ev.Changes {
		if c.Namespace != queueNS || c.Page == "" {
			continue
		}
		switch c.Kind {
		case txtdb.ChangeDelete:
			delete(q.cand, c.Page)
			delete(q.mine, c.Page)
		case txtdb.ChangeInsert, txtdb.ChangeUpdate:
			var j job
			if len(c.Objects) == 1 && c.Objects[0].Decode(&j) == nil {
				q.cand[c.Page] = j
			}
		}
	}
}

// absorb applies the events already delivered, without waiting.
func (q *queue) absorb() error {
	for {
		select {
		case ev, ok := <-q.sub.Events():
			if !ok {
				return fmt.Errorf("queue feed ended: %w", q.sub.Err())
			}
			q.apply(ev)
		default:
			return nil
		}
	}
}

// claimable returns the pages this worker may work on now, in order, and when the next lease
// of another claimer runs out (zero: none).
func (q *queue) claimable(now time.Time) (pages []string, next time.Time) {
	for page, j := range q.cand {
		expires := time.Unix(0, j.ClaimedAt).Add(q.lease)
		switch {
		case j.Claimer == "" || j.Claimer == q.id || !now.Before(expires):
			pages = append(pages, page)
		case next.IsZero() || expires.Before(next):
			next = expires
		}
	}
	slices.Sort(pages)
	return pages, next
}

func (q *queue) step(e *env) error {
	if err := q.absorb(); err != nil {
		return err
	}
	if q.consume {
		if pages, _ := q.claimable(time.Now()); len(pages) > 0 {
			return q.work(e, pages[e.rng.IntN(len(pages))])
		}
	}
	if q.produce && len(q.mine) < q.bound {
		return q.produceOne(e)
	}
	return q.wait(e.stop.Done())
}

// wait waits for an event, the next lease to run out (consumers), or done.
func (q *queue) wait(done <-chan struct{}) error {
	var timer <-chan time.Time
	if q.consume {
		if _, next := q.claimable(time.Now()); !next.IsZero() {
			t := time.NewTimer(time.Until(next))
			defer t.Stop()
			timer = t.C
		}
	}
	select {
	case ev, ok := <-q.sub.Events():
		if !ok {
			return fmt.Errorf("queue feed ended: %w", q.sub.Err())
		}
		q.apply(ev)
	case <-timer:
	case <-done:
	}
	return nil
}

func (q *queue) produceOne(e *env) error {
	q.next++
	in := history.Job{Job: fmt.Sprintf("%d-%d", e.p.uid, q.next)}
	return e.op("produce", []string{queueNS}, in, func(ctx context.Context) (any, uint64, uint64, error) {
		out := in
		tsn, snap, err := e.update(ctx, func(tx *txtdb.Tx) (err error) {
			out.Page, err = tx.Insert(queueNS, job{Job: in.Job})
			return err
		})
		if err == nil {
			q.mine[out.Page] = true
		}
		return out, tsn, snap, err
	})
}

// work claims the job on page (unless this worker holds it already) and completes it.
func (q *queue) work(e *env, page string) error {
	j := q.cand[page]
	if j.Claimer != q.id {
		in := history.Job{Job: j.Job, Page: page}
		claimed := false
		err := e.op("claim", []string{queueNS}, in, func(ctx context.Context) (any, uint64, uint64, error) {
			out := in
			tsn, snap, err := e.update(ctx, func(tx *txtdb.Tx) error {
				out = in
				var cur job
				if err := readOne(tx, queueNS, page, &cur); err != nil {
					if errors.Is(err, txtdb.ErrNotFound) {
						return errNoWrite
					}
					return err
				}
				expired := !time.Now().Before(time.Unix(0, cur.ClaimedAt).Add(q.lease))
				if cur.Job != j.Job || (cur.Claimer != "" && (cur.Claimer == q.id || !expired)) {
					return errNoWrite // completed, or claimed by a live claimer, meanwhile
				}
				out.Claimer, out.Reclaim = q.id, cur.Claimer
				return tx.UpdatePage(queueNS, page, job{Job: cur.Job, Claimer: q.id, ClaimedAt: time.Now().UnixNano()})
			})
			claimed = err == nil && tsn != 0
			return out, tsn, snap, err
		})
		if err != nil || !claimed {
			delete(q.cand, page) // the feed brings it back if it is still there
			return err
		}
		j.Claimer = q.id
		q.cand[page] = j
	}
	in := history.Job{Job: j.Job, Page: page, Claimer: q.id}
	done := false
	err := e.op("complete", []string{queueNS}, in, func(ctx context.Context) (any, uint64, uint64, error) {
		tsn, snap, err := e.update(ctx, func(tx *txtdb.Tx) error {
			var cur job
			if err := readOne(tx, queueNS, page, &cur); err != nil {
				if errors.Is(err, txtdb.ErrNotFound) {
					return errNoWrite
				}
				return err
			}
			if cur.Job != j.Job || cur.Claimer != q.id {
				return errNoWrite // reclaimed by another consumer: it completes the job
			}
			return tx.DeletePage(queueNS, page)
		})
		done = err == nil && tsn != 0
		return in, tsn, snap, err
	})
	delete(q.cand, page)
	if err != nil || !done || !q.plant {
		return err
	}
	q.plant = false
	// The planted violation: the job is completed a second time (a commit elsewhere, reported as
	// a completion of the same job).
	return e.op("complete", []string{plantedNS}, in, func(ctx context.Context) (any, uint64, uint64, error) {
		tsn, snap, err := e.update(ctx, func(tx *txtdb.Tx) error {
			if _, err := createMissing(tx, plantedNS); err != nil {
				return err
			}
			_, err := tx.Insert(plantedNS, j.Job)
			return err
		})
		return in, tsn, snap, err
	})
}

// final drains the queue (consumers) and reads it.
func (q *queue) final(e *env) error {
	defer q.cancel()
	expired := make(chan struct{})
	t := time.AfterFunc(opTimeout, func() { close(expired) })
	defer t.Stop()
	for q.consume {
		if err := q.absorb(); err != nil {
			return err
		}
		if pages, _ := q.claimable(time.Now()); len(pages) > 0 {
			if err := q.work(e, pages[e.rng.IntN(len(pages))]); err != nil {
				return err
			}
			continue
		}
		if len(q.cand) == 0 {
			// The feed says the queue is empty: a read must agree, else work on what it finds.
			jobs, err := q.read(e)
			if err != nil || len(jobs) == 0 {
				return err
			}
			for _, j := range jobs {
				q.cand[j.Page] = job{Job: j.Job, Claimer: j.Claimer, ClaimedAt: j.ClaimedAt}
			}
			continue
		}
		if err := q.wait(expired); err != nil {
			return err
		}
		select {
		case <-expired:
			_, err := q.read(e)
			return err
		default:
		}
	}
	_, err := q.read(e)
	return err
}

// read reads every job in the queue in one snapshot (an operation) and returns them.
func (q *queue) read(e *env) (history.Jobs, error) {
	jobs := history.Jobs{}
	err := e.op("read", nil, nil, func(ctx context.Context) (any, uint64, uint64, error) {
		jobs = jobs[:0]
		snap, err := e.view(ctx, func(tx *txtdb.Tx) error {
			m, err := tx.Match(queueNS, "*")
			if err != nil {
				return err
			}
			for page, objs := range m {
				var j job
				if len(objs) != 1 {
					return fmt.Errorf("job page %s has %d objects", page, len(objs))
				}
				if err := objs[0].Decode(&j); err != nil {
					return err
				}
				jobs = append(jobs, history.Job{Job: j.Job, Page: page, Claimer: j.Claimer, ClaimedAt: j.ClaimedAt})
			}
			return nil
		})
		slices.SortFunc(jobs, func(a, b history.Job) int { return strings.Compare(a.Page, b.Page) })
		return jobs, 0, snap, err
	})
	return jobs, err
}
