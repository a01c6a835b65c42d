// Command txtdb is the command-line tool for txtdb stores.
//
//	txtdb stress [flags]      multi-process stress run with SIGKILLs, checked (package procharness)
//	txtdb check DIR           verify a store without changing it (exit 1 if it has problems)
//	txtdb stats [-json] DIR   the store's TSNs, checkpoint lag, log and page file sizes, processes
//	txtdb cat DIR NS          print the pages of a namespace
//	txtdb ls DIR              list the namespaces
//	txtdb watch [-from TSN] [-values] DIR [NS...]   print one JSON line per commit, as they happen
//	txtdb table [-json] [-from KEY] [-to KEY] DIR [NAME]   list a table's rows in key order, or the tables
//	txtdb get DIR NAME KEY    print one row of a table
//
// check, stats, cat, ls, watch, table and get never write to the store: they open it read-only.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/txtdb/txtdb"
)

func main() {
	os.Exit(runCommand(os.Args[1:], os.Stdout, os.Stderr))
}

// runCommand runs one command and returns the process's exit code: 0 on success, 1 on failure (for
// check: problems found), 2 for a usage error (for check: the check could not run).
func runCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		usage(stderr)
		return 2
	}
	var err error
	switch args[0] {
	case "stress":
		err = stress(args[1:], stdout)
	case "check":
		return check(args[1:], stdout, stderr)
	case "stats":
		err = stats(args[1:], stdout)
	case "ls":
		err = ls(args[1:], stdout)
	case "cat":
		err = cat(args[1:], stdout)
	case "watch":
		err = watchSignals(args[1:], stdout)
	case "table":
		err = tableCmd(args[1:], stdout)
	case "get":
		err = get(args[1:], stdout)
	case "-h", "--help", "help":
		usage(stderr)
		return 0
	default:
		usage(stderr)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "txtdb:", err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  txtdb stress [-workers N] [-duration D] [-workloads W,...] [-kill D] [-seed S] [-dir DIR]
              [-min-kills N] [-plant-violation] [-nosync] [-worker BIN]
        multi-process stress run: N txtdb-worker processes (built with the go command from
        the module's source unless -worker names one) run the workloads on one store, one is
        SIGKILLed and restarted about every -kill; the report gives every checker's verdict,
        commits, conflicts, latency, fairness and kills; exit 1 if any check fails
  txtdb check DIR       verify the store in DIR and its tables (every index against its rows)
                        without changing it: prints one line per problem and exits 1, or
                        prints "ok"; exits 2 if it cannot check
  txtdb stats [-json] DIR
                        committed and checkpoint TSNs, lag, horizon, log and page file sizes,
                        live processes; -json prints every field of txtdb.Stats as JSON
  txtdb ls DIR          list the namespaces of the store in DIR
  txtdb cat DIR NS      print every page of namespace NS
  txtdb watch [-from TSN] [-values] DIR [NS...]
                        print one JSON line per commit (of any process) that touches NS or
                        below (all if none), as it happens, until interrupted; -from resumes
                        after TSN, -values prints the objects each change wrote
  txtdb table [-json] [-from KEY] [-to KEY] DIR [NAME]
                        print the rows of table NAME in key order, one per line: KEY, a tab,
                        the row as JSON; -json prints {"key": ..., "row": ...} lines (use it
                        for keys with tabs or newlines); -from and -to bound the keys to
                        [from, to). Without NAME: every table, its key type and its indexes
  txtdb get DIR NAME KEY
                        print the row of table NAME with key KEY as JSON; exit 1 if none.
                        KEY as table prints it: a decimal integer, a UUID, an RFC 3339 time,
                        a string as it is, a composite key as a JSON list (["ada", 7])
check, stats, ls, cat, watch, table and get open the store read-only: they never write to it.
`)
}

// readOnly opens the store in dir for reading only.
func readOnly(dir string) (*txtdb.DB, error) {
	return txtdb.Open(dir, &txtdb.Options{ReadOnly: true})
}

func ls(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: txtdb ls DIR")
	}
	db, err := readOnly(args[0])
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(context.Background(), func(tx *txtdb.Tx) error {
		names, err := tx.Namespaces()
		for _, n := range names {
			fmt.Fprintln(stdout, n)
		}
		return err
	})
}

func cat(args []string, stdout io.Writer) error {
	if len(args) != 2 {
		return errors.New("usage: txtdb cat DIR NS")
	}
	db, err := readOnly(args[0])
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(context.Background(), func(tx *txtdb.Tx) error {
		pages, err := tx.Match(args[1], "*")
		if err != nil {
			return err
		}
		ids := make([]string, 0, len(pages))
		for id := range pages {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			fmt.Fprintf(stdout, "== %s/%s (tsn %d)\n", args[1], id, tx.Snapshot())
			for _, o := range pages[id] {
				fmt.Fprintln(stdout, o.Text())
			}
		}
		return nil
	})
}
