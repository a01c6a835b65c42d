package txn

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// checkSpans checks every version of db's index that has a span against the log: the span lies
// inside the record's line at loc, that line is whole and chained, the span's text has the span's
// checksum, and the op read through the span is the op the whole record holds for the page. It
// returns how many versions it checked with and without a span.
func checkSpans(t *testing.T, db *DB) (with, without int) {
	t.Helper()
	x := db.idxp.Load()
	type item struct {
		inc string
		n   uint64
		v   *version
	}
	var items []item
	x.mu.RLock()
	for inc, in := range x.incs {
		for n, h := range in.pages {
			for _, v := range h.vs {
				items = append(items, item{inc, n, v})
			}
		}
	}
	x.mu.RUnlock()
	for _, it := range items {
		x.mu.RLock()
		loc, span, deleted := it.v.loc, it.v.span, it.v.deleted
		x.mu.RUnlock()
		if span.Len == 0 {
			if loc.seg != 0 && !deleted {
				without++
			}
			continue
		}
		with++
		what := fmt.Sprintf("%s/%s v%d loc %+v span %+v", it.inc, pages.PageID(it.n), it.v.tsn, loc, span)
		require.NotZero(t, loc.seg, "%s: a span without a record", what)
		require.False(t, deleted, "%s: a span on a delete", what)
		require.LessOrEqual(t, int64(span.Off)+int64(span.Len), loc.n, "%s: span past the line", what)
		data, err := os.ReadFile(filepath.Join(db.logDir, wal.SegName(loc.seg)))
		require.NoError(t, err, what)
		require.LessOrEqual(t, loc.off+loc.n, int64(len(data)), what)
		line := data[loc.off : loc.off+loc.n]
		var r wal.Record
		_, err = wal.Unframe(line, &r, loc.prev)
		require.NoError(t, err, "%s: the line at loc", what)
		text := line[span.Off : span.Off+span.Len]
		require.Equal(t, span.CRC, crc32.Checksum(text, wal.CRCTable), "%s: checksum of %q", what, text)
		viaSpan, err := db.readOp(loc, span, it.inc, it.n)
		require.NoError(t, err, what)
		whole, err := db.readOp(loc, wal.Span{}, it.inc, it.n)
		require.NoError(t, err, what)
		require.Equal(t, whole.Kind, viaSpan.Kind, what)
		require.Equal(t, whole.Keys, viaSpan.Keys, what)
		require.Equal(t, len(whole.Objects), len(viaSpan.Objects), what)
		for i := range whole.Objects {
			require.Equal(t, whole.Objects[i].Text(), viaSpan.Objects[i].Text(), "%s: object %d", what, i)
		}
		require.Equal(t, it.v.append, viaSpan.Kind == opAppend, "%s: kind of the op and of the version", what)
	}
	return with, without
}

// runOf returns the run of appends of page n of "t" in db's index.
func runOf(db *DB, n uint64) int {
	x := db.idxp.Load()
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.incs[x.incAt("t", x.applied)].pages[n].latest().appends
}

