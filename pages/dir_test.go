package pages

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDirWriteRead(t *testing.T) {
	d, path := MustOpenDir(t)
	for _, f := range formats {
		for _, ns := range []string{"app", "app.users", "a.b.c.d", "Zürich.日本"} {
			t.Run(f.String()+"/"+ns, func(t *testing.T) {
				nsPath, err := NamespacePath(ns)
				require.NoError(t, err)
				objs := sampleObjects(t, f)
				require.NoError(t, d.WriteVersion(nsPath, "page000001", f, 7, objs, 0))
				got, err := d.ReadVersion(nsPath, "page000001", f, 7)
				require.NoError(t, err)
				assert.Equal(t, texts(objs), texts(got))

				want, err := EncodePage(f, objs)
				require.NoError(t, err)
				file := filepath.Join(path, filepath.FromSlash(nsPath), "page000001."+f.Ext()+".v7")
				data, err := os.ReadFile(file)
				require.NoError(t, err)
				assert.Equal(t, string(want), string(data))
				info, err := os.Stat(file)
				require.NoError(t, err)
				if got := info.Mode().Perm() &^ 0o022; got != 0o644&^0o022 {
					t.Errorf("mode of %s = %v, want 0644 less umask", file, info.Mode())
				}
			})
		}
	}
}

func TestDirPermissions(t *testing.T) {
	d, path := MustOpenDir(t)
	require.NoError(t, d.WriteVersion("secret/inner", "page000001", JSON, 1, nil, 0o600))
	for rel, want := range map[string]fs.FileMode{
		"secret":                          0o700,
		"secret/inner":                    0o700,
		"secret/inner/page000001.json.v1": 0o600,
	} {
		info, err := os.Stat(filepath.Join(path, rel))
		require.NoError(t, err)
		if got := info.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %v, want %v", rel, got, want)
		}
	}
}

func TestDirVersionsImmutable(t *testing.T) {
	d, path := MustOpenDir(t)
	first := []Object{mustEncode(t, JSON, "first")}
	require.NoError(t, d.WriteVersion("app", "page000001", JSON, 3, first, 0))
	err := d.WriteVersion("app", "page000001", JSON, 3, []Object{mustEncode(t, JSON, "second")}, 0)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second WriteVersion = %v, want fs.ErrExist", err)
	}
	got, err := d.ReadVersion("app", "page000001", JSON, 3)
	require.NoError(t, err)
	assert.Equal(t, texts(first), texts(got))
	entries, err := os.ReadDir(filepath.Join(path, "app"))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "only the version file, no temporary files")
}

func TestDirConcurrentWritersOfOneVersion(t *testing.T) {
	d, _ := MustOpenDir(t)
	const writers = 8
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			errs[i] = d.WriteVersion("app", "page000001", JSON, 1, []Object{mustEncode(t, JSON, i)}, 0)
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("writers %d and %d both succeeded", winner, i)
			}
			winner = i
		case !errors.Is(err, fs.ErrExist):
			t.Errorf("writer %d: %v, want nil or fs.ErrExist", i, err)
		}
	}
	require.GreaterOrEqual(t, winner, 0, "no writer succeeded")
	got, err := d.ReadVersion("app", "page000001", JSON, 1)
	require.NoError(t, err)
	assert.Equal(t, []string{mustEncode(t, JSON, winner).Text()}, texts(got))
}

