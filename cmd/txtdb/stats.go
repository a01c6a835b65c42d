package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// stats runs `txtdb stats [-json] DIR`: it opens the store read-only and prints its state as a
// table, or with -json every field of txtdb.Stats (the per-handle counters are those of this
// read-only handle, so zero).
func stats(args []string, stdout io.Writer) error {
	asJSON, dir := false, ""
	for _, a := range args {
		switch {
		case a == "-json" || a == "--json":
			asJSON = true
		case dir == "" && (a == "" || a[0] != '-'):
			dir = a
		default:
			return errors.New("usage: txtdb stats [-json] DIR")
		}
	}
	if dir == "" {
		return errors.New("usage: txtdb stats [-json] DIR")
	}
	db, err := readOnly(dir)
	if err != nil {
		return err
	}
	s := db.Stats()
	if err := db.Close(); err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "committed tsn\t%d\n", s.CommittedTSN)
	fmt.Fprintf(tw, "checkpoint tsn\t%d\n", s.CheckpointTSN)
	fmt.Fprintf(tw, "checkpoint lag\t%d commits\n", s.CheckpointLag)
	fmt.Fprintf(tw, "cleanup horizon\t%d\n", s.Horizon)
	fmt.Fprintf(tw, "log\t%d segments, %s\n", s.LogSegments, bytesText(s.LogBytes))
	fmt.Fprintf(tw, "page files\t%d files, %s\n", s.PageFiles, bytesText(s.PageBytes))
	fmt.Fprintf(tw, "live processes\t%d\n", s.LiveProcesses)
	switch {
	case s.OldestFloorPID == 0:
		fmt.Fprintf(tw, "oldest snapshot\tnone held\n")
	case s.OldestFloorPID < 0:
		fmt.Fprintf(tw, "oldest snapshot\tunknown (a registry entry cannot be read: nothing is cleaned up)\n")
	default:
		fmt.Fprintf(tw, "oldest snapshot\ttsn %d, held %s by pid %d\n", s.OldestFloor, s.OldestFloorAge.Round(time.Millisecond), s.OldestFloorPID)
	}
	return tw.Flush()
}

// bytesText writes n bytes for people: 512 B, 1.5 KiB, 64.0 MiB.
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
