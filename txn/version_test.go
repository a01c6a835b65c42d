package txn

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// snapshotFiles returns the contents of every regular file under dir.
func snapshotFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		files[path] = b
		return err
	}))
	return files
}

// reframeLine rewrites one checksummed log line (with its newline) to body+suffix, chained to
// prev: a valid line whose content is body.
func reframeLine(body string, prev uint32) []byte {
	var b bytes.Buffer
	b.WriteString(body)
	wal.AppendCRC(&b, 0, prev)
	return b.Bytes()
}

// otherVersion rewrites, in one file of a store, the layout version to v, keeping the file valid
// otherwise (checksums fixed), as a build of another layout version would have written it.
var otherVersion = map[string]func(t *testing.T, dir string, v int){
	"txtdb.json": func(t *testing.T, dir string, v int) {
		path := filepath.Join(dir, configName)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		old := fmt.Sprintf(`"txtdb": %d,`, layoutVersion)
		require.Contains(t, string(data), old)
		data = bytes.Replace(data, []byte(old), fmt.Appendf(nil, `"txtdb": %d,`, v), 1)
		require.NoError(t, os.WriteFile(path, data, 0o644))
	},
	"state": func(t *testing.T, dir string, v int) {
		path := filepath.Join(dir, pages.MetaDir, stateName)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Len(t, data, 2*wal.StateSlotSize)
		for i := 0; i < 2; i++ {
			slot := data[i*wal.StateSlotSize : (i+1)*wal.StateSlotSize]
			line := strings.TrimRight(string(slot[:wal.StateSlotSize-1]), " ")
			body, _, ok := strings.Cut(line, " crc=")
			require.True(t, ok)
			magic := "txtdb-state " + strconv.Itoa(layoutVersion) + " "
			require.True(t, strings.HasPrefix(body, magic), body)
			body = fmt.Sprintf("txtdb-state %d %s", v, body[len(magic):])
			line = fmt.Sprintf("%s crc=%08x", body, crc32.Checksum([]byte(body), wal.CRCTable))
			copy(slot, bytes.Repeat([]byte(" "), wal.StateSlotSize-1))
			copy(slot, line)
		}
		require.NoError(t, os.WriteFile(path, data, 0o644))
	},
	"segment header": func(t *testing.T, dir string, v int) {
		data, err := os.ReadFile(seg1(dir))
		require.NoError(t, err)
		i := bytes.IndexByte(data, '\n')
		body, _, ok := strings.Cut(string(data[:i+1]), `,"crc":"`)
		require.True(t, ok)
		old := fmt.Sprintf(`{"txtdb_log":%d,`, layoutVersion)
		require.True(t, strings.HasPrefix(body, old), body)
		line := reframeLine(fmt.Sprintf(`{"txtdb_log":%d,`, v)+body[len(old):], 0)
		require.Len(t, line, i+1, "a one-digit version keeps the line's length")
		copy(data, line)
		require.NoError(t, os.WriteFile(seg1(dir), data, 0o644))
	},
}

// A store whose txtdb.json, state slots or segment header name another layout version is refused
// at Open with ErrVersion: never read as this version, never "repaired" (no file changes), also
// when the opener's first recovery takes the slow path (another boot) or the state was written
// under NoSync.
func TestOtherLayoutVersionRefused(t *testing.T) {
	for name, rewrite := range otherVersion {
		for _, v := range []int{layoutVersion - 1, layoutVersion + 1} {
			for _, opener := range []struct {
				name string
				cfg  Config
			}{
				{"same boot", Config{}},
				{"other boot", withBoot(Config{}, "rebooted")},
			} {
				for _, noSync := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s/v%d/%s/nosync=%v", name, v, opener.name, noSync), func(t *testing.T) {
						dir := t.TempDir()
						skipCheck(dir) // another layout version, on purpose
						setupPair(t, dir, Config{})
						bumpWith(t, dir, Config{NoSync: noSync}, 2)
						rewrite(t, dir, v)
						before := snapshotFiles(t, dir)
						_, err := Open(context.Background(), dir, opener.cfg)
						require.ErrorIs(t, err, ErrVersion)
						require.NotErrorIs(t, err, pages.ErrCorrupt)
						require.Equal(t, before, snapshotFiles(t, dir), "Open changed files of a store of another version")
					})
				}
			}
		}
	}
}

// A state file with one valid slot of another version and one torn slot is of another version,
// not "no readable state": it is not rebuilt.
func TestOtherVersionStateSlotBesideTornSlot(t *testing.T) {
	dir := t.TempDir()
	skipCheck(dir) // another layout version, on purpose
	setupPair(t, dir, Config{})
	otherVersion["state"](t, dir, layoutVersion+1)
	path := filepath.Join(dir, pages.MetaDir, stateName)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	copy(data[:wal.StateSlotSize], bytes.Repeat([]byte("x"), wal.StateSlotSize)) // slot 0 torn
	require.NoError(t, os.WriteFile(path, data, 0o644))
	before := snapshotFiles(t, dir)
	_, err = Open(context.Background(), dir, withBoot(Config{}, "rebooted"))
	require.ErrorIs(t, err, ErrVersion)
	require.Equal(t, before, snapshotFiles(t, dir))
}
