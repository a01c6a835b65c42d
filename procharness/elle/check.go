package elle

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Options says how Check judges a history.
type Options struct {
	// Level is the isolation level the history must satisfy; zero means
	// Serializable. StrictSerializable also derives real-time edges from
	// Txn.Start and Txn.End.
	Level Level
}

// DefaultOptions returns the options Check uses for serializable histories.
func DefaultOptions() Options { return Options{Level: Serializable} }

// Check infers the version order of every key from the reads of history,
// builds the dependency graph, and reports every anomaly it finds (see the
// package documentation). It returns an error wrapping ErrInvalidHistory,
// and no Result, if the history is malformed, and a plain error for an
// invalid Level. Check is a pure function: it does not modify history and
// may be called concurrently.
func Check(history []Txn, opts Options) (*Result, error) {
	level := opts.Level
	if level == 0 {
		level = Serializable
	}
	if level < ReadCommitted || level > StrictSerializable {
		return nil, fmt.Errorf("elle: invalid isolation level %d", uint8(level))
	}
	c := &checker{h: history, keyID: map[string]int32{}}
	if err := c.index(); err != nil {
		return nil, err
	}
	c.observe()
	for _, k := range c.keys {
		c.inferKey(k)
	}
	c.internal()
	real := len(history)
	n := real
	if level == StrictSerializable {
		n += c.realTime()
	}
	g := newGraph(n, real, c.edges, c.keyNames())
	c.edges = nil
	s := newCycleSearch(g)
	for _, cy := range s.find(maskNone) {
		c.addCycle(g, cy, false)
	}
	if level == StrictSerializable {
		rs := newCycleSearch(g)
		for _, cy := range rs.find(maskRT) {
			c.addCycle(g, cy, true)
		}
		s.truncated = s.truncated || rs.truncated
	}
	return c.result(level, s.truncated), nil
}

// writeRef is the transaction that appended a value to a key; final is true
// when it was that transaction's last append to the key.
type writeRef struct {
	txn   int32
	final bool
}

// readRef is a committed read with a known result. lost is true when the
// read is its transaction's first access to the key and the transaction
// appends to the key afterwards (a read-modify-write, for lost updates).
type readRef struct {
	txn, op int32
	lost    bool
	common  int32 // the length of the longest common prefix with the key's order
	prefix  bool  // the read is a prefix of the key's order
}

// keyInfo is what Check knows of one key.
type keyInfo struct {
	name    string
	writes  map[int]writeRef
	reads   []readRef
	order   []int // the longest read: the version order as far as known
	orderBy int32 // the transaction that read order; -1 when no reads
	pos     map[int]int32
}

// checker holds one Check call's state.
type checker struct {
	h         []Txn
	keyID     map[string]int32
	keys      []*keyInfo
	valid     []bool // per txn: a node of the dependency graph
	edges     []edge
	anomalies []Anomaly
}

func (c *checker) key(name string) int32 {
	id, ok := c.keyID[name]
	if !ok {
		id = int32(len(c.keys))
		c.keyID[name] = id
		c.keys = append(c.keys, &keyInfo{name: name, writes: map[int]writeRef{}, orderBy: -1})
	}
	return id
}

func (c *checker) keyNames() []string {
	out := make([]string, len(c.keys))
	for i, k := range c.keys {
		out[i] = k.name
	}
	return out
}

