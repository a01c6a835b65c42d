// Package history is the protocol a txtdb worker speaks to the harness that drives it, and the
// collection of what every worker said.
//
// A worker writes JSON lines on stdout, one Line per write: a ready line once its setup is done,
// then for every operation an invoke line and a completion line (ok, fail or unknown) that share
// the worker's operation id, then a summary when it is stopped. event and info lines carry
// observations and details that are not operations. Every line has a host-wide monotonic time in
// nanoseconds (CLOCK_MONOTONIC, see Now), so lines of different processes on one host compare.
//
// The meaning of a completion:
//   - ok: the operation happened (for a commit: Commit returned nil; TSN names it).
//   - fail: the operation certainly did not happen (a conflict, a failed compare-and-set, an error
//     the engine guarantees left nothing behind).
//   - unknown: it may or may not have happened (ErrCommitUnknown, or the worker died: History
//     turns every invoke without a completion into unknown).
//
// Value holds the operation's input on an invoke line and what was read and written on its
// completion, as JSON; the workload's value types (Transfer, Balances, Incr, Counters, Reg, Txn)
// and Line.Decode turn it into Go values.
//
// # Caveats
//
// Times are comparable only between processes of one host (one boot): CLOCK_MONOTONIC is not a
// wall clock. A worker killed with SIGKILL may leave a truncated last line; Reader drops it and
// says so (Reader.Truncated), anything else that does not parse is an error. A History keeps
// every line in memory (the checkers need the whole run), so its size grows with the run;
// History.EachOp pairs operations without a second copy of them.
package history
