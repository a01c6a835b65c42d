// Package elle checks histories of the list-append workload for isolation
// anomalies, after Elle (Kingsbury and Alvaro, "Elle: Inferring Isolation
// Anomalies from Experimental Observations", VLDB 2020).
//
// # Model
//
// A history is a slice of Txn, one per transaction a client ran: its
// micro-operations in program order (append a value to the list at a key,
// or read the whole list at a key) and its outcome, ok (committed), fail
// (certainly not committed) or info (unknown). The workload appends each
// value at most once per key, so a value read names the one transaction that
// appended it; Check rejects a history that breaks this with
// ErrInvalidHistory.
//
// Because lists only grow, every committed read of a key is a prefix of the
// key's final list, and the longest read gives the key's version order as
// far as it was observed. From it Check derives Adya's dependency edges
// between transactions:
//
//   - ww: T1 appended an element and T2 the next one;
//   - wr: T2 read a list whose last element T1 appended;
//   - rw: T1 read a list and T2 appended the next element after it
//     (appends no read observed come after the whole known order);
//   - rt, under StrictSerializable only: T1 committed before T2 was invoked
//     (Txn.End before Txn.Start, both host-wide monotonic).
//
// Only reads of committed transactions count. A failed transaction's
// appends never enter the graph; an info transaction enters it, as
// committed, only when some read observed one of its appends.
//
// # What it detects
//
// Without the graph, from single reads or pairs of them: G1a (a read
// observes a failed transaction's append), G1b (a read ends in the middle of
// another transaction's appends to the key), internal inconsistency (a read
// disagrees with the transaction's own earlier reads and appends, or holds a
// value the transaction appends only later), incompatible orders (two reads
// of a key neither of which is a prefix of the other), duplicates (a value
// twice in one read), garbage (a value no transaction appended) and lost
// updates (two committed transactions read the same version of a key and
// both appended to it).
//
// In the graph, Check finds the strongly connected components (Tarjan) and
// in each a witness cycle per class, searching restricted edge sets in turn:
// a ww cycle (G0); a ww+wr cycle through a wr edge (G1c); a cycle with
// exactly one rw edge and otherwise ww and wr (G-single); failing that, a
// cycle with two or more (G2-item). Each witness is a shortest cycle through
// the edge it was seeded from. Under StrictSerializable it searches once more
// with rt edges and reports the cycles that need one, with
// Anomaly.RealTime set (G0-realtime, ..., G2-item-realtime).
//
// Every anomaly is reported; Options.Level decides which make the history
// invalid (see Level.Forbids): snapshot isolation permits G2-item but not
// G-single or lost updates, read committed permits those too.
//
// # Caveats
//
// Check sees only what reads observed. An anomaly among appends no read
// observed is invisible: two transactions whose appends to a key were never
// read cannot be ordered, so a ww or rw cycle through them goes unreported,
// and an append lost by the store is not noticed unless a later read (under
// StrictSerializable, a later-invoked one) should have seen it. Reads of
// failed and info transactions are not known and not checked. Two reads of a
// key that are not prefixes of one another are reported, but only the
// longest read orders the key, so edges the other would imply are missing.
//
// Check reports one witness per class per component, not every cycle, and
// the G-single search is bounded (about 3e7 edge visits in all): past the
// bound a component's cycle is reported as it is found, possibly as G2-item
// where a G-single also exists, and Result.Truncated is set. Process order
// (sessions) is not modelled. Under StrictSerializable the second search
// keeps only cycles that need real time, so a component whose witness needs
// none may hide a real-time one; the verdict is the same, as the first is
// reported. Appends within one transaction that the order shows out of
// program order are not reported.
package elle
