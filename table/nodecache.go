package table

import (
	"slices"
	"sort"
	"sync"
	"unsafe"

	"github.com/txtdb/txtdb/pages"
)

// nodeCache keeps decoded nodes, so a transaction does not decode the same page again. An entry
// is found by the exact objects of a page version: an Object's text is an immutable string, and
// the cache holds the objects it was built from, so while an entry lives no other text can have
// the same address and length. A page grown by appends shares its older objects (the store
// builds the new version from the old one's), so only the appended entries are decoded.
type nodeCache struct {
	mu    sync.Mutex
	m     map[cacheKey]*cached
	bytes int // the text bytes of the cached nodes' pages
}

type cacheKey struct {
	ns, id string
}

type cached struct {
	objs []pages.Object
	n    *node
}

// nodeCacheBytes bounds the cache by the text of the pages it holds decoded (the decoded form
// takes a few times more); nodeCacheMax bounds the number of entries.
const (
	nodeCacheBytes = 16 << 20
	nodeCacheMax   = 8192
)

var nodes = &nodeCache{m: map[cacheKey]*cached{}}

func sameText(a, b pages.Object) bool {
	x, y := a.Text(), b.Text()
	return len(x) == len(y) && unsafe.StringData(x) == unsafe.StringData(y) && a.Format() == b.Format()
}

// get returns the cached node for objs, and how many leading objects it covers (0: none).
func (c *nodeCache) get(ns, id string, objs []pages.Object) (*node, int) {
	c.mu.Lock()
	e := c.m[cacheKey{ns, id}]
	c.mu.Unlock()
	if e == nil || len(e.objs) > len(objs) {
		return nil, 0
	}
	for i, o := range e.objs {
		if !sameText(o, objs[i]) {
			return nil, 0
		}
	}
	return e.n, len(e.objs)
}

func (c *nodeCache) put(ns, id string, objs []pages.Object, n *node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := cacheKey{ns, id}
	if old := c.m[k]; old != nil {
		c.bytes -= old.n.size
	}
	if len(c.m) >= nodeCacheMax || c.bytes+n.size > nodeCacheBytes {
		for k, e := range c.m { // drop an arbitrary half
			delete(c.m, k)
			c.bytes -= e.n.size
			if len(c.m) < nodeCacheMax/2 && c.bytes < nodeCacheBytes/2 {
				break
			}
		}
	}
	c.m[k] = &cached{objs: slices.Clone(objs), n: n}
	c.bytes += n.size
}

// fold applies leaf entries appended after the cached ones to a copy of n.
func fold(n *node, more []ent, dels []bool, size int) *node {
	out := *n
	out.ents = slices.Clone(n.ents)
	for i, e := range more {
		j := sort.Search(len(out.ents), func(j int) bool { return out.ents[j].enc >= e.enc })
		found := j < len(out.ents) && out.ents[j].enc == e.enc
		switch {
		case dels[i] && found:
			out.ents = slices.Delete(out.ents, j, j+1)
		case dels[i]:
		case found:
			out.ents[j] = e
		default:
			out.ents = slices.Insert(out.ents, j, e)
		}
		out.last = e.enc
	}
	out.size += size
	return &out
}
