package elle

import (
	"slices"
)

// depMask is a set of Deps, bit d-1 for Dep d.
type depMask uint8

func bit(d Dep) depMask { return 1 << (d - 1) }

const (
	maskWW   = depMask(1) << (WW - 1)
	maskWR   = depMask(1) << (WR - 1)
	maskRW   = depMask(1) << (RW - 1)
	maskRT   = depMask(1) << (RT - 1)
	maskNone = depMask(0)
)

// edge is a dependency edge before the graph is built. key is an index into
// graph.keys, -1 for RT.
type edge struct {
	from, to int32
	dep      Dep
	key      int32
}

// graph is the dependency graph in compressed sparse row form. Nodes below
// real are transactions (their positions in the history); the others are
// real-time nodes, one per committed transaction in End order, which stand
// for "after this commit" so that real-time order costs O(n) edges.
//
// INVARIANT: the out-edges of v are to[off[v]:off[v+1]], sorted by target,
// one per target; mask holds the union of their Deps and key the key that
// gave rise to each Dep (per Dep, the first seen).
type graph struct {
	n, real int
	off     []int32
	to      []int32
	mask    []depMask
	key     [][RT]int32
	keys    []string

	// Scratch state for scc and path, sized n. INVARIANT: between calls,
	// index is -1 everywhere, onStack false and seen below gen.
	index, low []int32
	onStack    []bool
	prev       []int32
	seen       []uint32
	gen        uint32
}

// newGraph builds a graph over n nodes from edges, dropping self-loops.
func newGraph(n, real int, edges []edge, keys []string) *graph {
	edges = slices.DeleteFunc(edges, func(e edge) bool { return e.from == e.to })
	slices.SortFunc(edges, func(a, b edge) int {
		if a.from != b.from {
			return int(a.from - b.from)
		}
		return int(a.to - b.to)
	})
	g := &graph{n: n, real: real, off: make([]int32, n+1), keys: keys}
	for i := 0; i < len(edges); {
		e := edges[i]
		var ks [RT]int32
		for d := range ks {
			ks[d] = -1
		}
		var m depMask
		for ; i < len(edges) && edges[i].from == e.from && edges[i].to == e.to; i++ {
			d := edges[i].dep
			if m&bit(d) == 0 {
				ks[d-1] = edges[i].key
			}
			m |= bit(d)
		}
		g.to = append(g.to, e.to)
		g.mask = append(g.mask, m)
		g.key = append(g.key, ks)
		g.off[e.from+1]++
	}
	for v := 0; v < n; v++ {
		g.off[v+1] += g.off[v]
	}
	g.index = make([]int32, n)
	g.low = make([]int32, n)
	g.onStack = make([]bool, n)
	g.prev = make([]int32, n)
	g.seen = make([]uint32, n)
	for i := range g.index {
		g.index[i] = -1
	}
	g.gen = 1
	return g
}

// edgeMask returns the Deps of the edge u -> v, or maskNone.
func (g *graph) edgeMask(u, v int32) (depMask, int) {
	lo, hi := int(g.off[u]), int(g.off[u+1])
	i, ok := slices.BinarySearch(g.to[lo:hi], v)
	if !ok {
		return maskNone, -1
	}
	return g.mask[lo+i], lo + i
}

// scc returns the strongly connected components, of two nodes or more, of
// the subgraph induced by nodes with edges whose Deps meet allowed. member
// and id restrict the walk: an edge u -> v is followed only if member[v] ==
// id (member nil means every node). It is Tarjan's algorithm, iterative.
func (g *graph) scc(nodes []int32, member []int32, id int32, allowed depMask) [][]int32 {
	var (
		out     [][]int32
		stack   []int32
		counter int32
		touched []int32
	)
	type frame struct {
		v   int32
		pos int32
	}
	var call []frame
	in := func(v int32) bool { return member == nil || member[v] == id }
	for _, root := range nodes {
		if g.index[root] >= 0 {
			continue
		}
		call = append(call, frame{root, g.off[root]})
		g.index[root], g.low[root] = counter, counter
		counter++
		touched = append(touched, root)
		stack = append(stack, root)
		g.onStack[root] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			v := f.v
			descended := false
			for f.pos < g.off[v+1] {
				i := f.pos
				f.pos++
				w := g.to[i]
				if g.mask[i]&allowed == 0 || !in(w) {
					continue
				}
				if g.index[w] < 0 {
					g.index[w], g.low[w] = counter, counter
					counter++
					touched = append(touched, w)
					stack = append(stack, w)
					g.onStack[w] = true
					call = append(call, frame{w, g.off[w]})
					descended = true
					break
				}
				if g.onStack[w] && g.index[w] < g.low[v] {
					g.low[v] = g.index[w]
				}
			}
			if descended {
				continue
			}
			call = call[:len(call)-1]
			if len(call) > 0 {
				p := call[len(call)-1].v
				if g.low[v] < g.low[p] {
					g.low[p] = g.low[v]
				}
			}
			if g.low[v] == g.index[v] {
				var comp []int32
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					g.onStack[w] = false
					comp = append(comp, w)
					if w == v {
						break
					}
				}
				if len(comp) > 1 {
					slices.Sort(comp)
					out = append(out, comp)
				}
			}
		}
	}
	for _, v := range touched {
		g.index[v] = -1
	}
	return out
}

// path returns a shortest path src, ..., dst over edges whose Deps meet
// allowed and whose targets have member[v] == id, or nil if there is none.
// Each edge examined costs one unit of *budget; at zero the search gives up
// and returns nil.
func (g *graph) path(src, dst int32, member []int32, id int32, allowed depMask, budget *int) []int32 {
	g.gen++
	if g.gen == 0 { // wrapped: clear and start again
		clear(g.seen)
		g.gen = 1
	}
	gen := g.gen
	g.seen[src] = gen
	queue := []int32{src}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for i := g.off[v]; i < g.off[v+1]; i++ {
			if *budget <= 0 {
				return nil
			}
			*budget--
			w := g.to[i]
			if g.mask[i]&allowed == 0 || member[w] != id || g.seen[w] == gen {
				continue
			}
			g.seen[w] = gen
			g.prev[w] = v
			if w == dst {
				var p []int32
				for x := dst; x != src; x = g.prev[x] {
					p = append(p, x)
				}
				p = append(p, src)
				slices.Reverse(p)
				return p
			}
			queue = append(queue, w)
		}
	}
	return nil
}
