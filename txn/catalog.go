package txn

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"

	"github.com/txtdb/txtdb/lockfs"
	"github.com/txtdb/txtdb/pages"
)

// The checkpoint file, .txtdb/checkpoint (PART OF THE FORMAT), is the catalog of the page files: it
// says up to which TSN the page files are current, where in the log that TSN ends, which folder
// holds each namespace incarnation's files, and which files are superseded and wait for cleanup.
// It is written only by the holder of .txtdb/checkpoint.lock, always whole (temp file, fsync,
// rename, fsync the directory), and only after every file it names is durable.
//
// Every folder holds the version files of at most one incarnation, so version file names need no
// incarnation: an incarnation that is dropped or renamed has its files moved (or deleted) before
// another incarnation's files go into its folder.
const (
	checkpointName     = "checkpoint"
	checkpointLockName = "checkpoint.lock"
	atticDirName       = "attic" // .txtdb/attic/<inc>/: files of incarnations on their way out or between folders
)

// catalog is the decoded checkpoint file.
type catalog struct {
	Version int           `json:"txtdb_checkpoint"`
	TSN     pages.TSN     `json:"tsn"`     // page files are current up to here
	Log     catalogPos    `json:"log"`     // end of the record that committed TSN (and the reservations after it)
	Incs    []catalogInc  `json:"incs"`    // incarnations alive at TSN, and dead ones whose files remain
	Pending []pendingFile `json:"pending"` // superseded files, deleted once the cleanup horizon reaches Until
	// Marks are the TSNs of the latest checkpoints (at most maxMarks, ascending, TSN last): at each
	// of them every page's newest version had a file. The log is trimmed only up to a mark at or
	// below the horizon, so a version superseded between two checkpoints (which has no file) stays
	// in the log while a snapshot can read it.
	Marks []pages.TSN `json:"marks"`
}

const maxMarks = 32

// catalogPos is a logPos in the checkpoint file.
type catalogPos struct {
	Seg   pages.TSN `json:"seg"`
	Off   int64     `json:"off"`
	Chain string    `json:"chain"`
}

// catalogInc is one namespace incarnation.
type catalogInc struct {
	Inc      string    `json:"inc"`
	NS       string    `json:"ns,omitempty"`      // its name at TSN; "" once dropped
	Dropped  pages.TSN `json:"dropped,omitempty"` // TSN of the drop (dead incarnations)
	Dir      string    `json:"dir,omitempty"`     // folder holding its version files, relative to the data directory; "" = none yet
	To       string    `json:"to,omitempty"`      // a move of its files to this folder is under way
	Reserved uint64    `json:"reserved"`          // page numbers below this are used or reserved
}

// pendingFile is a version file that a newer version (or a delete) superseded at Until.
type pendingFile struct {
	Inc   string    `json:"inc"`
	Page  string    `json:"page"`
	TSN   pages.TSN `json:"tsn"`
	Until pages.TSN `json:"until"`
}

func (p catalogPos) pos() (logPos, error) {
	c, err := strconv.ParseUint(p.Chain, 16, 32)
	if err != nil || len(p.Chain) != 8 {
		return logPos{}, fmt.Errorf("bad chain %q", p.Chain)
	}
	return logPos{Seg: p.Seg, Off: p.Off, Chain: uint32(c)}, nil
}

func toCatalogPos(p logPos) catalogPos {
	return catalogPos{Seg: p.Seg, Off: p.Off, Chain: fmt.Sprintf("%08x", p.Chain)}
}

// inc returns the entry of incarnation id, or nil.
func (c *catalog) inc(id string) *catalogInc {
	for i := range c.Incs {
		if c.Incs[i].Inc == id {
			return &c.Incs[i]
		}
	}
	return nil
}

// readCatalog reads the checkpoint file; a store without one has the zero catalog (nothing is
// checkpointed: the whole log is the truth).
func readCatalog(path string) (catalog, bool, error) {
	var c catalog
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("read checkpoint: %w", err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, false, corrupt(path, 0, err)
	}
	if c.Version != layoutVersion {
		return c, false, fmt.Errorf("%s: checkpoint layout %d: %w", path, c.Version, ErrVersion)
	}
	if _, err := c.Log.pos(); err != nil || c.TSN == 0 || c.Log.Seg == 0 {
		return c, false, corrupt(path, 0, fmt.Errorf("bad checkpoint position (tsn %d, log %+v)", c.TSN, c.Log))
	}
	return c, true, nil
}

// writeCatalog publishes c atomically. REQUIRES: checkpoint lock held; every file c names durable.
func writeCatalog(path string, c *catalog, perm os.FileMode) error {
	c.Version = layoutVersion
	slices.SortFunc(c.Incs, func(a, b catalogInc) int {
		if a.Inc < b.Inc {
			return -1
		}
		if a.Inc > b.Inc {
			return 1
		}
		return 0
	})
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := faults.hit(faultCheckpointWrite); err != nil {
		return err
	}
	if err := lockfs.WriteFile(path, append(data, '\n'), perm); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}