// index validates the history and records who appended each value and the
// committed reads of each key.
func (c *checker) index() error {
	lastAppend := map[int32]int{} // key -> op of the txn's last append
	accessed := map[int32]bool{}  // key -> the txn touched it already
	for t, txn := range c.h {
		if txn.Type < OK || txn.Type > Info {
			return &HistoryError{Txn: t, Op: -1, Reason: fmt.Sprintf("invalid type %d", uint8(txn.Type))}
		}
		if txn.Start != 0 && txn.End != 0 && txn.End < txn.Start {
			return &HistoryError{Txn: t, Op: -1, Reason: fmt.Sprintf("end %d before start %d", txn.End, txn.Start)}
		}
		clear(lastAppend)
		for o, op := range txn.Ops {
			k := c.key(op.Key)
			switch op.F {
			case Append:
				ki := c.keys[k]
				if w, dup := ki.writes[op.Value]; dup {
					return &HistoryError{Txn: t, Op: o, Reason: fmt.Sprintf(
						"value %d appended to key %q twice (also by txn %d)", op.Value, op.Key, w.txn)}
				}
				ki.writes[op.Value] = writeRef{txn: int32(t)}
				lastAppend[k] = o
			case Read:
			default:
				return &HistoryError{Txn: t, Op: o, Reason: fmt.Sprintf("invalid micro-op %d", uint8(op.F))}
			}
		}
		for k, o := range lastAppend {
			ki := c.keys[k]
			w := ki.writes[txn.Ops[o].Value]
			w.final = true
			ki.writes[txn.Ops[o].Value] = w
		}
		if txn.Type != OK {
			continue
		}
		clear(accessed)
		for o, op := range txn.Ops {
			k := c.keyID[op.Key]
			first := !accessed[k]
			accessed[k] = true
			if op.F != Read || op.List == nil {
				continue
			}
			r := readRef{txn: int32(t), op: int32(o)}
			if first {
				if lo, ok := lastAppend[k]; ok && lo > o {
					r.lost = true
				}
			}
			c.keys[k].reads = append(c.keys[k].reads, r)
		}
	}
	return nil
}

// list returns the result of read r.
func (c *checker) list(r readRef) []int { return c.h[r.txn].Ops[r.op].List }

// observe picks each key's order (its longest read), sorts reads into
// prefixes of it and others, and decides which transactions are graph
// nodes: committed ones, and info ones whose appends some read observed.
func (c *checker) observe() {
	c.valid = make([]bool, len(c.h))
	for t, txn := range c.h {
		c.valid[t] = txn.Type == OK
	}
	see := func(ki *keyInfo, l []int) {
		for _, v := range l {
			if w, ok := ki.writes[v]; ok && c.h[w.txn].Type == Info {
				c.valid[w.txn] = true
			}
		}
	}
	for _, ki := range c.keys {
		best := -1
		for i, r := range ki.reads {
			if best < 0 || len(c.list(r)) > len(c.list(ki.reads[best])) {
				best = i
			}
		}
		if best < 0 {
			continue
		}
		ki.order = c.list(ki.reads[best])
		ki.orderBy = ki.reads[best].txn
		ki.pos = make(map[int]int32, len(ki.order))
		for i, v := range ki.order {
			if _, dup := ki.pos[v]; !dup {
				ki.pos[v] = int32(i)
			}
		}
		see(ki, ki.order)
		for i := range ki.reads {
			r := &ki.reads[i]
			l := c.list(*r)
			n := min(len(l), len(ki.order))
			cp := 0
			if slices.Equal(l[:n], ki.order[:n]) {
				cp = n
			} else {
				for cp < n && l[cp] == ki.order[cp] {
					cp++
				}
			}
			r.common = int32(cp)
			r.prefix = cp == len(l)
			if !r.prefix {
				see(ki, l[cp:])
			}
		}
	}
}

