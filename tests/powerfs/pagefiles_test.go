package powerfs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/txtdb/txtdb"
)

// pageFileProblems returns a problem for every page version file under the store dir that names
// a TSN the catalog does not cover (above the checkpoint's tsn) and the log no longer has (no
// commit record of that TSN in a segment, or past the committed TSN): a file no reader can
// trust and no recovery can explain. Run it when no process uses the store.
func pageFileProblems(dir string, committed uint64) ([]string, error) {
	var ckpt struct {
		TSN uint64 `json:"tsn"`
	}
	b, err := os.ReadFile(filepath.Join(dir, ".txtdb", "checkpoint"))
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &ckpt); err != nil {
			return nil, fmt.Errorf("catalog: %w", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	inLog, err := logTSNs(filepath.Join(dir, ".txtdb", "log"))
	if err != nil {
		return nil, err
	}
	var out []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		m := pageVersionFile.FindStringSubmatch(d.Name())
		if d.IsDir() || m == nil {
			return nil
		}
		tsn, err := strconv.ParseUint(m[3], 10, 64)
		if err != nil {
			return err
		}
		if tsn > ckpt.TSN && (tsn > committed || !inLog[tsn]) {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, fmt.Sprintf("%s names TSN %d: the catalog covers up to %d, the store is at %d and the log has no commit %d",
				rel, tsn, ckpt.TSN, committed, tsn))
		}
		return nil
	})
	return out, err
}

// logTSNs returns the TSNs of the commit records in the log segments of logDir (whole lines
// only: a torn last line is not a record).
func logTSNs(logDir string) (map[uint64]bool, error) {
	segs, err := filepath.Glob(filepath.Join(logDir, "*.log"))
	if err != nil {
		return nil, err
	}
	out := map[uint64]bool{}
	for _, seg := range segs {
		b, err := os.ReadFile(seg)
		if err != nil {
			return nil, err
		}
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
		lines := bytes.Split(b, []byte("\n"))
		for i, l := range lines {
			if i == 0 || i == len(lines)-1 { // the header; the part after the last newline
				continue
			}
			var r struct {
				TSN uint64 `json:"tsn"`
				Ops []struct {
					Op string `json:"op"`
				} `json:"ops"`
			}
			if json.Unmarshal(l, &r) != nil {
				continue
			}
			for _, op := range r.Ops {
				if op.Op != "reserve" {
					out[r.TSN] = true
				}
			}
		}
	}
	return out, nil
}

// TestPageFileChecker: the page-file checker finds nothing in a healthy store, accepts a file the
// catalog covers and one whose commit the log still has, and reports a planted file that names
// a TSN neither has.
func TestPageFileChecker(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := txtdb.Open(dir, &txtdb.Options{OneObjectPerPage: true, CheckpointEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var id string
	commit := func(v int) uint64 {
		t.Helper()
		tx, err := db.Begin(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		if id == "" {
			if err := tx.CreateNamespace("ns"); err != nil {
				t.Fatal(err)
			}
			id, err = tx.Insert("ns", v)
		} else if _, err = tx.ReadPage("ns", id); err == nil {
			err = tx.UpdatePage("ns", id, v)
		}
		if err == nil {
			err = tx.Commit()
		}
		if err != nil {
			t.Fatal(err)
		}
		return uint64(tx.CommitTSN())
	}
	for v := range 3 {
		commit(v)
	}
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	ckpt := uint64(db.Stats().CheckpointTSN)
	afterCkpt := commit(10) // in the log, not in a page file
	committed := commit(11)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "ns", "page*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no page files in ns/: %v %v", files, err)
	}
	probs, err := pageFileProblems(dir, committed)
	if err != nil || len(probs) > 0 {
		t.Fatalf("healthy store: %v %v", probs, err)
	}
	body, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	plant := func(tsn uint64) string {
		t.Helper()
		p := filepath.Join(dir, "ns", fmt.Sprintf("%s.json.v%d", id, tsn))
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plant(ckpt)      // covered by the catalog (also a leftover of an old version)
	plant(afterCkpt) // a checkpoint that died after writing it: the log still has the commit
	plant(committed) // likewise
	if probs, err := pageFileProblems(dir, committed); err != nil || len(probs) > 0 {
		t.Fatalf("files the catalog or the log explain were reported: %v %v", probs, err)
	}
	plant(committed + 5) // a TSN the store never reached
	probs, err = pageFileProblems(dir, committed)
	if err != nil || len(probs) != 1 {
		t.Fatalf("planted page file of TSN %d: got %v %v, want one problem", committed+5, probs, err)
	}
	t.Logf("planted violation found: %s", probs[0])
}
