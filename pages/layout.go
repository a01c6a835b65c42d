package pages

// DefaultPageSize is the page size budget, in bytes, when Layout.PageSize is 0.
const DefaultPageSize = 8192

// ObjectOverhead is the per-object allowance, in bytes, that Fits adds to each
// object's Size: the separator and indentation a page file adds around an
// object ("  " and ",\n" in JSON, "---\n" in YAML, "  " and "\n" in XML).
// Indentation that JSON adds inside nested objects is not counted, so the page
// size is a budget for object text, not the exact size of the file.
const ObjectOverhead = 4

// Layout is the paging rule of a store: how many objects share a page.
type Layout struct {
	// PageSize is the budget of one page in bytes (see Fits); 0 or less means
	// DefaultPageSize.
	PageSize int
	// OneObjectPerPage puts every object in a page of its own.
	OneObjectPerPage bool
}

// Limit returns the effective page size: PageSize, or DefaultPageSize if
// PageSize is 0 or less.
func (l Layout) Limit() int {
	if l.PageSize <= 0 {
		return DefaultPageSize
	}
	return l.PageSize
}

// Fits reports whether obj may be appended to a page currently holding objs.
// An empty page always fits, so an object larger than the limit gets a page
// of its own. Otherwise it is false with OneObjectPerPage, and false if the
// sum over all objects, obj included, of Size() + ObjectOverhead would exceed
// Limit(). It is a pure function.
func (l Layout) Fits(objs []Object, obj Object) bool {
	return l.FitsAfter(objs, nil, obj)
}

// FitsAfter is Fits for a page held in two parts, head then tail: whether obj may be appended to
// a page holding head followed by tail, without joining them. It is a pure function.
func (l Layout) FitsAfter(head, tail []Object, obj Object) bool {
	if len(head)+len(tail) == 0 {
		return true
	}
	if l.OneObjectPerPage {
		return false
	}
	limit := l.Limit()
	total := obj.Size() + ObjectOverhead
	for _, part := range [2][]Object{head, tail} {
		for _, o := range part {
			total += o.Size() + ObjectOverhead
			if total > limit {
				return false
			}
		}
	}
	return total <= limit
}
