// Package procharness runs fleets of txtdb worker processes (cmd/txtdb-worker) on one data
// directory: it builds the worker once per process, spawns workers and waits for their ready
// lines (never a sleep), collects their histories (package history), kills workers with SIGKILL
// on a seeded schedule or lets them die at a named crash point, restarts them, and checks the
// result: the workload checkers (package check) on the history, then Checkpoint and Check on the
// directory.
//
// Two levels:
//   - Harness: start, stop, kill and restart single workers and read what they wrote. A
//     crash-point run counts only when the worker announced "crash <point>" on stderr and died of
//     SIGKILL (Exit.CrashedAt).
//   - Run: a whole run from a Config (workers, workload mix, length in operations or time, kill
//     schedule, seed, progress callback), ending in a Report (verdicts, commits, conflicts,
//     commit latency, fairness, kills, restarts, problems). Tests use RunTest and NewTest, which
//     add a deadline, a limit on concurrent heavy tests (Acquire), the seed (TXTDB_SEED replays
//     a schedule) and a kept directory with the histories when the test fails.
//
// The worker is built with -tags txtdb_crashpoints, and with -race when this package's binary
// runs with the race detector.
//
// # Caveats
//
// Needs the go command and the module's source at run time (it builds the worker), unless
// Options.Binary names a built worker. Linux (or another Unix): SIGKILL, CLOCK_MONOTONIC. Only
// tests and cmd/ import this package.
package procharness
