//go:build txtdb_crashpoints

package txn

import "os"

// crashEnvEnabled reports whether this build arms crash points from the environment.
const crashEnvEnabled = true

// A build for crash testing (go build -tags txtdb_crashpoints) arms the crash point named in
// TXTDB_CRASHPOINT at start-up. Never in production builds: see crashenv_off.go.
func init() { armCrashFrom(os.Getenv(crashEnv)) }