// inferKey reports the anomalies single reads of k show and adds the
// dependency edges its order implies.
func (c *checker) inferKey(ki *keyInfo) {
	if ki.orderBy < 0 {
		return // no committed read: nothing to order by
	}
	kid := c.keyID[ki.name]
	order := ki.order
	n := len(order)
	writer := make([]int32, n) // -1: no txn appended it
	ok := make([]bool, n)      // the writer is a graph node
	firstFail := n
	var garbage []int
	for i, v := range order {
		writer[i] = -1
		if w, found := ki.writes[v]; found {
			writer[i] = w.txn
			ok[i] = c.valid[w.txn]
			if c.h[w.txn].Type == Fail && firstFail == n {
				firstFail = i
			}
		} else {
			garbage = append(garbage, v)
		}
	}
	if dups := duplicates(order); len(dups) > 0 {
		c.report(Duplicate, ki.name, []int32{ki.orderBy}, "%s read %s = %s, which holds %s more than once",
			c.name(ki.orderBy), ki.name, fmtList(order), fmtList(dups))
	}
	if len(garbage) > 0 {
		c.report(Garbage, ki.name, []int32{ki.orderBy}, "%s read %s = %s, holding %s, which no txn appended",
			c.name(ki.orderBy), ki.name, fmtList(order), fmtList(garbage))
	}

	// ww: between consecutive committed appends in the order.
	prev := int32(-1)
	for i := range order {
		if !ok[i] {
			continue
		}
		if prev >= 0 && writer[i] != prev {
			c.edge(prev, writer[i], WW, kid)
		}
		prev = writer[i]
	}
	lastOK := make([]int32, n) // last position <= i with a committed writer, or -1
	nextOK := make([]int32, n+1)
	for i := range order {
		lastOK[i] = -1
		if ok[i] {
			lastOK[i] = int32(i)
		} else if i > 0 {
			lastOK[i] = lastOK[i-1]
		}
	}
	nextOK[n] = int32(n)
	for i := n - 1; i >= 0; i-- {
		nextOK[i] = nextOK[i+1]
		if ok[i] {
			nextOK[i] = int32(i)
		}
	}

	var full []int32 // readers of the whole order
	lost := map[int][]int32{}
	for _, r := range ki.reads {
		l := c.list(r)
		if !r.prefix {
			c.oddRead(ki, kid, r, firstFail)
			continue
		}
		L := len(l)
		if L > firstFail {
			w := writer[firstFail]
			c.report(G1a, ki.name, []int32{r.txn, w}, "%s read %s = %s, holding %d, appended by failed %s",
				c.name(r.txn), ki.name, fmtList(l), order[firstFail], c.name(w))
		}
		if L > 0 {
			if j := lastOK[L-1]; j >= 0 && writer[j] != r.txn {
				c.edge(writer[j], r.txn, WR, kid)
			}
			last := order[L-1]
			if w := ki.writes[last]; writer[L-1] >= 0 && w.txn != r.txn && c.h[w.txn].Type != Fail && !w.final {
				c.report(G1b, ki.name, []int32{r.txn, w.txn},
					"%s read %s = %s, ending in %d, an intermediate value: %s appended %d and then %s",
					c.name(r.txn), ki.name, fmtList(l), last, c.name(w.txn), last, fmtList(c.appendsAfter(w.txn, ki.name, last)))
			}
		}
		// The next version is the first committed append after the read by
		// another txn than the one whose append the read ends with (that one
		// is a G1b, reported above, not a cycle).
		j := nextOK[L]
		for L > 0 && int(j) < n && writer[j] == writer[L-1] {
			j = nextOK[j+1]
		}
		if int(j) < n {
			if writer[j] != r.txn {
				c.edge(r.txn, writer[j], RW, kid)
			}
		} else {
			full = append(full, r.txn)
		}
		if r.lost {
			lost[L] = append(lost[L], r.txn)
		}
	}
	lens := make([]int, 0, len(lost))
	for L, ts := range lost {
		if len(ts) > 1 {
			lens = append(lens, L)
		}
	}
	slices.Sort(lens)
	for _, L := range lens {
		ts := lost[L]
		names := make([]string, len(ts))
		for i, t := range ts {
			names[i] = c.name(t)
		}
		c.report(LostUpdate, ki.name, ts, "%s all read %s = %s and then appended to it",
			strings.Join(names, ", "), ki.name, fmtList(order[:L]))
	}
	var last []int32
	if n > 0 && lastOK[n-1] >= 0 {
		last = []int32{writer[lastOK[n-1]]}
	}
	c.unobserved(ki, last, full)
}

// unobserved adds edges to the committed writers of k whose appends no read
// observed: those appends come after the whole known order, so after its
// last writer (ww) and after every read of the whole order (rw).
func (c *checker) unobserved(ki *keyInfo, last, full []int32) {
	if len(last) == 0 && len(full) == 0 {
		return
	}
	var ws []int32
	for v, w := range ki.writes {
		if _, seen := ki.pos[v]; !seen && c.valid[w.txn] {
			ws = append(ws, w.txn)
		}
	}
	slices.Sort(ws)
	ws = slices.Compact(ws)
	kid := c.keyID[ki.name]
	for _, w := range ws {
		for _, t := range last {
			c.edge(t, w, WW, kid)
		}
		for _, t := range full {
			c.edge(t, w, RW, kid)
		}
	}
}

