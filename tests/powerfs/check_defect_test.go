package powerfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/txtdb/txtdb"
)

// TestCheckUnpublishedPageFile: a checkpointer that wrote a version file and died before its
// syncfs and catalog leaves, after a power cut, an empty (or torn) file newer than the catalog.
// Readers ignore it and the next checkpoint rewrites it (docs/PROTOCOL.md); Check reported it as
// ErrCorrupt (seen in TestPowerCutCheckpoint under -race) and now calls it a leftover
// (docs/CHECK.md rule 6). Reproduced on a plain directory.
func TestCheckUnpublishedPageFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := txtdb.Open(dir, &txtdb.Options{CheckpointEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var id string
	if err := db.Update(ctx, func(tx *txtdb.Tx) error {
		if err := tx.CreateNamespace("bank"); err != nil {
			return err
		}
		id, err = tx.Insert("bank", account{0, 1})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	var tsn txtdb.TSN
	for i := range 2 {
		tx, err := db.Begin(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ReadPage("bank", id); err != nil {
			t.Fatal(err)
		}
		if err := tx.UpdatePage("bank", id, account{0, i + 2}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		tsn = tx.CommitTSN()
	}
	// What a checkpointer killed after creating the file, followed by a power cut, leaves.
	leftover := filepath.Join(dir, "bank", fmt.Sprintf("%s.json.v%d", id, tsn))
	if err := os.WriteFile(leftover, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if st := db.Stats(); st.CheckpointTSN >= tsn {
		t.Fatalf("checkpoint at %d, want it below %d", st.CheckpointTSN, tsn)
	}
	probs, err := txtdb.CheckDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	rel := filepath.Join("bank", filepath.Base(leftover))
	flagged := false
	for _, p := range probs {
		if errors.Is(p.Err, txtdb.ErrCorrupt) {
			t.Errorf("Check: %s: %v (a file newer than the catalog, which readers ignore)", p.Path, p.Err)
		}
		flagged = flagged || (p.Path == rel && errors.Is(p.Err, txtdb.ErrLeftover))
	}
	if !flagged {
		t.Errorf("Check does not report %s as a leftover: %v", rel, probs)
	}
	// The next checkpoint rewrites it; then Check finds nothing.
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if probs, err := txtdb.CheckDir(ctx, dir); err != nil || len(probs) > 0 {
		t.Errorf("after a checkpoint: %v, %v", probs, err)
	}
	// And the store itself reads the committed version, not the torn file.
	if err := db.View(ctx, func(tx *txtdb.Tx) error {
		objs, err := tx.ReadPage("bank", id)
		if err != nil {
			return err
		}
		var a account
		if err := objs[0].Decode(&a); err != nil {
			return err
		}
		if a.Bal != 3 {
			return fmt.Errorf("balance %d, want 3", a.Bal)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
