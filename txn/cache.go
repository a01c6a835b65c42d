package txn

import (
	"sync"
	"sync/atomic"

	"github.com/txtdb/txtdb/pages"
)

// DefaultCacheSize is the default bound on the page contents a handle keeps in memory.
const DefaultCacheSize = 64 << 20

// objOverhead is what a cached object costs beyond its text (slice entry, string header).
const objOverhead = 48

// pageCache bounds the bytes of page contents held in memory by the versions of a handle's
// indexes: a least-recently-used list of loaded versions, linked through the versions themselves
// (lruLink), so a version put on it costs no allocation. Evicted contents are loaded again from
// the page file or the log record that holds them. Lock order: an index's mu before the cache's
// mu; an eviction takes the victim's index mu only after releasing the cache's.
type pageCache struct {
	mu      sync.Mutex
	limit   int64
	bytes   int64    // guarded by mu
	root    version  // guarded by mu: the list's sentinel (root.lru.next is the most recent)
	n       int      // guarded by mu: versions on the list
	victims []victim // guarded by mu: taken off the list, contents not yet dropped
	hits    atomic.Int64
	misses  atomic.Int64
}

// lruLink is a version's place on its cache's list. Guarded by the cache's mu.
type lruLink struct {
	prev, next *version
	x          *index // the version's index, while on the list
	size       int64  // the bytes it is charged, while on the list
	on         bool
}

// victim is a version add took off the list, with its index.
type victim struct {
	x *index
	v *version
}

func objsSize(objs []pages.Object) int64 {
	var n int64
	for _, o := range objs {
		n += int64(len(o.Text())) + objOverhead
	}
	return n
}

// lazyInit makes the empty list. REQUIRES: mu held.
func (c *pageCache) lazyInit() {
	if c.root.lru.next == nil {
		c.root.lru.next, c.root.lru.prev = &c.root, &c.root
	}
}

// pushFront puts v first. REQUIRES: mu held; v not on the list.
func (c *pageCache) pushFront(v *version) {
	c.lazyInit()
	r := &c.root
	v.lru.prev, v.lru.next = r, r.lru.next
	r.lru.next.lru.prev = v
	r.lru.next = v
	v.lru.on = true
	c.n++
}

// unlink takes v off the list. REQUIRES: mu held; v on the list.
func (c *pageCache) unlink(v *version) {
	v.lru.prev.lru.next = v.lru.next
	v.lru.next.lru.prev = v.lru.prev
	v.lru.prev, v.lru.next, v.lru.x, v.lru.on = nil, nil, nil, false
	c.bytes -= v.lru.size
	v.lru.size = 0
	c.n--
}

// moveToFront makes v, on the list, the most recent. REQUIRES: mu held.
func (c *pageCache) moveToFront(v *version) {
	if c.root.lru.next == v {
		return
	}
	v.lru.prev.lru.next = v.lru.next
	v.lru.next.lru.prev = v.lru.prev
	r := &c.root
	v.lru.prev, v.lru.next = r, r.lru.next
	r.lru.next.lru.prev = v
	r.lru.next = v
}

// back returns the least recent version, nil if the list is empty. REQUIRES: mu held.
func (c *pageCache) back() *version {
	if c.n == 0 {
		return nil
	}
	return c.root.lru.prev
}

// add puts a version that just got its contents on the list. REQUIRES: x.mu held (write).
func (c *pageCache) add(x *index, v *version) {
	size := objsSize(v.objs)
	c.mu.Lock()
	defer c.mu.Unlock()
	if v.lru.on {
		c.moveToFront(v)
		return
	}
	c.pushFront(v)
	v.lru.x, v.lru.size = x, size
	c.bytes += size
	for c.bytes > c.limit && c.n > 1 {
		b := c.back()
		c.victims = append(c.victims, victim{x: b.lru.x, v: b})
		c.unlink(b)
	}
}

// touch marks a loaded version as just used. REQUIRES: x.mu held (read).
func (c *pageCache) touch(v *version) {
	c.mu.Lock()
	if v.lru.on {
		c.moveToFront(v)
	}
	c.mu.Unlock()
}

// drain drops the contents of the versions add took off the list. REQUIRES: no index mu held.
func (c *pageCache) drain() {
	c.mu.Lock()
	vs := c.victims
	c.victims = nil
	c.mu.Unlock()
	for _, ce := range vs {
		ce.x.mu.Lock()
		c.mu.Lock()
		if !ce.v.lru.on { // not added again meanwhile
			if ce.v.reloadable() {
				ce.v.loaded, ce.v.objs, ce.v.delta = false, nil, nil
			}
		}
		c.mu.Unlock()
		ce.x.mu.Unlock()
	}
}

// drop takes versions that left their page's history off the list and drops their contents
// (a live append version may still name one as its base: it loads it again if it must). Versions
// that are not reloadable keep their contents, uncharged, for as long as something refers to
// them. REQUIRES: the index mu of the versions held (write).
func (c *pageCache) drop(vs []*version) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range vs {
		if !v.lru.on {
			continue
		}
		c.unlink(v)
		if v.reloadable() {
			v.loaded, v.objs, v.delta = false, nil, nil
		}
	}
}

// used returns the bytes held.
func (c *pageCache) used() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// forget takes every version of index x off the list: x was replaced (a rebuild), and its
// versions stay in memory only as long as the transactions that still read it.
func (c *pageCache) forget(x *index) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		return
	}
	for v := c.root.lru.next; v != &c.root; {
		next := v.lru.next
		if v.lru.x == x {
			c.unlink(v)
		}
		v = next
	}
}

// each calls fn for every version on the list, most recent first, with its index and charge
// (tests). REQUIRES: mu held.
func (c *pageCache) each(fn func(x *index, v *version, size int64)) {
	if c.n == 0 {
		return
	}
	for v := c.root.lru.next; v != &c.root; v = v.lru.next {
		fn(v.lru.x, v, v.lru.size)
	}
}