// oddRead handles a read that is not a prefix of k's order: it is reported
// as incompatible, checked on its own for duplicates, garbage and failed
// appends, and gives a wr edge from the writer of its last element. Its
// common prefix with the order was checked with the order; only the rest is
// looked at value by value.
func (c *checker) oddRead(ki *keyInfo, kid int32, r readRef, firstFail int) {
	l := c.list(r)
	cp := int(r.common)
	c.report(IncompatibleOrder, ki.name, []int32{r.txn, ki.orderBy},
		"%s read %s = %s and %s read %s = %s: neither is a prefix of the other",
		c.name(r.txn), ki.name, fmtList(l), c.name(ki.orderBy), ki.name, fmtList(ki.order))
	var dups, garbage []int
	rest := make(map[int]bool, len(l)-cp)
	failed := -1
	if firstFail < cp {
		failed = ki.order[firstFail]
	}
	for _, v := range l[cp:] {
		if p, in := ki.pos[v]; (in && int(p) < cp) || rest[v] {
			dups = append(dups, v)
		}
		rest[v] = true
		w, found := ki.writes[v]
		switch {
		case !found:
			garbage = append(garbage, v)
		case c.h[w.txn].Type == Fail && failed < 0:
			failed = v
		}
	}
	if len(dups) > 0 {
		c.report(Duplicate, ki.name, []int32{r.txn}, "%s read %s = %s, which holds %s more than once",
			c.name(r.txn), ki.name, fmtList(l), fmtList(slices.Compact(dups)))
	}
	if failed >= 0 {
		w := ki.writes[failed].txn
		c.report(G1a, ki.name, []int32{r.txn, w}, "%s read %s = %s, holding %d, appended by failed %s",
			c.name(r.txn), ki.name, fmtList(l), failed, c.name(w))
	}
	if len(garbage) > 0 {
		c.report(Garbage, ki.name, []int32{r.txn}, "%s read %s = %s, holding %s, which no txn appended",
			c.name(r.txn), ki.name, fmtList(l), fmtList(garbage))
	}
	if len(l) > 0 {
		if w, found := ki.writes[l[len(l)-1]]; found && c.valid[w.txn] && w.txn != r.txn {
			c.edge(w.txn, r.txn, WR, kid)
		}
	}
}

// appendsAfter returns the values txn t appended to key after v.
func (c *checker) appendsAfter(t int32, key string, v int) []int {
	var out []int
	seen := false
	for _, op := range c.h[t].Ops {
		if op.F != Append || op.Key != key {
			continue
		}
		if seen {
			out = append(out, op.Value)
		}
		seen = seen || op.Value == v
	}
	return out
}

// internal checks each committed transaction against itself: a read of a
// key must equal its previous read plus its appends since, or, with no
// previous read, end with its appends so far; and it must not hold a value
// the transaction appends only later.
func (c *checker) internal() {
	type state struct {
		known  bool
		prefix []int
		suffix []int
	}
	st := map[string]*state{}
	for t, txn := range c.h {
		if txn.Type != OK {
			continue
		}
		clear(st)
		for o, op := range txn.Ops {
			s := st[op.Key]
			if s == nil {
				s = &state{}
				st[op.Key] = s
			}
			if op.F == Append {
				s.suffix = append(s.suffix, op.Value)
				continue
			}
			if op.List == nil {
				*s = state{}
				continue
			}
			switch {
			case s.known:
				want := slices.Concat(s.prefix, s.suffix)
				if !slices.Equal(op.List, want) {
					c.report(Internal, op.Key, []int32{int32(t)},
						"%s read %s = %s, but its earlier read and appends imply %s",
						c.name(int32(t)), op.Key, fmtList(op.List), fmtList(want))
				}
			case len(s.suffix) > 0:
				l := op.List
				if len(l) < len(s.suffix) || !slices.Equal(l[len(l)-len(s.suffix):], s.suffix) {
					c.report(Internal, op.Key, []int32{int32(t)},
						"%s read %s = %s, which does not end with its own appends %s",
						c.name(int32(t)), op.Key, fmtList(l), fmtList(s.suffix))
				}
			}
			if later := c.laterAppends(txn, o); len(later) > 0 {
				for _, v := range op.List {
					if slices.Contains(later, v) {
						c.report(Internal, op.Key, []int32{int32(t)},
							"%s read %s = %s, holding %d, which it appends only later",
							c.name(int32(t)), op.Key, fmtList(op.List), v)
						break
					}
				}
			}
			*s = state{known: true, prefix: op.List}
		}
	}
}