func TestDirVersions(t *testing.T) {
	d, path := MustOpenDir(t)
	write := func(id string, f Format, tsn TSN) {
		t.Helper()
		require.NoError(t, d.WriteVersion("app", id, f, tsn, nil, 0))
	}
	write("page1000000", JSON, 1)
	write("page999999", JSON, 2)
	write("page000002", JSON, 10)
	write("page000002", JSON, 9)
	write("page000002", JSON, 100)
	write("page000001", JSON, 5)
	write("page000001", YAML, 6)
	require.NoError(t, d.WriteVersion("app/sub", "page000003", JSON, 1, nil, 0))
	for _, junk := range []string{
		"notes.txt", "page000001.json.v01", "page1.json.v1", ".page000001.json.v7.ABC.tmp",
		"page000001.json.v0", "page000001.yml.v1",
	} {
		writeFile(t, filepath.Join(path, "app", junk), []byte("[]\n"))
	}
	require.NoError(t, os.Mkdir(filepath.Join(path, "app", "page000004.json.v1"), 0o755))
	require.NoError(t, os.Symlink("page000001.json.v5", filepath.Join(path, "app", "page000005.json.v1")))

	got, err := d.Versions("app", JSON)
	require.NoError(t, err)
	want := []Version{
		{"page000001", 5},
		{"page000002", 9}, {"page000002", 10}, {"page000002", 100},
		{"page999999", 2},
		{"page1000000", 1},
	}
	assert.Equal(t, want, got)

	got, err = d.Versions("app", YAML)
	require.NoError(t, err)
	assert.Equal(t, []Version{{"page000001", 6}}, got)

	got, err = d.Versions("missing/ns", JSON)
	if err != nil || got != nil {
		t.Errorf("Versions(missing) = %v, %v; want nil, nil", got, err)
	}

	n, err := d.RemoveTemps("app")
	require.NoError(t, err)
	assert.Equal(t, 1, n, "RemoveTemps removes only the temporary file")
	_, err = os.Stat(filepath.Join(path, "app", "notes.txt"))
	assert.NoError(t, err, "RemoveTemps keeps other files")
	n, err = d.RemoveTemps("missing")
	assert.NoError(t, err)
	assert.Zero(t, n)
}

func TestDirRemoveVersion(t *testing.T) {
	d, _ := MustOpenDir(t)
	require.NoError(t, d.WriteVersion("app", "page000001", XML, 1, nil, 0))
	require.NoError(t, d.WriteVersion("app", "page000001", XML, 2, nil, 0))
	require.NoError(t, d.RemoveVersion("app", "page000001", XML, 1))
	require.NoError(t, d.SyncNamespace("app"))
	got, err := d.Versions("app", XML)
	require.NoError(t, err)
	assert.Equal(t, []Version{{"page000001", 2}}, got)
	if err := d.RemoveVersion("app", "page000001", XML, 1); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("RemoveVersion(removed) = %v, want fs.ErrNotExist", err)
	}
	if _, err := d.ReadVersion("app", "page000001", XML, 1); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadVersion(removed) = %v, want fs.ErrNotExist", err)
	}
}

