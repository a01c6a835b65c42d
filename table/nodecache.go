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
	mu sync.Mutex
	m  map[cacheKey]*cached
}

type cacheKey struct {
	ns, id string
}

type cached struct {
	objs []pages.Object
	n    *node
}

const nodeCacheMax = 8192

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
	if len(c.m) >= nodeCacheMax {
		for k := range c.m { // drop an arbitrary half
			delete(c.m, k)
			if len(c.m) < nodeCacheMax/2 {
				break
			}
		}
	}
	c.m[cacheKey{ns, id}] = &cached{objs: slices.Clone(objs), n: n}
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
