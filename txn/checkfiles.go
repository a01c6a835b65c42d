package txn

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/txtdb/txtdb/lockfs"
	"github.com/txtdb/txtdb/pages"
	"github.com/txtdb/txtdb/wal"
)

// The file checks of CheckDir: what is in the metadata folders, the registry, the namespace
// folders and the attic, and the page versions the checkpoint needs.

// checkMeta looks at every file in .txtdb/ (but the attic), .txtdb/log/ and .txtdb/procs/ and
// at the top of the data directory. Temporary files a commit may be writing are judged while
// the commit lock is free.
func (c *checker) checkMeta() {
	lockPath := filepath.Join(c.meta, lockName)
	if _, err := os.Lstat(lockPath); err == nil {
		if unlock, ok, err := lockfs.New(lockPath, 0).TryLock(); err == nil && ok {
			defer func() { _ = unlock() }()
			c.commitFree = true
		}
	}
	c.checkTop()
	ents, err := os.ReadDir(c.meta)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			c.corrupt(pages.MetaDir, "missing")
		} else {
			c.add(pages.MetaDir, err)
		}
		return
	}
	for _, e := range ents {
		name, rel := e.Name(), metaRel(e.Name())
		switch name {
		case lockName, stateName, horizonName, checkpointName, checkpointLockName:
			if !e.Type().IsRegular() {
				c.unexpected(rel, "not a regular file")
			}
			continue
		case logDirName, procsDirName, atticDirName, boardDirName:
			if !e.IsDir() {
				c.unexpected(rel, "not a folder")
			}
			continue
		}
		if lockfs.IsTempName(name) && e.Type().IsRegular() {
			base := strings.TrimPrefix(name[:strings.LastIndex(name, ".tmp-")], ".")
			switch base {
			case stateName: // written only while creating the store, before txtdb.json
				c.leftover(rel, "temporary state file of a store creation")
				continue
			case checkpointName, horizonName:
				if c.ckptHeld {
					c.leftover(rel, "temporary file of a checkpoint")
				}
				continue
			}
		}
		c.unexpected(rel, "unknown file")
	}
	c.checkLogDir()
	c.checkProcs()
	c.checkBoard()
}

// checkTop looks at the files at the top of the data directory (folders: checkFolders).
func (c *checker) checkTop() {
	ents, err := fs.ReadDir(c.root.FS(), ".")
	if err != nil {
		c.add(".", err)
		return
	}
	for _, e := range ents {
		name := e.Name()
		switch {
		case e.IsDir():
		case name == configName && e.Type().IsRegular():
		case lockfs.IsTempName(name) && strings.HasPrefix(name, "."+configName+".tmp-") && e.Type().IsRegular():
			if c.commitFree {
				c.leftover(name, "temporary file of a store creation")
			}
		default:
			c.unexpected(name, "unknown file")
		}
	}
}

func (c *checker) checkLogDir() {
	ents, err := os.ReadDir(c.logDir)
	if err != nil {
		return // reported by checkLog
	}
	for _, e := range ents {
		name, rel := e.Name(), metaRel(logDirName, e.Name())
		if _, ok := wal.ParseSegName(name); ok && e.Type().IsRegular() {
			continue
		}
		if lockfs.IsTempName(name) && e.Type().IsRegular() {
			if c.commitFree {
				c.leftover(rel, "temporary file of a segment rotation")
			}
			continue
		}
		c.unexpected(rel, "not a log segment")
	}
}

// checkBoard checks that the commit board holds only its own files (board.go); their contents are
// scratch (an offer, an outcome) that no reader depends on once its owner is gone.
func (c *checker) checkBoard() {
	ents, err := os.ReadDir(filepath.Join(c.meta, boardDirName))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.add(metaRel(boardDirName), err)
		}
		return
	}
	for _, e := range ents {
		name, rel := e.Name(), metaRel(boardDirName, e.Name())
		if !e.Type().IsRegular() {
			c.unexpected(rel, "not a regular file")
			continue
		}
		if name == boardFile {
			continue
		}
		n, ext, _ := strings.Cut(name, ".")
		i, err := strconv.Atoi(n)
		if err != nil || i < 0 || i >= boardSlots || strconv.Itoa(i) != n || (ext != "lock" && ext != "offer" && ext != "req" && ext != "wake") {
			c.unexpected(rel, "not a commit board file")
		}
	}
}

