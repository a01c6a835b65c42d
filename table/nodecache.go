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
// builds the new version from the old one's), so only the appended entries are decoded: they
// are kept as a short tail beside the sorted node, and folded into it once the tail grows.
type nodeCache struct {
	mu    sync.Mutex
	m     map[cacheKey]*cached
	bytes int // the text bytes of the cached pages
}

type cacheKey struct {
	ns, id string
}

// cached is one decoded page version: objs, of which n covers the first len(objs)-len(tail)
// and tail decodes the rest, in page order (deletions included). Never changed once cached.
type cached struct {
	objs []pages.Object
	n    *node
	tail []tailEnt
	size int // text bytes of objs
}

type tailEnt struct {
	e   ent
	del bool
}

// nodeCacheBytes bounds the cache by the text of the pages it holds decoded (the decoded form
// takes a few times more); nodeCacheMax bounds the number of entries; maxTail bounds a tail.
const (
	nodeCacheBytes = 16 << 20
	nodeCacheMax   = 8192
	maxTail        = 32
)

var nodes = &nodeCache{m: map[cacheKey]*cached{}}

func sameText(a, b pages.Object) bool {
	x, y := a.Text(), b.Text()
	return len(x) == len(y) && unsafe.StringData(x) == unsafe.StringData(y) && a.Format() == b.Format()
}

// get returns the cached version whose objects are a prefix of objs (nil if none).
func (c *nodeCache) get(ns, id string, objs []pages.Object) *cached {
	c.mu.Lock()
	e := c.m[cacheKey{ns, id}]
	c.mu.Unlock()
	if e == nil || len(e.objs) > len(objs) {
		return nil
	}
	// Newest first: a mismatch is most likely at the end.
	for i := len(e.objs) - 1; i >= 0; i-- {
		if !sameText(e.objs[i], objs[i]) {
			return nil
		}
	}
	return e
}

// leafHeader reports whether the cached version of the page has this very header object and
// is a leaf (a header is rewritten only with its page, so the page is still a leaf).
func (c *nodeCache) leafHeader(ns, id string, h pages.Object) bool {
	c.mu.Lock()
	e := c.m[cacheKey{ns, id}]
	c.mu.Unlock()
	return e != nil && len(e.objs) > 0 && sameText(e.objs[0], h) && e.n.hdr.Node == "leaf"
}

// put caches e. objs must not change afterwards (the table never changes a slice it read).
func (c *nodeCache) put(ns, id string, e *cached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := cacheKey{ns, id}
	if old := c.m[k]; old != nil {
		c.bytes -= old.size
	}
	if len(c.m) >= nodeCacheMax || c.bytes+e.size > nodeCacheBytes {
		for k, old := range c.m { // drop an arbitrary half
			delete(c.m, k)
			c.bytes -= old.size
			if len(c.m) < nodeCacheMax/2 && c.bytes < nodeCacheBytes/2 {
				break
			}
		}
	}
	c.m[k] = e
	c.bytes += e.size
}

// fold applies tail entries to a copy of n.
func fold(n *node, tail []tailEnt) *node {
	out := *n
	out.ents = slices.Clone(n.ents)
	for _, te := range tail {
		e := te.e
		j := sort.Search(len(out.ents), func(j int) bool { return out.ents[j].enc >= e.enc })
		found := j < len(out.ents) && out.ents[j].enc == e.enc
		switch {
		case te.del && found:
			out.ents = slices.Delete(out.ents, j, j+1)
		case te.del:
		case found:
			out.ents[j] = e
		default:
			out.ents = slices.Insert(out.ents, j, e)
		}
		out.last = e.enc
	}
	return &out
}

// version returns the cache entry for objs, decoding what no cached version covers.
func (t *tree) version(id string, objs []pages.Object) (*cached, error) {
	c := nodes.get(t.ns, id, objs)
	if c != nil && len(c.objs) == len(objs) {
		return c, nil
	}
	if c == nil || c.n.hdr.Node != "leaf" {
		n, err := t.decodeAll(id, objs)
		if err != nil {
			return nil, err
		}
		c = &cached{objs: objs, n: n, size: n.size}
		nodes.put(t.ns, id, c)
		return c, nil
	}
	tail := make([]tailEnt, len(c.tail), len(c.tail)+len(objs)-len(c.objs))
	copy(tail, c.tail)
	size := c.size
	for i, o := range objs[len(c.objs):] {
		e, del, err := t.decodeEnt(id, len(c.objs)+i, o)
		if err != nil {
			return nil, err
		}
		tail = append(tail, tailEnt{e, del})
		size += objSize(o)
	}
	nc := &cached{objs: objs, n: c.n, tail: tail, size: size}
	if len(tail) > maxTail {
		n := fold(c.n, tail)
		n.size = size
		nc = &cached{objs: objs, n: n, size: size}
	}
	nodes.put(t.ns, id, nc)
	return nc, nil
}

// find returns the live entry with this encoded key in the version.
func (c *cached) find(enc string) *ent {
	for i := len(c.tail) - 1; i >= 0; i-- {
		if c.tail[i].e.enc == enc {
			if c.tail[i].del {
				return nil
			}
			return &c.tail[i].e
		}
	}
	e, _ := c.n.find(enc)
	return e
}

// node returns the version as one sorted node.
func (c *cached) node() *node {
	if len(c.tail) == 0 {
		return c.n
	}
	n := fold(c.n, c.tail)
	n.size = c.size
	return n
}
