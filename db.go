package txtdb

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/txtdb/txtdb/events"
	"github.com/txtdb/txtdb/txn"
)

// DB is one process's handle on a data directory. Many processes may open the same directory at
// the same time; every one is an equal peer. A DB is safe for concurrent use by many goroutines.
type DB struct {
	eng        *txn.DB
	maxRetries int

	feedMu     sync.Mutex
	feed       *events.Feed // guarded by feedMu: started by the first Subscribe
	feedClosed bool         // guarded by feedMu
}

// Open opens the store in dir, creating the directory and the store if needed. opts may be nil.
// It waits at most opts.LockTimeout for the commit lock (to create or repair the store). With
// opts.ReadOnly the store must exist, and the handle writes nothing.
func Open(dir string, opts *Options) (*DB, error) {
	if opts == nil {
		opts = &Options{}
	}
	eng, err := txn.Open(context.Background(), dir, txn.Config{
		Format:           opts.Format,
		PageSize:         opts.PageSize,
		Isolation:        opts.Isolation,
		OneObjectPerPage: opts.OneObjectPerPage,
		NoSync:           opts.NoSync,
		NoOffer:          opts.NoOffer,
		LockTimeout:      opts.LockTimeout,
		FileMode:         opts.FileMode,
		SegmentBytes:     opts.SegmentSize,
		LogRetention:     opts.LogRetention,
		CheckpointEvery:  opts.CheckpointEvery,
		CacheSize:        opts.CacheSize,
		ReadOnly:         opts.ReadOnly,
	})
	if err != nil {
		return nil, err
	}
	n := opts.MaxRetries
	if n <= 0 {
		n = DefaultMaxRetries
	}
	return &DB{eng: eng, maxRetries: n}, nil
}

// Close releases the handle: it ends every subscription (ErrClosed) and stops the feed first.
// Transactions still open fail afterwards. Idempotent.
func (db *DB) Close() error {
	ferr := db.closeFeed()
	return errors.Join(ferr, db.eng.Close())
}

// Dir returns the data directory.
func (db *DB) Dir() string { return db.eng.Dir() }

// ID returns the handle's identity: the id of its entry in the store's process registry, named
// by every commit it writes and so by every event of its commits (Event.Process); "" for a
// read-only handle. Safe for concurrent use.
func (db *DB) ID() string { return db.eng.ID() }

// Format returns the store's format.
func (db *DB) Format() Format { return db.eng.Format() }

// Checkpoint brings the page files up to the last committed transaction now and runs cleanup
// (superseded versions no live transaction can read, log segments past the retention). It never
// blocks commits; it waits for another process's checkpoint at most LockTimeout or until ctx ends.
// Checkpoints also run by themselves (see Options.CheckpointEvery), and the last process to close
// a store leaves it checkpointed.
func (db *DB) Checkpoint(ctx context.Context) error { return db.eng.Checkpoint(ctx) }

// Begin starts a transaction at the last committed TSN (it takes no lock and allocates nothing).
// ctx bounds everything the transaction does, its Commit included. The caller must end it with
// Commit or Rollback.
func (db *DB) Begin(ctx context.Context, writable bool) (*Tx, error) {
	t, err := db.eng.Begin(ctx, writable)
	if err != nil {
		return nil, err
	}
	return &Tx{t: t}, nil
}

// View runs fn in a read-only transaction.
func (db *DB) View(ctx context.Context, fn func(tx *Tx) error) error {
	tx, err := db.Begin(ctx, false)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	return fn(tx)
}

// Update runs fn in a writable transaction and commits it, retrying the whole function with
// backoff when the commit fails with ErrConflict (fn must therefore be safe to run again). An
// error from fn rolls back and is returned as it is. After Options.MaxRetries retries the last
// error is returned; it still matches ErrConflict.
func (db *DB) Update(ctx context.Context, fn func(tx *Tx) error) error {
	backoff := 50 * time.Microsecond
	for attempt := 0; ; attempt++ {
		tx, err := db.Begin(ctx, true)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			_ = tx.Rollback()
			return err
		}
		err = tx.Commit()
		if err == nil || !errors.Is(err, ErrConflict) {
			return err
		}
		if attempt >= db.maxRetries {
			return fmt.Errorf("txtdb: update gave up after %d attempts: %w", attempt+1, err)
		}
		// Jittered exponential backoff, capped: spreads the retries of a conflict storm.
		d := backoff/2 + rand.N(backoff)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("txtdb: update: %w (last: %w)", ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(backoff*2, 20*time.Millisecond)
	}
}
