package txtdb

// PeekPage returns a page's objects like ReadPage but records no read: a later change of the
// page never makes this transaction conflict, and UpdatePage and DeletePage still need a
// ReadPage first. Use it only for information whose staleness other reads detect (the inner
// nodes of a tree whose leaves are read with ReadPage or ReadPageKey). The slice is not a copy:
// do not assign to its elements (appending to it is safe).
func (tx *Tx) PeekPage(ns, pageID string) ([]Object, error) { return tx.t.PeekPage(ns, pageID) }
