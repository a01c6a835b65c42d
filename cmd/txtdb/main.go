// Command txtdb is the command-line tool for txtdb stores.
//
//	txtdb stress [flags]   multi-process stress run on a temporary data directory
//	txtdb cat DIR NS       print the pages of a namespace
//	txtdb ls DIR           list the namespaces
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/txtdb/txtdb"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "stress":
		err = stress(os.Args[2:])
	case "stress-worker":
		err = stressWorker(os.Args[2:])
	case "ls":
		err = ls(os.Args[2:])
	case "cat":
		err = cat(os.Args[2:])
	case "-h", "--help", "help":
		usage()
		return
	default:
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "txtdb:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  txtdb stress [-procs N] [-duration D] [-accounts N] [-kill D] [-nosync] [-dir DIR]
        multi-process stress run: N processes transfer money between accounts, one is
        SIGKILLed and restarted every -kill; the final report checks that nothing was lost
  txtdb ls DIR          list the namespaces of the store in DIR
  txtdb cat DIR NS      print every page of namespace NS
`)
}

func ls(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: txtdb ls DIR")
	}
	db, err := txtdb.Open(args[0], nil)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(context.Background(), func(tx *txtdb.Tx) error {
		names, err := tx.Namespaces()
		for _, n := range names {
			fmt.Println(n)
		}
		return err
	})
}

func cat(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: txtdb cat DIR NS")
	}
	db, err := txtdb.Open(args[0], nil)
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
			fmt.Printf("== %s/%s (tsn %d)\n", args[1], id, tx.Snapshot())
			for _, o := range pages[id] {
				fmt.Println(o.Text())
			}
		}
		return nil
	})
}
