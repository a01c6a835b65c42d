package txn

import (
	"container/list"
	"sync"
	"sync/atomic"

	"github.com/txtdb/txtdb/pages"
)

// DefaultCacheSize is the default bound on the page contents a handle keeps in memory.
const DefaultCacheSize = 64 << 20

// objOverhead is what a cached object costs beyond its text (slice entry, string header).
const objOverhead = 48

// pageCache bounds the bytes of page contents held in memory by the versions of a handle's
// indexes: a least-recently-used list of loaded versions. Evicted contents are loaded again from
// the page file or the log record that holds them. Lock order: an index's mu before the cache's
// mu; an eviction takes the victim's index mu only after releasing the cache's.
type pageCache struct {
	mu      sync.Mutex
	limit   int64
	bytes   int64     // guarded by mu
	lru     list.List // guarded by mu: *cached, most recent first
	victims []*cached // guarded by mu: taken off the list, contents not yet dropped
	hits    atomic.Int64
	misses  atomic.Int64
}

// cached is a loaded version on the LRU list.
type cached struct {
	x    *index
	v    *version
	size int64
}

func objsSize(objs []pages.Object) int64 {
	var n int64
	for _, o := range objs {
		n += int64(len(o.Text())) + objOverhead
	}
	return n
}

// add puts a version that just got its contents on the list. REQUIRES: x.mu held (write).
func (c *pageCache) add(x *index, v *version) {
	size := objsSize(v.objs)
	c.mu.Lock()
	defer c.mu.Unlock()
	if v.elem != nil {
		c.lru.MoveToFront(v.elem)
		return
	}
	v.elem = c.lru.PushFront(&cached{x: x, v: v, size: size})
	c.bytes += size
	for c.bytes > c.limit && c.lru.Len() > 1 {
		e := c.lru.Back()
		ce := e.Value.(*cached)
		c.lru.Remove(e)
		ce.v.elem = nil
		c.bytes -= ce.size
		c.victims = append(c.victims, ce)
	}
}

// touch marks a loaded version as just used. REQUIRES: x.mu held (read).
func (c *pageCache) touch(v *version) {
	c.mu.Lock()
	if v.elem != nil {
		c.lru.MoveToFront(v.elem)
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
		if ce.v.elem == nil { // not added again meanwhile
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
		if v.elem == nil {
			continue
		}
		ce := c.lru.Remove(v.elem).(*cached)
		v.elem = nil
		c.bytes -= ce.size
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
	for e := c.lru.Front(); e != nil; {
		next := e.Next()
		if ce := e.Value.(*cached); ce.x == x {
			c.lru.Remove(e)
			ce.v.elem = nil
			c.bytes -= ce.size
		}
		e = next
	}
}
