package main

import (
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/txn"
)

// diskSample is what the stress parent sees of the data directory at one moment: every file in
// it, and the store's own account of its log, page files and checkpoint (txtdb.Stats).
type diskSample struct {
	at        time.Duration // since the run started
	files     int           // regular files anywhere under the directory
	bytes     int64         // their sizes (preallocated log zeros included)
	allocated int64         // blocks they occupy on disk
	st        txtdb.Stats
}

// sampleDisk walks dir and reads db's Stats. A file that disappears during the walk (cleanup,
// checkpoint) is skipped: the sample is a moment's view, not a consistent snapshot.
func sampleDisk(db *txtdb.DB, dir string, at time.Duration) diskSample {
	s := diskSample{at: at}
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		s.files++
		s.bytes += fi.Size()
		if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
			s.allocated += int64(sys.Blocks) * 512
		}
		return nil
	})
	s.st = db.Stats()
	return s
}

// heapSample is one worker's heap as it reported it: runtime.MemStats without a GC first, so
// HeapInuse includes garbage not yet collected.
type heapSample struct {
	at           time.Duration // since the run started
	up           time.Duration // age of the worker process that reported it
	inuse, alloc uint64        // HeapInuse, HeapAlloc
}

// nearest returns the index of the sample taken closest to at, given each sample's time; -1 for
// none.
func nearest(n int, timeOf func(int) time.Duration, at time.Duration) int {
	best := -1
	for i := 0; i < n; i++ {
		if best < 0 || (timeOf(i)-at).Abs() < (timeOf(best)-at).Abs() {
			best = i
		}
	}
	return best
}

// writeMetrics prints the disk samples nearest the start, middle and end of the run (and the one
// taken after the workers stopped, while the parent still holds its handle, so no worker was
// the last to close and checkpointed), the largest checkpoint lag sampled, and each worker slot's
// heap at start, middle and end.
func writeMetrics(w io.Writer, disk []diskSample, after diskSample, heap [][]heapSample) {
	if len(disk) == 0 {
		return
	}
	end := disk[len(disk)-1].at
	diskAt := func(i int) time.Duration { return disk[i].at }
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "disk\tat\tfiles\tbytes\tallocated\tpage files\tpage bytes\tlog segs\tlog bytes\tcommitted\tcheckpoint\tlag\t")
	row := func(name string, s diskSample) {
		fmt.Fprintf(tw, "%s\t%.1fs\t%d\t%s\t%s\t%d\t%s\t%d\t%s\t%d\t%d\t%d\t\n", name, s.at.Seconds(),
			s.files, bytesText(s.bytes), bytesText(s.allocated), s.st.PageFiles, bytesText(s.st.PageBytes),
			s.st.LogSegments, bytesText(s.st.LogBytes), s.st.CommittedTSN, s.st.CheckpointTSN, s.st.CheckpointLag)
	}
	row("start", disk[0])
	row("middle", disk[nearest(len(disk), diskAt, end/2)])
	row("end", disk[len(disk)-1])
	row("stopped", after)
	_ = tw.Flush()

	top := disk[0]
	for _, s := range disk {
		if s.st.CheckpointLag > top.st.CheckpointLag {
			top = s
		}
	}
	fmt.Fprintf(w, "lag:        max %d commits (at %.1fs) over %d samples, 1/s; bound %d commits or %v after a commit\n",
		top.st.CheckpointLag, top.at.Seconds(), len(disk), txn.CheckpointCommits, txtdb.DefaultOptions().CheckpointEvery)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "heap\tstart inuse/alloc (age)\tmiddle\tend\tmax inuse\tsamples\t")
	for i, hs := range heap {
		if len(hs) == 0 {
			fmt.Fprintf(tw, "worker %d\t-\t-\t-\t-\t0\t\n", i)
			continue
		}
		cell := func(s heapSample) string {
			return fmt.Sprintf("%s/%s (%.0fs)", bytesText(int64(s.inuse)), bytesText(int64(s.alloc)), s.up.Seconds())
		}
		heapAt := func(j int) time.Duration { return hs[j].at }
		var top uint64
		for _, s := range hs {
			top = max(top, s.inuse)
		}
		fmt.Fprintf(tw, "worker %d\t%s\t%s\t%s\t%s\t%s\t\n", i, cell(hs[0]), cell(hs[nearest(len(hs), heapAt, end/2)]),
			cell(hs[len(hs)-1]), bytesText(int64(top)), strconv.Itoa(len(hs)))
	}
	_ = tw.Flush()
}