// checkProcs probes the registry: files whose flock nobody holds belong to dead processes.
func (c *checker) checkProcs() {
	dir := filepath.Join(c.meta, procsDirName)
	ents, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.add(metaRel(procsDirName), err)
		}
		return
	}
	for _, e := range ents {
		name, rel := e.Name(), metaRel(procsDirName, e.Name())
		id, isEntry := strings.CutSuffix(name, procSuffix)
		tmpID, isTemp := strings.CutSuffix(strings.TrimPrefix(name, "."), procTemp)
		isTemp = isTemp && strings.HasPrefix(name, ".")
		switch {
		case !e.Type().IsRegular():
			c.unexpected(rel, "not a regular file")
		case isEntry && uuid.Validate(id) == nil:
			c.probe(rel, filepath.Join(dir, name), id, false)
		case isTemp && uuid.Validate(tmpID) == nil:
			c.probe(rel, filepath.Join(dir, name), tmpID, true)
		default:
			c.unexpected(rel, "not a registry file")
		}
	}
}

func (c *checker) probe(rel, abs, id string, temp bool) {
	f, err := os.Open(abs) // never O_CREATE
	if errors.Is(err, fs.ErrNotExist) {
		return // deregistered meanwhile
	}
	if err != nil {
		c.add(rel, err)
		return
	}
	_ = f.Close()
	p := probePeer(abs, id)
	if p.alive {
		if !p.readable && !temp {
			c.corrupt(rel, "registry entry of a live process has no valid slot: it pins every version")
		}
		return
	}
	if _, err := os.Lstat(abs); err != nil {
		return // deregistered meanwhile
	}
	if temp {
		c.leftover(rel, "registry file of a process that died while registering")
	} else {
		c.leftover(rel, "registry entry of a dead process (nobody holds its lock)")
	}
}

// folderRole is what the layout says a folder under the data directory is.
type folderRole uint8

const (
	folderStray    folderRole = iota // not part of the layout
	folderAncestor                   // holds namespace folders, no version files
	folderFuture                     // the folder of a namespace the checkpoint has not written yet
	folderOwned                      // holds a catalog incarnation's version files
)

// roles assigns a role to every folder the catalog and the log account for.
func (c *checker) roles() map[string]folderRole {
	out := map[string]folderRole{}
	set := func(d string, r folderRole) {
		if out[d] < r {
			out[d] = r
		}
		if strings.HasPrefix(d, pages.MetaDir+"/") {
			return
		}
		for p := path.Dir(d); p != "." && p != "/" && p != ""; p = path.Dir(p) {
			if out[p] < folderAncestor {
				out[p] = folderAncestor
			}
		}
	}
	for _, ci := range c.cat.Incs {
		for _, d := range []string{ci.Dir, ci.To} {
			if d != "" {
				set(d, folderOwned)
			}
		}
		if ci.NS != "" {
			if p, err := pages.NamespacePath(ci.NS); err == nil {
				set(p, folderFuture)
			}
		}
	}
	for name := range c.names {
		if p, err := pages.NamespacePath(name); err == nil {
			set(p, folderFuture)
		}
	}
	return out
}

// checkFolders walks the namespace folders and the attic.
func (c *checker) checkFolders() {
	roles := c.roles()
	err := fs.WalkDir(c.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == "." {
				return err
			}
			c.add(p, err)
			return nil
		}
		if p == "." {
			return nil
		}
		if d.IsDir() {
			if p == pages.MetaDir {
				return fs.SkipDir
			}
			if roles[p] == folderStray {
				c.stray(p, "no namespace incarnation uses this folder")
				return fs.SkipDir
			}
			return nil
		}
		if dir := path.Dir(p); dir != "." {
			c.checkFile(dir, roles[dir], d)
		}
		return nil
	})
	if err != nil {
		c.add(".", err)
	}
	attic := metaRel(atticDirName)
	ents, err := fs.ReadDir(c.root.FS(), attic)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.add(attic, err)
		}
		return
	}
	for _, e := range ents {
		dir := path.Join(attic, e.Name())
		if !e.IsDir() {
			c.unexpected(dir, "not the attic folder of a namespace incarnation")
			continue
		}
		if roles[dir] != folderOwned {
			c.stray(dir, "not the attic folder of a namespace incarnation")
			continue
		}
		files, err := fs.ReadDir(c.root.FS(), dir)
		if err != nil {
			c.add(dir, err)
			continue
		}
		for _, f := range files {
			if f.IsDir() {
				c.unexpected(path.Join(dir, f.Name()), "folder inside an attic folder")
				continue
			}
			c.checkFile(dir, folderOwned, f)
		}
	}
}

