//go:build !linux && !darwin && !dragonfly && !freebsd && !netbsd && !openbsd

package txn

// readBootID returns "": this platform gives no host-wide boot signal, so every handle recovers
// on the slow path first, as after a reboot.
func readBootID() string { return "" }