func TestDirInvalidNames(t *testing.T) {
	d, path := MustOpenDir(t)
	objs := []Object{mustEncode(t, JSON, 1)}
	tests := []struct {
		name   string
		nsPath string
		pageID string
		f      Format
		tsn    TSN
		want   error
	}{
		{"dot-dot page", "app", "../x", JSON, 1, ErrInvalidName},
		{"page with path", "app", "page000001/../../x", JSON, 1, ErrInvalidName},
		{"page in folder", "app", "page000001/x", JSON, 1, ErrInvalidName},
		{"absolute page", "app", "/etc/passwd", JSON, 1, ErrInvalidName},
		{"empty page", "app", "", JSON, 1, ErrInvalidName},
		{"dot-dot folder", "../x", "page000001", JSON, 1, ErrInvalidName},
		{"folder climbing", "a/../..", "page000001", JSON, 1, ErrInvalidName},
		{"absolute folder", "/tmp", "page000001", JSON, 1, ErrInvalidName},
		{"empty folder", "", "page000001", JSON, 1, ErrInvalidName},
		{"meta folder", MetaDir, "page000001", JSON, 1, ErrInvalidName},
		{"meta subfolder", MetaDir + "/log", "page000001", JSON, 1, ErrInvalidName},
		{"hidden folder", "a/.b", "page000001", JSON, 1, ErrInvalidName},
		{"dotted folder", "a.b", "page000001", JSON, 1, ErrInvalidName},
		{"TSN 0", "app", "page000001", JSON, 0, ErrInvalidName},
		{"bad format", "app", "page000001", Format(0), 1, ErrFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := d.WriteVersion(tc.nsPath, tc.pageID, tc.f, tc.tsn, objs, 0); !errors.Is(err, tc.want) {
				t.Errorf("WriteVersion(%q, %q, %v, %d) = %v, want %v", tc.nsPath, tc.pageID, tc.f, tc.tsn, err, tc.want)
			}
			if _, err := d.ReadVersion(tc.nsPath, tc.pageID, tc.f, tc.tsn); !errors.Is(err, tc.want) {
				t.Errorf("ReadVersion(%q, %q, %v, %d) = %v, want %v", tc.nsPath, tc.pageID, tc.f, tc.tsn, err, tc.want)
			}
			if err := d.RemoveVersion(tc.nsPath, tc.pageID, tc.f, tc.tsn); !errors.Is(err, tc.want) {
				t.Errorf("RemoveVersion(%q, %q, %v, %d) = %v, want %v", tc.nsPath, tc.pageID, tc.f, tc.tsn, err, tc.want)
			}
		})
	}
	for _, nsPath := range []string{"../x", "", MetaDir, "a//b"} {
		if _, err := d.Versions(nsPath, JSON); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Versions(%q) = %v, want ErrInvalidName", nsPath, err)
		}
		if _, err := d.RemoveTemps(nsPath); !errors.Is(err, ErrInvalidName) {
			t.Errorf("RemoveTemps(%q) = %v, want ErrInvalidName", nsPath, err)
		}
		if err := d.SyncNamespace(nsPath); !errors.Is(err, ErrInvalidName) {
			t.Errorf("SyncNamespace(%q) = %v, want ErrInvalidName", nsPath, err)
		}
	}
	if err := d.WriteVersion("app", "page000001", JSON, 1, []Object{mustEncode(t, YAML, 1)}, 0); !errors.Is(err, ErrFormat) {
		t.Errorf("WriteVersion(YAML object into JSON page) = %v, want ErrFormat", err)
	}
	entries, err := os.ReadDir(path)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing written for invalid names")
}

// TestDirSymlinkOutside checks that symbolic links inside the data directory
// that point outside it are refused, whether absolute or relative, for the
// namespace folder, a parent folder or the version file itself.
func TestDirSymlinkOutside(t *testing.T) {
	d, path := MustOpenDir(t)
	elsewhere := t.TempDir()
	secret := VersionFileName("page000001", JSON, 1)
	writeFile(t, filepath.Join(elsewhere, secret), []byte("[\n  \"secret\"\n]\n"))
	writeFile(t, filepath.Join(elsewhere, "users", secret), []byte("[\n  \"secret\"\n]\n"))
	rel, err := filepath.Rel(path, elsewhere)
	require.NoError(t, err)
	require.NoError(t, os.Symlink(elsewhere, filepath.Join(path, "app")))
	require.NoError(t, os.Symlink(rel, filepath.Join(path, "relapp")))
	require.NoError(t, os.MkdirAll(filepath.Join(path, "ns"), 0o755))
	require.NoError(t, os.Symlink(filepath.Join(elsewhere, secret), filepath.Join(path, "ns", secret)))

	for _, nsPath := range []string{"app", "app/users", "relapp", "relapp/users"} {
		t.Run(nsPath, func(t *testing.T) {
			if err := d.WriteVersion(nsPath, "page000002", JSON, 1, nil, 0); err == nil {
				t.Errorf("WriteVersion(%q) through a link outside = nil, want an error", nsPath)
			}
			if objs, err := d.ReadVersion(nsPath, "page000001", JSON, 1); err == nil {
				t.Errorf("ReadVersion(%q) through a link outside = %q, want an error", nsPath, texts(objs))
			}
			if err := d.RemoveVersion(nsPath, "page000001", JSON, 1); err == nil {
				t.Errorf("RemoveVersion(%q) through a link outside = nil, want an error", nsPath)
			}
			if vs, err := d.Versions(nsPath, JSON); err == nil {
				t.Errorf("Versions(%q) through a link outside = %v, want an error", nsPath, vs)
			}
		})
	}
	if objs, err := d.ReadVersion("ns", "page000001", JSON, 1); err == nil {
		t.Errorf("ReadVersion through a file link outside = %q, want an error", texts(objs))
	}
	if err := d.WriteVersion("ns", "page000001", JSON, 1, nil, 0); err == nil {
		t.Errorf("WriteVersion over a file link outside = nil, want an error")
	}
	entries, err := os.ReadDir(elsewhere)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "nothing written outside")
	for _, p := range []string{filepath.Join(elsewhere, secret), filepath.Join(elsewhere, "users", secret)} {
		_, err := os.Stat(p)
		assert.NoError(t, err, "nothing removed outside")
	}
	entries, err = os.ReadDir(filepath.Join(elsewhere, "users"))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "nothing written outside")
}