// stray judges a folder no incarnation uses. An empty one is what a cleanup or move left whose
// rmdir failed or never became durable (the next handle's first cleanup removes it): a leftover,
// judged while checkpoint.lock is held (a running checkpointer may be filling a new folder).
// Anything else in it is unexpected.
func (c *checker) stray(dir, what string) {
	ents, err := fs.ReadDir(c.root.FS(), dir)
	if err != nil {
		c.add(dir, err)
		return
	}
	if !txtdbFolder(dir) {
		c.unexpected(dir, what)
		return
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !c.ownsFileName(e.Name()) {
			c.unexpected(dir, what)
			return
		}
	}
	if !c.ckptHeld {
		return // a checkpoint may be filling it right now
	}
	if len(ents) == 0 {
		c.leftover(dir, "empty folder a failed or dead cleanup left ("+what+")")
	} else {
		// A checkpoint that died (or lost power) between writing or linking files into a folder
		// and publishing the catalog that names it: the next cleanup's sweep removes them.
		c.leftover(dir, "page files a dead checkpoint left in a folder no catalog names ("+what+")")
	}
}

// ownsFileName reports whether a file name is one a checkpoint writes into a namespace folder: a
// version file of the store's format or a temporary page file.
func (c *checker) ownsFileName(name string) bool {
	if _, f, _, err := pages.ParseVersionFileName(name); err == nil {
		return f == c.format
	}
	return isPageTemp(name)
}

// txtdbFolder reports whether txtdb could have made a folder of that name: a namespace folder,
// or an attic folder named by an incarnation id.
func txtdbFolder(dir string) bool {
	if name, ok := strings.CutPrefix(dir, metaRel(atticDirName)+"/"); ok {
		return uuid.Validate(name) == nil
	}
	_, err := pages.Namespace(dir)
	return err == nil
}

// checkFile judges one file in a folder of the given role; version files are decoded.
func (c *checker) checkFile(dir string, role folderRole, e fs.DirEntry) {
	rel := path.Join(dir, e.Name())
	if !e.Type().IsRegular() {
		c.unexpected(rel, "not a regular file")
		return
	}
	if isPageTemp(e.Name()) {
		if c.ckptHeld {
			c.leftover(rel, "temporary page file of a checkpoint")
		}
		return
	}
	id, f, tsn, err := pages.ParseVersionFileName(e.Name())
	switch {
	case err != nil:
		c.unexpected(rel, "not a page version file")
		return
	case f != c.format:
		c.unexpected(rel, fmt.Sprintf("version file of format %s in a %s store", f, c.format))
		return
	case role == folderAncestor || (role == folderFuture && c.haveCat && tsn <= c.cat.TSN):
		c.unexpected(rel, "version file in a folder no namespace incarnation owns")
		return
	}
	if role == folderOwned {
		n, _ := pages.ParsePageID(id) // INVARIANT: ParseVersionFileName checked it
		byPage := c.versions[dir]
		if byPage == nil {
			byPage = map[uint64][]pages.TSN{}
			c.versions[dir] = byPage
		}
		byPage[n] = append(byPage[n], tsn)
	}
	data, err := c.root.ReadFile(rel)
	if err != nil {
		c.add(rel, err)
		return
	}
	if _, err := pages.DecodePage(c.format, data); err != nil {
		if c.supersededIn(dir, id, tsn) {
			// Listed for cleanup: a checkpoint reuses such a file for a new version (rename,
			// then rewrite), and a power cut before its syncfs may keep the rewrite but not the
			// rename. Never read again; cleanup removes it.
			if c.ckptHeld {
				c.leftover(rel, "superseded version file a checkpoint was reusing when it died")
			}
			return
		}
		if !c.haveCat || tsn > c.cat.TSN {
			// Not published yet: readers never read it, and the next checkpoint rewrites it.
			// With checkpoint.lock held no checkpointer is writing it, so a dead one left it
			// torn (killed before its syncfs, then a power cut).
			if c.ckptHeld {
				c.leftover(rel, "unfinished version file of a dead checkpointer (newer than the checkpoint)")
			}
			return
		}
		var ce *pages.CorruptError
		if errors.As(err, &ce) {
			c.corrupt(rel, "at offset %d: %v", ce.Offset, ce.Err)
		} else {
			c.corrupt(rel, "%v", err)
		}
	}
}

