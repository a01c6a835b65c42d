package pages

import "strconv"

// TSN is a transaction sequence number: a plain version number, increasing by
// one per committed transaction. 0 means "none / before the first commit", so
// no page version has TSN 0. TSN is part of the on-disk format: it appears in
// decimal in version file names ("page000001.json.v42").
type TSN uint64

// String returns the TSN in decimal.
func (t TSN) String() string { return strconv.FormatUint(uint64(t), 10) }
