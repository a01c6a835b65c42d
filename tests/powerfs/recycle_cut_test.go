package powerfs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Recycle overwrites in place, then truncates: power cuts that land while
// checkpoints reuse superseded files (the housekeeper's runs keep them; checkpoints every
// millisecond). Unlike TestPowerCutCheckpoint it fails if no reuse happened (no truncate
// reached the layer), so the overwrite-then-cut path really is under the cut. After each cut a
// process of a new boot must find every acknowledged commit, untorn accounts and a clean Check.
func TestPowerCutWhileRecycling(t *testing.T) {
	if why := Available(); why != "" {
		t.Skip(why)
	}
	cuts := Cuts(100)
	if testing.Short() { // two of the diagonal: torn data with all, and with a prefix of, the metadata
		cuts = []Cut{cuts[5], cuts[15]}
	}
	const workers, acks = 2, 1500
	base := t.TempDir()
	backing := filepath.Join(base, "disk")
	last := map[int]int{}
	truncates := 0
	for round, cut := range cuts {
		f := MustMount(t, backing, Config{})
		dir := f.Path("db")
		if round == 0 {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			syncDir(t, f.Dir())
		}
		env := []string{"POWERFS_DIR=" + dir, "POWERFS_CKPT=1ms", "POWERFS_SEG=" + strconv.Itoa(16<<10)}
		boot, err := NewBoot(base)
		if err != nil {
			t.Fatal(err)
		}
		verify := func() verifyResult {
			v := startChild(t, boot, f.Dir(), false, append(env, "POWERFS_CHILD=verify")...)
			line, ok := v.next()
			if !ok || !strings.HasPrefix(line, "verify ") {
				t.Fatalf("round %d: verify: %q (stderr %s)", round, line, v.stderr.String())
			}
			var res verifyResult
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "verify ")), &res); err != nil {
				t.Fatal(err)
			}
			if err := v.wait(); err != nil {
				t.Errorf("round %d: verify exited: %v (stderr %s)", round, err, v.stderr.String())
			}
			return res
		}
		res := verify()
		if res.Accounts != accounts || res.Total != accounts*startBalance {
			t.Errorf("round %d (after %v): %d accounts holding %d (a torn transaction)", round, cuts[max(round-1, 0)], res.Accounts, res.Total)
		}
		for _, p := range res.Problems {
			t.Errorf("round %d (after %v): check: %s", round, cuts[max(round-1, 0)], p)
		}
		for w := range workers {
			if res.Seqs[w] < last[w] {
				t.Errorf("round %d (after %v): worker %d: acknowledged commit %d lost (the store has %d)", round, cuts[max(round-1, 0)], w, last[w], res.Seqs[w])
			}
			last[w] = res.Seqs[w]
		}
		before := f.Counts()[OpTruncate]
		var ws []*child
		for w := range workers {
			ws = append(ws, startChild(t, boot, f.Dir(), false, append(env, "POWERFS_CHILD=work", "POWERFS_W="+strconv.Itoa(w))...))
		}
		for w, c := range ws {
			for n := 0; n < acks; {
				line, ok := c.next()
				if !ok {
					t.Fatalf("round %d: worker %d ended: %s", round, w, c.stderr.String())
				}
				if fs := strings.Fields(line); len(fs) == 5 && fs[0] == "ack" {
					seq, _ := strconv.Atoi(fs[2])
					last[w] = seq
					n++
				}
			}
		}
		for _, c := range ws {
			syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		}
		for w, c := range ws {
			c.kill()
			for l := range c.lines {
				if fs := strings.Fields(l); len(fs) == 5 && fs[0] == "ack" {
					last[w], _ = strconv.Atoi(fs[2])
				}
			}
		}
		n := f.Counts()[OpTruncate] - before
		truncates += n
		rep, err := f.Cut(cut)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d truncates (reuses) before the cut %v: %+v; acked %v", round, n, cut, rep, last)
	}
	f := MustMount(t, backing, Config{})
	defer f.Unmount()
	if truncates == 0 {
		t.Fatal("no superseded file was reused: the test did not exercise Recycle")
	}
	boot, err := NewBoot(base)
	if err != nil {
		t.Fatal(err)
	}
	v := startChild(t, boot, f.Dir(), false, "POWERFS_DIR="+f.Path("db"), "POWERFS_CKPT=1h", "POWERFS_CHILD=verify")
	line, _ := v.next()
	var res verifyResult
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "verify ")), &res); err != nil {
		t.Fatalf("final verify: %q %v %s", line, err, v.stderr.String())
	}
	_ = v.wait()
	for _, p := range res.Problems {
		t.Errorf("final: check: %s", p)
	}
	for w := range workers {
		if res.Seqs[w] < last[w] {
			t.Errorf("final: worker %d: acknowledged commit %d lost (the store has %d)", w, last[w], res.Seqs[w])
		}
	}
	if res.Total != accounts*startBalance {
		t.Errorf("final: accounts hold %d", res.Total)
	}
}
