// Package e2e holds txtdb's multi-process end-to-end tests. They run only through procharness:
// fleets of cmd/txtdb-worker processes on one directory, with and without SIGKILLs, at named
// crash points, checked by the workload checkers and by Check after a final Checkpoint.
//
// -short keeps the package within a few minutes under -race on two cores (make test); the full
// form runs without it (make e2e). TXTDB_SEED replays a failed run's schedule.
package e2e
