package events

import (
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/txtdb/txtdb/pages"
)

// TestHooks are the feed's test seams, for the external test package.
type TestHooks struct {
	Read      func(what string)            // before each state or log read ("state", "log")
	Drop      func(ev fsnotify.Event) bool // true: drop the watcher event
	Inject    chan error                   // handled as if the watcher reported it
	NoWatcher bool                         // the watcher "cannot start"
	Poll      time.Duration                // the fallback poll's interval
}

// OpenWithHooks opens a feed with test hooks.
func OpenWithHooks(dir string, f pages.Format, h TestHooks) (*Feed, error) {
	return open(dir, f, hooks{read: h.Read, drop: h.Drop, inject: h.Inject, noWatcher: h.NoWatcher, poll: h.Poll})
}
