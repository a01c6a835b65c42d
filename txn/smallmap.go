package txn

import "iter"

// smallMap is a map for the sets of a transaction, which mostly hold one to a few entries: up to
// smallMapMax entries live in a slice (one small allocation, searched in order), more in a Go
// map. A Go map of one entry costs a whole group of slots (for a page read, about 700 bytes); the
// maps of an insert or a transfer were a fifth of the bytes a commit allocated. The zero value is
// empty and ready. Iteration is in insertion order while the entries fit the slice, in map order
// after.
type smallMap[K comparable, V any] struct {
	kv []smallEntry[K, V]
	m  map[K]V
}

type smallEntry[K comparable, V any] struct {
	k K
	v V
}

// smallMapMax is how many entries a smallMap keeps in its slice.
const smallMapMax = 8

// get returns the value of k and whether k is in the map.
func (s *smallMap[K, V]) get(k K) (V, bool) {
	if s.m != nil {
		v, ok := s.m[k]
		return v, ok
	}
	for i := range s.kv {
		if s.kv[i].k == k {
			return s.kv[i].v, true
		}
	}
	var zero V
	return zero, false
}

// at returns the value of k, the zero value if k is not in the map.
func (s *smallMap[K, V]) at(k K) V {
	v, _ := s.get(k)
	return v
}

// has reports whether k is in the map.
func (s *smallMap[K, V]) has(k K) bool {
	_, ok := s.get(k)
	return ok
}

// set makes v the value of k.
func (s *smallMap[K, V]) set(k K, v V) {
	if s.m != nil {
		s.m[k] = v
		return
	}
	for i := range s.kv {
		if s.kv[i].k == k {
			s.kv[i].v = v
			return
		}
	}
	if len(s.kv) < smallMapMax {
		if s.kv == nil {
			s.kv = make([]smallEntry[K, V], 0, 2)
		}
		s.kv = append(s.kv, smallEntry[K, V]{k, v})
		return
	}
	s.m = make(map[K]V, 2*smallMapMax)
	for _, e := range s.kv {
		s.m[e.k] = e.v
	}
	s.kv = nil
	s.m[k] = v
}

// del removes k from the map.
func (s *smallMap[K, V]) del(k K) {
	if s.m != nil {
		delete(s.m, k)
		return
	}
	for i := range s.kv {
		if s.kv[i].k == k {
			s.kv = append(s.kv[:i], s.kv[i+1:]...)
			clear(s.kv[len(s.kv):cap(s.kv)][:1]) // nothing stays reachable from the freed slot
			return
		}
	}
}

// len returns the number of entries.
func (s *smallMap[K, V]) len() int {
	if s.m != nil {
		return len(s.m)
	}
	return len(s.kv)
}

// all yields every entry. The map must not change during the iteration.
func (s *smallMap[K, V]) all() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		if s.m != nil {
			for k, v := range s.m {
				if !yield(k, v) {
					return
				}
			}
			return
		}
		for _, e := range s.kv {
			if !yield(e.k, e.v) {
				return
			}
		}
	}
}

// goMap returns the entries as a Go map (nil if there are none): for encodings that want one.
func (s *smallMap[K, V]) goMap() map[K]V {
	if s.m != nil {
		return s.m
	}
	if len(s.kv) == 0 {
		return nil
	}
	m := make(map[K]V, len(s.kv))
	for _, e := range s.kv {
		m[e.k] = e.v
	}
	return m
}
