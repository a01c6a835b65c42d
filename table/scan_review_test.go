package table

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb/pages"
)

// scanEntry skips "ix" without looking at it, so it takes entries whose index values are not an
// object (valid JSON, which the standard decoder refuses for rawEntry.IX). FuzzScanEntry's own
// property (whatever the fast path takes, the decoder decodes) does not hold for them: a leaf
// that used to read as corrupt (ErrSchema) now decodes, and the entry fails only when its index
// values are asked for (ErrInconsistent).
func TestScanEntryTakesIXTheDecoderRefuses(t *testing.T) {
	for _, text := range []string{
		`{"key":1,"ix":5}`,
		`{"key":1,"ix":[]}`,
		`{"key":1,"ix":"a"}`,
		`{"key":1,"ix":true,"del":true}`,
	} {
		o, err := pages.ObjectFromText(pages.JSON, []byte(text))
		require.NoError(t, err)
		var r rawEntry
		decErr := o.Decode(&r)
		_, ok := scanEntry(o)
		if ok {
			require.NoError(t, decErr, "the fast path took %q, which the decoder refuses", text)
		}
	}
}
