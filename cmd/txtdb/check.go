package main

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/table"
)

// check runs `txtdb check DIR`: it verifies the store without opening it (so a store too damaged
// to open is checked too) and then, through a read-only handle, its tables (table.Check); it
// changes nothing. It prints one line per problem, sorted by path, and returns 1, or prints "ok"
// and returns 0; 2 if the check could not run. A store with problems that cannot be opened gets
// its store problems, and a line on stderr saying the tables were not checked.
func check(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: txtdb check DIR")
		return 2
	}
	ctx := context.Background()
	probs, err := txtdb.CheckDir(ctx, args[0])
	if err != nil {
		fmt.Fprintln(stderr, "txtdb:", err)
		return 2
	}
	tprobs, err := checkTables(ctx, args[0])
	switch {
	case err != nil && len(probs) == 0:
		fmt.Fprintln(stderr, "txtdb: tables:", err)
		return 2
	case err != nil:
		fmt.Fprintln(stderr, "txtdb: tables not checked:", err)
	}
	probs = append(probs, tprobs...)
	if len(probs) == 0 {
		fmt.Fprintln(stdout, "ok")
		return 0
	}
	sort.SliceStable(probs, func(i, j int) bool { return probs[i].Path < probs[j].Path })
	for _, p := range probs {
		fmt.Fprintln(stdout, p.String())
	}
	return 1
}

// checkTables runs table.Check on a read-only handle of the store in dir.
func checkTables(ctx context.Context, dir string) ([]txtdb.Problem, error) {
	db, err := readOnly(dir)
	if err != nil {
		return nil, err
	}
	probs, err := table.Check(ctx, db)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return probs, err
}
