package txn

import (
	"fmt"
	"maps"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSmallMapActsAsAMap drives a smallMap and a Go map with the same random operations, across
// the slice-to-map spill, and requires the same contents after each.
func TestSmallMapActsAsAMap(t *testing.T) {
	for _, keys := range []int{3, smallMapMax, smallMapMax + 1, 40} {
		t.Run(fmt.Sprintf("keys=%d", keys), func(t *testing.T) {
			var s smallMap[string, int]
			m := map[string]int{}
			seed := uint64(keys)
			for i := range 2000 {
				seed = seed*6364136223846793005 + 1442695040888963407
				k := fmt.Sprint("k", (seed>>33)%uint64(keys))
				switch (seed >> 20) % 3 {
				case 0, 1:
					s.set(k, i)
					m[k] = i
				case 2:
					s.del(k)
					delete(m, k)
				}
				require.Equal(t, len(m), s.len(), "op %d", i)
				v, ok := s.get(k)
				w, wok := m[k]
				require.Equal(t, wok, ok, "op %d: has %s", i, k)
				require.Equal(t, w, v, "op %d: value of %s", i, k)
				require.Equal(t, w, s.at(k))
				require.Equal(t, wok, s.has(k))
			}
			got := map[string]int{}
			for k, v := range s.all() {
				_, dup := got[k]
				require.False(t, dup, "%s yielded twice", k)
				got[k] = v
			}
			require.Equal(t, m, got)
			if len(m) == 0 {
				require.Nil(t, s.goMap())
			} else {
				require.True(t, maps.Equal(m, s.goMap()))
			}
		})
	}
}

// TestSmallMapKeepsInsertionOrder: while its entries fit the slice, a smallMap yields them in the
// order they were first set, and a deletion frees its slot for nothing to stay reachable.
func TestSmallMapKeepsInsertionOrder(t *testing.T) {
	var s smallMap[string, *int]
	vals := make([]int, 4)
	for i, k := range []string{"c", "a", "d", "b"} {
		s.set(k, &vals[i])
	}
	s.set("a", &vals[1]) // setting again keeps the place
	var order []string
	for k := range s.all() {
		order = append(order, k)
	}
	require.Equal(t, []string{"c", "a", "d", "b"}, order)
	s.del("a")
	require.Len(t, s.kv, 3)
	require.Nil(t, s.kv[:4][3].v, "the freed slot still points at a value")
	require.Equal(t, 3, s.len())
}
