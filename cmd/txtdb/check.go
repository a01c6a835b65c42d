package main

import (
	"context"
	"fmt"
	"io"

	"github.com/txtdb/txtdb"
)

// check runs `txtdb check DIR`: it verifies the store without opening it (so a store too damaged
// to open is checked too) and without changing anything. It prints one line per problem and
// returns 1, or prints "ok" and returns 0; 2 if the check could not run.
func check(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: txtdb check DIR")
		return 2
	}
	probs, err := txtdb.CheckDir(context.Background(), args[0])
	if err != nil {
		fmt.Fprintln(stderr, "txtdb:", err)
		return 2
	}
	if len(probs) == 0 {
		fmt.Fprintln(stdout, "ok")
		return 0
	}
	for _, p := range probs {
		fmt.Fprintln(stdout, p.String())
	}
	return 1
}
