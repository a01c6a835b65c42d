package elle

import (
	"fmt"
	"strings"
)

// searchBudget bounds the edges the G-single search may examine across all
// components (each failed attempt is a breadth-first search of a
// component). Past it, the search reports the component's cycle as it finds
// it and sets Result.Truncated.
const searchBudget = 1 << 25

// cycle is a witness cycle: nodes[i] -> nodes[i+1], and the last node to the
// first, over edges whose Deps meet allowed.
type cycle struct {
	nodes   []int32
	allowed depMask
}

// cycleSearch finds witness cycles in a graph, one per class per strongly
// connected component.
type cycleSearch struct {
	g         *graph
	sub       []int32 // component ids, per node; see find
	nextID    int32
	budget    int
	truncated bool
}

func newCycleSearch(g *graph) *cycleSearch {
	s := &cycleSearch{g: g, sub: make([]int32, g.n), budget: searchBudget}
	for i := range s.sub {
		s.sub[i] = -1
	}
	return s
}

// mark gives every node of comp a fresh component id in s.sub and returns
// it. Ids are never reused, so stale ids from other components never match.
func (s *cycleSearch) mark(comp []int32) int32 {
	id := s.nextID
	s.nextID++
	for _, v := range comp {
		s.sub[v] = id
	}
	return id
}

// find returns witness cycles: for each strongly connected component of the
// graph over ww, wr, rw and extra edges, a ww-only cycle per ww component, a
// cycle through a wr edge per ww+wr component, and a cycle with exactly one
// rw edge, or failing that one with more.
func (s *cycleSearch) find(extra depMask) []cycle {
	g := s.g
	all := maskWW | maskWR | maskRW | extra
	nodes := make([]int32, g.n)
	for i := range nodes {
		nodes[i] = int32(i)
	}
	var out []cycle
	for _, comp := range g.scc(nodes, nil, 0, all) {
		// cycleIn marks the sub-component it searches, so comp is marked
		// again before each use of its id.
		cid := s.mark(comp)
		ww := maskWW | extra
		for _, sub := range g.scc(comp, s.sub, cid, ww) {
			if c := s.cycleIn(sub, ww, maskNone); c != nil {
				out = append(out, *c)
			}
		}
		cid = s.mark(comp)
		wwr := maskWW | maskWR | extra
		subs := g.scc(comp, s.sub, cid, wwr)
		compOf := make(map[int32]int32, len(comp)) // node -> its ww+wr sub-component
		for i, sub := range subs {
			for _, v := range sub {
				compOf[v] = int32(i)
			}
		}
		for _, sub := range subs {
			if c := s.cycleIn(sub, wwr, maskWR); c != nil {
				out = append(out, *c)
			}
		}
		cid = s.mark(comp)
		if c := s.singleIn(comp, cid, compOf, wwr); c != nil {
			out = append(out, *c)
			continue
		}
		if c := s.anyRW(comp, cid, all); c != nil {
			out = append(out, *c)
		}
	}
	return out
}

// cycleIn returns a shortest cycle through one edge of sub (a strongly
// connected set under allowed) whose Deps meet seed but not the weaker ww
// (any edge when seed is maskNone), or nil if sub has no such edge.
func (s *cycleSearch) cycleIn(sub []int32, allowed, seed depMask) *cycle {
	g := s.g
	id := s.mark(sub)
	for _, a := range sub {
		for i := g.off[a]; i < g.off[a+1]; i++ {
			b, m := g.to[i], g.mask[i]
			if s.sub[b] != id || m&allowed == 0 {
				continue
			}
			if seed != maskNone && (m&seed == 0 || m&maskWW != 0) {
				continue
			}
			budget := len(g.to) + 1 // a path exists: sub is strongly connected
			if p := g.path(b, a, s.sub, id, allowed, &budget); p != nil {
				return &cycle{nodes: p, allowed: allowed}
			}
		}
	}
	return nil
}