// laterAppends returns the values txn appends after op o to op o's key.
func (c *checker) laterAppends(txn Txn, o int) []int {
	var out []int
	for _, op := range txn.Ops[o+1:] {
		if op.F == Append && op.Key == txn.Ops[o].Key {
			out = append(out, op.Value)
		}
	}
	return out
}

// realTime adds real-time nodes and edges (see graph) and returns how many
// nodes it added: a committed transaction T precedes its node, each node the
// next in End order, and the last node whose End is before a transaction's
// Start precedes that transaction.
func (c *checker) realTime() int {
	var done []int32
	for t, txn := range c.h {
		if txn.Type == OK && txn.End != 0 {
			done = append(done, int32(t))
		}
	}
	slices.SortStableFunc(done, func(a, b int32) int { return cmp.Compare(c.h[a].End, c.h[b].End) })
	base := int32(len(c.h))
	for i, t := range done {
		c.edge(t, base+int32(i), RT, -1)
		if i > 0 {
			c.edge(base+int32(i-1), base+int32(i), RT, -1)
		}
	}
	for t, txn := range c.h {
		if !c.valid[t] || txn.Start == 0 {
			continue
		}
		// i is the first node whose End is not before Start.
		i := sort.Search(len(done), func(i int) bool { return c.h[done[i]].End >= txn.Start })
		if i > 0 {
			c.edge(base+int32(i-1), int32(t), RT, -1)
		}
	}
	return len(done)
}

// edge records a dependency edge between graph nodes.
func (c *checker) edge(from, to int32, d Dep, key int32) {
	if from != to {
		c.edges = append(c.edges, edge{from: from, to: to, dep: d, key: key})
	}
}

// addCycle classifies cy and records it; onlyRT keeps it only if it needs a
// real-time edge (the other cycles were found without them).
func (c *checker) addCycle(g *graph, cy cycle, onlyRT bool) {
	steps, kind, rt := g.classify(cy)
	if onlyRT && !rt {
		return
	}
	a := Anomaly{Kind: kind, RealTime: rt, Explanation: describeCycle(c.h, steps)}
	for _, s := range steps {
		a.Txns = append(a.Txns, c.h[s.from])
		a.Cycle = append(a.Cycle, Step{From: c.h[s.from].Index, To: c.h[s.to].Index, Dep: s.dep, Key: s.key})
	}
	c.anomalies = append(c.anomalies, a)
}

// report records a non-cycle anomaly.
func (c *checker) report(k Kind, key string, txns []int32, format string, args ...any) {
	a := Anomaly{Kind: k, Key: key, Explanation: fmt.Sprintf(format, args...)}
	for _, t := range txns {
		a.Txns = append(a.Txns, c.h[t])
	}
	c.anomalies = append(c.anomalies, a)
}

func (c *checker) name(t int32) string { return txnName(c.h[t]) }

func (c *checker) result(level Level, truncated bool) *Result {
	slices.SortStableFunc(c.anomalies, func(a, b Anomaly) int {
		if a.Kind != b.Kind {
			return cmp.Compare(a.Kind, b.Kind)
		}
		if a.RealTime != b.RealTime {
			if a.RealTime {
				return 1
			}
			return -1
		}
		return 0
	})
	r := &Result{Level: level, Valid: true, Anomalies: c.anomalies, Counts: map[string]int{},
		Txns: len(c.h), Truncated: truncated}
	for _, v := range c.valid {
		if v {
			r.Committed++
		}
	}
	for _, a := range c.anomalies {
		r.Counts[a.Name()]++
		if level.Forbids(a.Kind) {
			r.Valid = false
		}
	}
	return r
}

// duplicates returns the values l holds more than once, each once, in
// order of their second occurrence.
func duplicates(l []int) []int {
	seen := make(map[int]int, len(l))
	var out []int
	for _, v := range l {
		seen[v]++
		if seen[v] == 2 {
			out = append(out, v)
		}
	}
	return out
}

// fmtList renders a list for an explanation, eliding the middle of long
// ones: [1 2 3 ... (92 more) ... 96 97 98 99 100].
func fmtList(l []int) string {
	const head, tail = 3, 5
	if len(l) <= head+tail+2 {
		return fmt.Sprint(l)
	}
	h, t := fmt.Sprint(l[:head]), fmt.Sprint(l[len(l)-tail:])
	return fmt.Sprintf("%s ... (%d more) ... %s", h[:len(h)-1], len(l)-head-tail, t[1:])
}