// isPageTemp reports whether name is a temporary file of a page write:
// "." + version file name + "." + random + ".tmp" (see pages.Dir).
func isPageTemp(name string) bool {
	inner, ok := strings.CutPrefix(name, ".")
	if !ok {
		return false
	}
	if inner, ok = strings.CutSuffix(inner, ".tmp"); !ok {
		return false
	}
	i := strings.LastIndexByte(inner, '.')
	if i < 0 {
		return false
	}
	_, _, _, err := pages.ParseVersionFileName(inner[:i])
	return err == nil
}

// checkImplied checks, for every live incarnation, the page versions the checkpoint needs,
// as far as the log still shows which they are: the newest change of each page at or below
// the checkpoint TSN must have its version file, and a page deleted there must have no version
// left that is not marked superseded (it would come back).
func (c *checker) checkImplied() {
	if !c.haveCat || c.broken {
		return // without the whole log up to the checkpoint the newest change of a page is unknown
	}
	pending := map[pendingKey]bool{}
	for _, p := range c.cat.Pending {
		pending[pendingKey{p.Inc, p.Page, p.TSN}] = true
	}
	byInc := map[string][]pageKey{}
	for k := range c.changes {
		byInc[k.inc] = append(byInc[k.inc], k)
	}
	for _, ci := range c.cat.Incs {
		if ci.NS == "" {
			continue
		}
		c.checkLeaked(ci, pending)
		keys := byInc[ci.Inc]
		slices.SortFunc(keys, func(a, b pageKey) int { return cmp.Compare(a.page, b.page) })
		for _, k := range keys {
			m := c.changes[k]
			id := pages.PageID(k.page)
			have := slices.Concat(c.versions[ci.Dir][k.page], c.versions[ci.To][k.page])
			if ci.To == ci.Dir {
				have = c.versions[ci.Dir][k.page]
			}
			dir := ci.Dir
			if dir == "" {
				dir, _ = pages.NamespacePath(ci.NS)
			}
			if !m.deleted {
				if !slices.Contains(have, m.tsn) {
					c.corrupt(path.Join(dir, pages.VersionFileName(id, c.format, m.tsn)),
						"missing: the checkpoint at tsn %d needs this version of %s %s", c.cat.TSN, ci.NS, id)
				}
				continue
			}
			for _, t := range have {
				if t <= c.cat.TSN && !pending[pendingKey{ci.Inc, id, t}] {
					c.corrupt(path.Join(dir, pages.VersionFileName(id, c.format, t)),
						"page %s %s was deleted at tsn %d, but this version is not marked superseded", ci.NS, id, m.tsn)
				}
			}
		}
	}
}

// checkLeaked reports version files that no cleanup will ever remove: at or below the checkpoint
// TSN, a page has one current file; any older one must be listed as superseded (pending).
func (c *checker) checkLeaked(ci catalogInc, pending map[pendingKey]bool) {
	for _, dir := range []string{ci.Dir, ci.To} {
		if dir == "" || (dir == ci.To && ci.To == ci.Dir) {
			continue
		}
		byPage := c.versions[dir]
		pageNos := slices.Sorted(maps.Keys(byPage))
		for _, n := range pageNos {
			id := pages.PageID(n)
			var live []pages.TSN
			for _, t := range byPage[n] {
				if t <= c.cat.TSN && !pending[pendingKey{ci.Inc, id, t}] {
					live = append(live, t)
				}
			}
			slices.Sort(live)
			for _, t := range live[:max(len(live)-1, 0)] {
				c.leftover(path.Join(dir, pages.VersionFileName(id, c.format, t)),
					fmt.Sprintf("a newer version of %s %s exists and this one is not listed for cleanup", ci.NS, id))
			}
		}
	}
}

// supersededIn reports whether the catalog lists version tsn of page id in folder dir as
// superseded (pending cleanup) for the incarnation that owns dir.
func (c *checker) supersededIn(dir, id string, tsn pages.TSN) bool {
	if !c.haveCat {
		return false
	}
	for _, ci := range c.cat.Incs {
		if ci.Dir != dir && ci.To != dir {
			continue
		}
		for _, p := range c.cat.Pending {
			if p.Inc == ci.Inc && p.Page == id && p.TSN == tsn {
				return true
			}
		}
	}
	return false
}
