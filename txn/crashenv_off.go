//go:build !txtdb_crashpoints

package txn

// crashEnvEnabled reports whether this build arms crash points from the environment: not a
// production build, which ignores TXTDB_CRASHPOINT (only tests arm crash points).
const crashEnvEnabled = false
