package txn

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

// checkCoverage checks a shared sync log (childConfig.SyncLog): every "ack <pid> <tsn>" must come
// after a "sync <pid> <segment> <end>" line, of any process, that covers the record of tsn (same
// segment, end at or past the record's). It returns how many acks were first covered by another
// process's fsync (commits offered to a lock holder).
func checkCoverage(lines []string, ends map[pages.TSN]logPos) (foreign int, err error) {
	synced := map[uint64]int64{}         // segment -> furthest end fsynced so far
	who := map[uint64]map[int64]string{} // segment -> end -> the pid whose fsync reached it
	for i, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) == 4 && f[0] == "sync":
			seg, err1 := strconv.ParseUint(f[2], 10, 64)
			end, err2 := strconv.ParseInt(f[3], 10, 64)
			if err1 != nil || err2 != nil {
				return 0, fmt.Errorf("line %d: %q", i+1, l)
			}
			if end > synced[seg] {
				synced[seg] = end
				if who[seg] == nil {
					who[seg] = map[int64]string{}
				}
				who[seg][end] = f[1]
			}
		case len(f) == 3 && f[0] == "ack":
			tsn, err := strconv.ParseUint(f[2], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("line %d: %q", i+1, l)
			}
			end, ok := ends[pages.TSN(tsn)]
			if !ok {
				return 0, fmt.Errorf("line %d: acknowledged tsn %d is not in the log", i+1, tsn)
			}
			if synced[uint64(end.Seg)] < end.Off {
				return 0, fmt.Errorf("line %d: tsn %d (segment %d, ends at %d) acknowledged before an fsync covered it (fsynced to %d)",
					i+1, tsn, end.Seg, end.Off, synced[uint64(end.Seg)])
			}
			// The first fsync that covered it: the smallest recorded end at or past the record's.
			first, by := int64(-1), ""
			for e, p := range who[uint64(end.Seg)] {
				if e >= end.Off && (first < 0 || e < first) {
					first, by = e, p
				}
			}
			if by != f[1] {
				foreign++
			}
		default:
			return 0, fmt.Errorf("line %d: %q", i+1, l)
		}
	}
	return foreign, nil
}

// recordEnds maps each commit record's TSN to where it ends in the store's log.
func recordEnds(t *testing.T, dir string) map[pages.TSN]logPos {
	t.Helper()
	ends := map[pages.TSN]logPos{}
	for _, s := range scanLog(t, dir, pages.JSON, false) {
		if !s.Rec.IsReservation() {
			ends[s.Rec.TSN] = s.End
		}
	}
	return ends
}

// coverageRun runs a bumper child per config, all appending to one sync log, and checks it
// (checkCoverage) against the store's log. It returns how many acks another process's fsync covered
// first, and how many acks there were.
func coverageRun(t *testing.T, dir string, bumpers []childConfig) (foreign, acks int) {
	t.Helper()
	syncLog := filepath.Join(t.TempDir(), "synclog")
	var kids []*child
	for _, cc := range bumpers {
		cc.SyncLog = syncLog
		kids = append(kids, startChild(t, "bumper", configEnv(t, cc)))
	}
	for _, k := range kids {
		lines, err := k.all(t)
		require.NoError(t, err, "child output: %v", tail(lines))
	}
	data, err := os.ReadFile(syncLog)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	foreign, err = checkCoverage(lines, recordEnds(t, dir))
	require.NoError(t, err)
	return foreign, strings.Count(string(data), "ack ")
}

// Across processes, every acknowledged commit was covered by a log fsync before Commit returned,
// also when another process's lock hold wrote and fsynced it.
func TestProcessesFsyncCoverage(t *testing.T) {
	dir := t.TempDir()
	setupPair(t, dir, Config{})
	const procs, each = 4, 100
	bumpers := make([]childConfig, procs)
	for i := range bumpers {
		bumpers[i] = childConfig{Dir: dir, N: each}
	}
	foreign, acks := coverageRun(t, dir, bumpers)
	require.Equal(t, procs*each, acks)
	t.Logf("%d of %d acknowledged commits were first covered by another process's fsync", foreign, acks)
	db := mustOpen(t, dir, Config{})
	require.NoError(t, view(context.Background(), db, func(tx *Tx) error {
		a, err := readInt(tx, "c", "page000001")
		require.NoError(t, err)
		require.Equal(t, procs*each, a)
		return nil
	}))
}

// The checker fails on an ack that no earlier fsync covers (here the covering sync line comes
// after it) and on an ack of a TSN missing from the log.
func TestCheckCoverageFailsOnPlanted(t *testing.T) {
	ends := map[pages.TSN]logPos{5: {Seg: 1, Off: 900}}
	_, err := checkCoverage([]string{"sync 1 1 899", "ack 2 5", "sync 1 1 900"}, ends)
	require.ErrorContains(t, err, "before an fsync covered it")
	_, err = checkCoverage([]string{"sync 1 1 900", "ack 2 6"}, ends)
	require.ErrorContains(t, err, "not in the log")
	foreign, err := checkCoverage([]string{"sync 1 1 900", "ack 2 5"}, ends)
	require.NoError(t, err)
	require.Equal(t, 1, foreign)
	foreign, err = checkCoverage([]string{"sync 2 1 950", "ack 2 5"}, ends)
	require.NoError(t, err)
	require.Zero(t, foreign)
}