func TestDirCorruptFile(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			d, path := MustOpenDir(t)
			objs := sampleObjects(t, f)
			require.NoError(t, d.WriteVersion("app/users", "page000042", f, 9, objs, 0))
			file := filepath.Join(path, "app", "users", "page000042."+f.Ext()+".v9")
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			for _, bad := range [][]byte{data[:len(data)/2], data[:0], append([]byte("x"), data...), []byte("\xff\xfe")} {
				require.NoError(t, os.WriteFile(file, bad, 0o644))
				_, err := d.ReadVersion("app/users", "page000042", f, 9)
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("ReadVersion(%q) = %v, want ErrCorrupt", bad, err)
				}
				var ce *CorruptError
				require.ErrorAs(t, err, &ce)
				assert.Equal(t, "app/users/page000042."+f.Ext()+".v9", ce.Path)
				assert.Contains(t, err.Error(), ce.Path)
			}
		})
	}
}

// TestDirSyncFailure injects an fsync failure: the write fails, and leaves
// neither the version nor a temporary file behind (MustOpenDir checks).
func TestDirSyncFailure(t *testing.T) {
	d, path := MustOpenDir(t)
	boom := errors.New("injected fsync failure")
	d.syncFile = func(*os.File) error { return boom }
	err := d.WriteVersion("app", "page000001", JSON, 1, []Object{mustEncode(t, JSON, 1)}, 0)
	if !errors.Is(err, boom) {
		t.Fatalf("WriteVersion = %v, want the injected error", err)
	}
	d.syncFile = nil
	entries, err := os.ReadDir(filepath.Join(path, "app"))
	if err == nil && len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
	require.NoError(t, d.WriteVersion("app", "page000001", JSON, 1, []Object{mustEncode(t, JSON, 1)}, 0))
}

// TestDirNoHardLinks checks the fallback for file systems without hard
// links: check, then rename.
func TestDirNoHardLinks(t *testing.T) {
	d, _ := MustOpenDir(t)
	d.link = func(string, string) error { return &os.LinkError{Op: "link", Err: syscall.EPERM} }
	objs := []Object{mustEncode(t, YAML, "x")}
	require.NoError(t, d.WriteVersion("app", "page000001", YAML, 1, objs, 0))
	got, err := d.ReadVersion("app", "page000001", YAML, 1)
	require.NoError(t, err)
	assert.Equal(t, texts(objs), texts(got))
	if err := d.WriteVersion("app", "page000001", YAML, 1, objs, 0); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second WriteVersion = %v, want fs.ErrExist", err)
	}
	boom := errors.New("injected link failure")
	d.link = func(string, string) error { return boom }
	if err := d.WriteVersion("app", "page000002", YAML, 1, objs, 0); !errors.Is(err, boom) {
		t.Errorf("WriteVersion with a failing link = %v, want the injected error", err)
	}
}

func TestDirClose(t *testing.T) {
	path := t.TempDir()
	d, err := OpenDir(path)
	require.NoError(t, err)
	assert.NotNil(t, d.Root())
	require.NoError(t, d.Close())
	require.NoError(t, d.Close(), "Close is idempotent")
	if err := d.WriteVersion("app", "page000001", JSON, 1, nil, 0); err == nil {
		t.Errorf("WriteVersion after Close = nil, want an error")
	}
	if _, err := OpenDir(filepath.Join(path, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenDir(missing) = %v, want fs.ErrNotExist", err)
	}
}
