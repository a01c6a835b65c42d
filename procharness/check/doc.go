// Package check holds the checkers of the worker workloads: each takes the History of a run (or
// the part one workload's workers wrote, see Select) and returns a Result with a Verdict and an
// explanation a person can act on.
//
//   - Bank: every read sees the same total and no negative balance; without unknown transfers,
//     every read equals the initial balances plus exactly the acknowledged transfers up to its
//     snapshot; a final read covers every acknowledged transfer.
//   - Counter: every read of a counter, and the new value every acknowledged increment reports, is
//     at least the acknowledged increments up to that snapshot and at most those plus the ones of
//     unknown outcome; a final read covers every acknowledged increment.
//   - Register: the history of each register is linearizable (github.com/anishathalye/porcupine,
//     partitioned per key, within a timeout).
//   - Lists: every list a list-append transaction read is exactly the acknowledged appends before
//     it in TSN order (plus its own, and maybe some of unknown outcome).
//   - Elle: the list-append history has no anomaly the isolation level forbids (package elle:
//     G0, G1a, G1b, G1c, lost update, G-single, and at serializable G2-item); outcomes of
//     unknown operations are Elle's info.
//   - Queue: every acknowledged job is completed exactly once or still waiting, never lost or
//     completed twice; a completion follows its worker's own claim; claims name the claimer's
//     registry id.
//   - Events: each subscriber's events (across its restarts) are, in TSN order and without
//     duplicates, exactly the acknowledged commits that match its filter, plus at most one
//     event per operation of unknown outcome; each names its committer's registry id.
//   - Hold: no hold failed.
//
// Every checker is shown to fail on planted violations by this package's tests.
//
// # Caveats
//
// The checkers trust the TSNs and snapshots the workers report: they check the store against
// what its clients saw, not the workers' honesty. Register's Unknown verdict (the search timed
// out) is never a pass. Bank's exact check needs a history without unknown transfers; with them
// only the total and the signs are checked (the explanation says so).
package check
