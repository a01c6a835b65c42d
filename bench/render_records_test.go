package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// operationNames are the table workloads as the records table's rows name them.
var operationNames = map[string]string{
	workloadTableInsertRandom:     "insert, random keys",
	workloadTableInsertIncreasing: "insert, increasing keys",
	workloadTableGetKey:           "get by key",
	workloadTableGetUnique:        "get by unique index",
	workloadTableRange:            fmt.Sprintf("range of %s in key order", thousands(rangeRows)),
}

// renderRecords formats the rows of the table workloads as one markdown table with its notes.
func renderRecords(rows []tableRow, c runConditions) string {
	var sb strings.Builder
	sb.WriteString("\n| operation | mode | P | txtdb /s | SQLite /s | ratio " +
		"| txtdb p50 / p99 / p99.9 / max (ms) | SQLite p50 / p99 / p99.9 / max (ms) | p50 / p99 ratio | samples txtdb / SQLite " +
		"| retries per insert txtdb / SQLite | inserts/proc fewest–most txtdb; SQLite " +
		"| fsyncs/commit txtdb engine / syscalls; SQLite syscalls | CPU µs/op txtdb / SQLite | check txtdb / SQLite |\n")
	sb.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		ratio := "n/a"
		if r.txtdb.ran && r.sqlite.ran && r.sqlite.rate() > 0 {
			ratio = fmt.Sprintf("%.2f", r.txtdb.rate()/r.sqlite.rate())
		}
		mode := modeName(r.spec.level)
		if isTableRead(r.spec.workload) && r.spec.procs == 1 {
			mode = "—"
		}
		fmt.Fprintf(&sb, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s / %s | %s / %s | %s; %s | %s / %s; %s | %s / %s | %s / %s |\n",
			operationNames[r.spec.workload], mode, r.spec.procs,
			rateCell(r.txtdb), rateCell(r.sqlite), ratio,
			latencyCell(r.txtdb), latencyCell(r.sqlite), latencyRatio(r),
			samplesCell(r.txtdb), samplesCell(r.sqlite),
			retryCell(r.txtdb), retryCell(r.sqlite),
			fairnessCell(r.spec, r.txtdb), fairnessCell(r.spec, r.sqlite),
			perCommit(r.txtdb.engineSyncs, r.txtdb), perCommit(r.txtdb.sysSyncs, r.txtdb), perCommit(r.sqlite.sysSyncs, r.sqlite),
			recordsCPU(r.spec, r.txtdb), recordsCPU(r.spec, r.sqlite),
			checkCell(r.txtdb), checkCell(r.sqlite))
	}
	fmt.Fprintf(&sb, "\n%v per cell, every client starting operations until then; each cell on a fresh copy of a table of %s records, txtdb and then SQLite.\n", c.cell, thousands(int64(c.fill)))
	sb.WriteString("- The table: an int64 primary key, an e-mail address under a unique index, a short note (about 140 bytes of JSON per row). " +
		"txtdb: table.New with table.Unique, 16 KiB nodes; SQLite: id INTEGER PRIMARY KEY, CREATE UNIQUE INDEX on email, WAL mode. " +
		"The pre-filled keys are spread over [0, 2^62); the e-mail address is a bijection of the key in no relation to its order.\n")
	sb.WriteString("- insert: one record per transaction (txtdb: table.Insert inside DB.Update; SQLite: BEGIN IMMEDIATE, INSERT, COMMIT, one connection per process, busy_timeout=5000). " +
		"Random keys are spread over the whole key space; increasing keys are sequence numbers interleaved between the processes, so every insert lands at the right end of the key order.\n")
	fmt.Fprintf(&sb, "- get by key, get by unique index, range: one reader process, each read a read-only transaction (txtdb: View with Get, UniqueIndex.Get or Range; SQLite: an autocommit SELECT by id, by email, or WHERE id >= ? AND id < ? ORDER BY id), of a random pre-filled record, or the %s pre-filled records from a random one on; "+
		"at P > 1 beside P-1 processes inserting records with random keys (which may land inside a range). Every read checks the rows it got. /s, latencies and samples are the reads'; inserts/proc, retries, fsyncs and the inserts/s after the fewest–most are the writers'.\n", thousands(rangeRows))
	sb.WriteString("- retries per insert: txtdb: calls of the Update function per acknowledged insert, minus one (its conflict retries); SQLite: SQLITE_BUSY after busy_timeout, the transaction retried.\n")
	sb.WriteString("- durable: txtdb fdatasync of the log at commit vs SQLite synchronous=FULL; relaxed: txtdb NoSync vs SQLite synchronous=NORMAL; — : a reader alone, which commits nothing. " +
		"fsyncs/commit and CPU are counted as in the other table (perf), CPU per insert for insert rows, per read for a reader alone, not given beside writers.\n")
	sb.WriteString("- check, after every cell, both stores: every pre-filled and every acknowledged record present exactly once with the right contents, no other; " +
		"txtdb: table.Check (every index entry names its row and every row its index entry); SQLite: PRAGMA integrity_check and the row count through the unique index.\n")
	return sb.String()
}

// latencyRatio is txtdb's p50 and p99 over SQLite's.
func latencyRatio(r tableRow) string {
	if len(r.txtdb.lats) == 0 || len(r.sqlite.lats) == 0 {
		return "n/a"
	}
	q := func(p float64) string {
		s := percentile(r.sqlite.lats, p)
		if s <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f", float64(percentile(r.txtdb.lats, p))/float64(s))
	}
	return q(0.50) + " / " + q(0.99)
}

// retryCell is r's retries per acknowledged commit, as a percentage.
func retryCell(r cellResult) string {
	if !r.ran || r.commits() == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(r.attempts-r.commits())/float64(r.commits()))
}

// recordsCPU is r's CPU time per insert (insert rows) or per read (a reader alone).
func recordsCPU(spec cellSpec, r cellResult) string {
	if r.sysSyncs < 0 || !r.ran {
		return "n/a"
	}
	n := r.commits()
	if isTableRead(spec.workload) {
		if spec.procs > 1 {
			return "—"
		}
		n = len(r.lats)
	}
	if n == 0 {
		return "n/a"
	}
	return strconv.FormatFloat(micros(r.cpu)/float64(n), 'f', 0, 64)
}