// singleIn returns a cycle of comp (component id cid) with exactly one rw
// edge and the rest over wwr, or nil. It first tries rw edges inside one
// ww+wr component (compOf), where a path back is certain, then every rw edge
// with a breadth-first search, within the budget.
func (s *cycleSearch) singleIn(comp []int32, cid int32, compOf map[int32]int32, wwr depMask) *cycle {
	g := s.g
	var rws [][2]int32
	for _, a := range comp {
		for i := g.off[a]; i < g.off[a+1]; i++ {
			b, m := g.to[i], g.mask[i]
			if s.sub[b] != cid || m&maskRW == 0 || m&wwr != 0 {
				continue
			}
			rws = append(rws, [2]int32{a, b})
		}
	}
	for _, e := range rws {
		ca, okA := compOf[e[0]]
		cb, okB := compOf[e[1]]
		if okA && okB && ca == cb {
			budget := len(g.to) + g.n
			if p := g.path(e[1], e[0], s.sub, cid, wwr, &budget); p != nil {
				return &cycle{nodes: p, allowed: wwr | maskRW}
			}
		}
	}
	for _, e := range rws {
		if s.budget <= 0 {
			s.truncated = true
			return nil
		}
		if p := g.path(e[1], e[0], s.sub, cid, wwr, &s.budget); p != nil {
			return &cycle{nodes: p, allowed: wwr | maskRW}
		}
	}
	if s.budget <= 0 && len(rws) > 0 {
		s.truncated = true
	}
	return nil
}

// anyRW returns a shortest cycle of comp through its first rw edge, over all
// allowed edges, or nil if comp has no rw edge.
func (s *cycleSearch) anyRW(comp []int32, cid int32, all depMask) *cycle {
	g := s.g
	weaker := all &^ maskRW
	for _, a := range comp {
		for i := g.off[a]; i < g.off[a+1]; i++ {
			b, m := g.to[i], g.mask[i]
			if s.sub[b] != cid || m&maskRW == 0 || m&weaker != 0 {
				continue
			}
			budget := len(g.to) + g.n
			if p := g.path(b, a, s.sub, cid, all, &budget); p != nil {
				return &cycle{nodes: p, allowed: all}
			}
		}
	}
	return nil
}

// step is one edge of a classified cycle, between transactions (positions
// in the history).
type step struct {
	from, to int32
	dep      Dep
	key      string
}

// classify picks for each edge of c its weakest Dep (ww, then wr, rw, rt),
// folds runs through real-time nodes into one rt step, and returns the steps
// with the cycle's kind and whether it needs real time.
func (g *graph) classify(c cycle) ([]step, Kind, bool) {
	n := len(c.nodes)
	start := 0
	for start < n && int(c.nodes[start]) >= g.real {
		start++
	}
	if start == n {
		panic("elle: cycle of real-time nodes only")
	}
	var (
		steps       []step
		wr, rw, rts int
		from        = c.nodes[start]
		viaRT       bool
	)
	for k := 1; k <= n; k++ {
		u, v := c.nodes[(start+k-1)%n], c.nodes[(start+k)%n]
		m, pos := g.edgeMask(u, v)
		m &= c.allowed
		var d Dep
		for _, cand := range []Dep{WW, WR, RW, RT} {
			if m&bit(cand) != 0 {
				d = cand
				break
			}
		}
		if d == 0 {
			panic(fmt.Sprintf("elle: cycle edge %d -> %d not in graph", u, v))
		}
		if int(v) >= g.real {
			viaRT = true
			continue
		}
		if viaRT || d == RT {
			steps = append(steps, step{from: from, to: v, dep: RT})
			rts++
		} else {
			key := ""
			if ki := g.key[pos][d-1]; ki >= 0 {
				key = g.keys[ki]
			}
			steps = append(steps, step{from: from, to: v, dep: d, key: key})
			switch d {
			case WR:
				wr++
			case RW:
				rw++
			}
		}
		from, viaRT = v, false
	}
	kind := G2Item
	switch {
	case rw == 0 && wr == 0:
		kind = G0
	case rw == 0:
		kind = G1c
	case rw == 1:
		kind = GSingle
	}
	return steps, kind, rts > 0
}

// describeCycle renders steps as "T1 (p0) -ww x-> T2 (p1) -rw y-> T1".
func describeCycle(h []Txn, steps []step) string {
	var b strings.Builder
	for i, s := range steps {
		if i == 0 {
			b.WriteString(txnName(h[s.from]))
		}
		if s.key != "" {
			fmt.Fprintf(&b, " -%s %s-> ", s.dep, s.key)
		} else {
			fmt.Fprintf(&b, " -%s-> ", s.dep)
		}
		b.WriteString(txnName(h[s.to]))
	}
	return b.String()
}

// txnName names a transaction in explanations: "T12 (p3)".
func txnName(t Txn) string {
	if t.Process == "" {
		return fmt.Sprintf("T%d", t.Index)
	}
	return fmt.Sprintf("T%d (%s)", t.Index, t.Process)
}