// Every span the commit path and the catch-up path give a version names that version's op in
// the line at its loc: through rotations of small segments, transactions that create a namespace
// and write pages, reservations, keyed appends written whole by the commit lock holder (one
// member converted in a group, then the group validated again after another member's conversion
// failed), and the same records read by another handle from the log.
func TestSpansNameTheirOps(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 2048, CacheSize: 1, LogRetention: -1, CheckpointEvery: time.Hour}
	db := mustOpen(t, dir, cfg)
	_, _, err := update(ctx, db, keyedPages)
	require.NoError(t, err)
	other := mustOpen(t, dir, cfg)
	// Pin the start in both handles: no version is pruned, so every one is checked at the end.
	_ = begin(t, db)
	_ = begin(t, other)

	appendKey := func(page, key string) {
		t.Helper()
		_, _, err := update(ctx, db, func(tx *Tx) error { return tx.AppendPage("t", page, key, row{key, len(key)}) })
		require.NoError(t, err)
	}
	var page3 string
	_, _, err = update(ctx, db, func(tx *Tx) error {
		if err := tx.CreateNamespace("u"); err != nil {
			return err
		}
		for i := range 5 {
			if _, err := tx.Insert("u", map[string]any{"i": i, "s": "é\"\\\u2028<>"}); err != nil {
				return err
			}
		}
		var err error
		page3, err = tx.NewPage("t", row{"p3", 0})
		return err
	})
	require.NoError(t, err)
	// A key the fast record parser does not take: the reader decodes that record with
	// encoding/json, and its versions have no span (the whole record is read again).
	appendKey(page3, "clé")
	n3, err := pages.ParsePageID(page3)
	require.NoError(t, err)
	for i := range 2*maxAppends + 8 { // two runs written whole on page000001, one segment after another
		appendKey("page000001", fmt.Sprintf("a%02d", i))
		if i%7 == 0 {
			_, _, err := update(ctx, db, func(tx *Tx) error {
				if _, err := tx.ReadPage("t", "page000002"); err != nil {
					return err
				}
				if err := tx.UpdatePage("t", "page000002", row{"x", i}); err != nil {
					return err
				}
				_, err := tx.Insert("u", map[string]any{"i": i})
				return err
			})
			require.NoError(t, err)
		}
	}
	// One group: t1 is written whole (page3's run is at maxAppends), t2 appends after it.
	for runOf(db, n3) < maxAppends {
		appendKey(page3, fmt.Sprintf("b%02d", runOf(db, n3)))
	}
	t1, t2, t3 := begin(t, db), begin(t, db), begin(t, db)
	require.NoError(t, t1.AppendPage("t", page3, "whole1", row{"whole1", 1}))
	require.NoError(t, t2.AppendPage("t", page3, "after1", row{"after1", 1}))
	_, err = t3.Insert("u", map[string]any{"grp": 1})
	require.NoError(t, err)
	errs := inOneGroup(t, db, t1.Commit, t2.Commit, t3.Commit)
	armFaults(t, nil, nil, nil) // the group's hooks off again
	for i, err := range errs {
		require.NoError(t, err, "member %d", i)
	}

	// Another group: s1 on page3 is written whole and succeeds, s2's write-whole of page000001
	// fails (a record of its run is broken): the group is validated again without s2, and s1's op,
	// encoded again in the first round, is framed once.
	for runOf(db, n3) < maxAppends {
		appendKey(page3, fmt.Sprintf("c%02d", runOf(db, n3)))
	}
	for runOf(db, 1) < maxAppends {
		appendKey("page000001", fmt.Sprintf("d%02d", runOf(db, 1)))
	}
	s1, s2, s3 := begin(t, db), begin(t, db), begin(t, db)
	require.NoError(t, s1.AppendPage("t", page3, "whole2", row{"whole2", 2}))
	require.NoError(t, s2.AppendPage("t", "page000001", "fails", row{"fails", 2}))
	require.NoError(t, s3.AppendPage("t", page3, "after2", row{"after2", 2}))
	_ = rows(t, db, "t", "page000002") // evict page000001
	restore := flipInRecord(t, db, 1, maxAppends/2)
	errs = inOneGroupAnyOutcome(t, db, s1.Commit, s2.Commit, s3.Commit)
	armFaults(t, nil, nil, nil)
	restore()
	require.NoError(t, errs[0])
	require.ErrorIs(t, errs[1], pages.ErrCorrupt)
	require.NoError(t, errs[2])

	ops := pageOps(t, dir, "t", pages.JSON)
	var wholes int
	for _, o := range ops {
		if o.Kind == wal.OpPut && o.Keys != nil {
			wholes++
		}
	}
	require.GreaterOrEqual(t, wholes, 4, "keyed appends written whole")
	require.Greater(t, len(segsOf(t, dir)), 3, "segments")

	// The other handle reads everything from the log.
	want := map[string][]row{}
	for _, p := range []string{"page000001", "page000002", page3} {
		want[p] = rows(t, db, "t", p)
		require.Equal(t, want[p], rows(t, other, "t", p), p)
	}
	// Where both have one, the committer's span (from the bytes it framed) is the reader's (from
	// the line it parsed).
	spans := func(h *DB) map[string]wal.Span {
		out := map[string]wal.Span{}
		x := h.idxp.Load()
		x.mu.RLock()
		defer x.mu.RUnlock()
		for inc, in := range x.incs {
			for n, hist := range in.pages {
				for _, v := range hist.vs {
					if v.span.Len != 0 {
						out[fmt.Sprintf("%s/%d@%d", inc, n, v.tsn)] = v.span
					}
				}
			}
		}
		return out
	}
	mine, theirs := spans(db), spans(other)
	same := 0
	for k, s := range theirs {
		if m, ok := mine[k]; ok {
			require.Equal(t, m, s, "span of %s", k)
			same++
		}
	}
	require.Positive(t, same)
	for name, h := range map[string]*DB{"committer": db, "reader": other} {
		with, without := checkSpans(t, h)
		t.Logf("%s: %d versions checked through their span, %d without one", name, with, without)
		require.Positive(t, with, name)
		if h == other {
			require.Positive(t, without, "the record the fast parser does not take")
		} else {
			require.Zero(t, without, "the commit path gives every op a span")
		}
	}
}

// A byte changed outside a version's op (here in the record's "proc") no longer stops a reload
// of that version (the span path checks the op's text alone), but the damage is still found:
// Check reports the record, and a handle that reads the log (Open) gets ErrCorrupt.
func TestCorruptionOutsideOpStillFound(t *testing.T) {
	db, dir, seg, data := markedPages(t)
	ctx := context.Background()
	mark := bytes.Index(data, []byte("AAAAAAAA"))
	require.Positive(t, mark)
	at := bytes.LastIndex(data[:mark], []byte(`"proc":"`))
	require.Positive(t, at)
	at += len(`"proc":"`)
	if data[at] == '0' {
		data[at] = '1'
	} else {
		data[at] = '0'
	}
	require.NoError(t, os.WriteFile(seg, data, 0o644))

	for _, page := range []string{"page000001", "page000002", "page000001"} { // each read evicts the other
		require.NoError(t, view(ctx, db, func(tx *Tx) error { _, err := tx.ReadPage("p", page); return err }), page)
	}
	probs, err := db.Check(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, probs, "Check finds the damaged record")
	t.Logf("Check: %v", probs)
	_, err = Open(ctx, dir, Config{})
	require.ErrorIs(t, err, pages.ErrCorrupt, "a handle that reads the log")
}
