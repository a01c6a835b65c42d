package check

import (
	"fmt"

	"github.com/txtdb/txtdb/procharness/history"
)

// Hold checks a hold history: no hold failed (the snapshot could not be opened or read).
func Hold(h *history.History) Result {
	const name = "hold"
	ops, bad := opsOf(name, h)
	if bad != nil {
		return *bad
	}
	var f findings
	held := 0
	for _, o := range ops {
		if o.F != "hold" {
			continue
		}
		switch {
		case o.Type() == history.OK:
			held++
		case o.Type() == history.Fail:
			f.add("%s op %d: hold failed: %s", o.Worker, o.ID, o.Done.Err)
		}
	}
	return f.result(name, len(ops), fmt.Sprintf("%d snapshots held", held))
}
