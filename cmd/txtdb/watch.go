package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/txtdb/txtdb"
)

// watchLine is one printed event: a JSON line per commit.
type watchLine struct {
	TSN     txtdb.TSN     `json:"tsn"`
	Process string        `json:"process,omitempty"`
	Time    time.Time     `json:"time,omitzero"`
	Changes []watchChange `json:"changes"`
}

type watchChange struct {
	Kind      txtdb.ChangeKind `json:"kind"`
	Namespace string           `json:"ns"`
	NewName   string           `json:"new_name,omitempty"`
	Page      string           `json:"page,omitempty"`
	Objects   []any            `json:"objects,omitempty"` // JSON stores: the objects as they are; YAML and XML: their text
}

// watchSignals runs watch until SIGINT or SIGTERM.
func watchSignals(args []string, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return watch(ctx, args, stdout)
}

// watch prints one JSON line per commit of the store in DIR that matches the namespaces, until
// ctx ends (a clean end) or the feed ends (its error). The handle is read-only.
func watch(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	from := fs.String("from", "0", "resume after this TSN (0: commits from now on)")
	values := fs.Bool("values", false, "print the objects each change wrote")
	const use = "usage: txtdb watch [-from TSN] [-values] DIR [NS...]"
	if err := fs.Parse(args); err != nil || fs.NArg() < 1 {
		return errors.New(use)
	}
	n, err := strconv.ParseUint(*from, 10, 64)
	if err != nil {
		return fmt.Errorf("%s: -from: %w", use, err)
	}
	db, err := readOnly(fs.Arg(0))
	if err != nil {
		return err
	}
	defer db.Close()
	sub, err := db.Subscribe(ctx, txtdb.SubscribeOptions{Namespaces: fs.Args()[1:], From: txtdb.TSN(n), Values: *values})
	if err != nil {
		return err
	}
	defer sub.Close()
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	for ev := range sub.Events() {
		l := watchLine{TSN: ev.TSN, Process: ev.Process, Time: ev.Time}
		for _, c := range ev.Changes {
			wc := watchChange{Kind: c.Kind, Namespace: c.Namespace, NewName: c.NewName, Page: c.Page}
			for _, o := range c.Objects {
				if o.Format() == txtdb.JSON {
					wc.Objects = append(wc.Objects, json.RawMessage(o.Text()))
				} else {
					wc.Objects = append(wc.Objects, o.Text())
				}
			}
			l.Changes = append(l.Changes, wc)
		}
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	if err := sub.Err(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}
