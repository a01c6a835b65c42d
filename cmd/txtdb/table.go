package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/table"
)

const (
	tableUse = "usage: txtdb table [-json] [-from KEY] [-to KEY] DIR [NAME]"
	getUse   = "usage: txtdb get DIR NAME KEY"
)

// tableCmd runs `txtdb table [-json] [-from KEY] [-to KEY] DIR [NAME]`. With NAME it prints the
// rows of that table with from <= key < to in key order, one per line: "KEY<TAB>ROW" (the key as
// `txtdb get` accepts it, the row as compact JSON), or with -json {"key": ..., "row": ...}.
// Without NAME it lists the tables: name, key type, indexes. Flags may also follow DIR and NAME.
// The handle is read-only.
func tableCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("table", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "one JSON object per line")
	from := fs.String("from", "", "the first key (inclusive)")
	to := fs.String("to", "", "the key to stop at (exclusive)")
	pos, err := parseInterspersed(fs, args)
	if err != nil || len(pos) < 1 || len(pos) > 2 {
		return errors.New(tableUse)
	}
	if len(pos) == 1 && (*from != "" || *to != "") {
		return fmt.Errorf("%s: -from and -to need NAME", tableUse)
	}
	db, err := readOnly(pos[0])
	if err != nil {
		return err
	}
	defer db.Close()
	// Lines stream out as the scan goes (a View runs its function once): on an error, the
	// lines before it are printed, and they are rows of the one snapshot.
	w := &lineWriter{w: bufio.NewWriter(stdout)}
	err = db.View(context.Background(), func(tx *txtdb.Tx) error {
		if len(pos) == 1 {
			return listTables(tx, w, *asJSON)
		}
		return table.ScanRaw(tx, pos[1], *from, *to, func(r table.RawRow) error {
			if *asJSON {
				return w.json(struct {
					Key any `json:"key"`
					Row any `json:"row"`
				}{r.Key, r.Row})
			}
			row, err := compactJSON(r.Row)
			if err != nil {
				return err
			}
			return w.line(keyText(r.Key) + "\t" + row)
		})
	})
	if ferr := w.w.Flush(); err == nil {
		err = ferr
	}
	return err
}

// listTables prints the tables the transaction sees: as a table for people, or one JSON object
// per table.
func listTables(tx *txtdb.Tx, w *lineWriter, asJSON bool) error {
	names, err := table.Tables(tx)
	if err != nil {
		return err
	}
	type index struct {
		Name   string `json:"name"`
		Unique bool   `json:"unique"`
		Key    string `json:"key"`
	}
	var text bytes.Buffer
	tw := tabwriter.NewWriter(&text, 0, 0, 2, ' ', 0)
	for _, n := range names {
		info, err := table.Describe(tx, n)
		if err != nil {
			return err
		}
		if asJSON {
			ixs := []index{}
			for _, ix := range info.Indexes {
				ixs = append(ixs, index{ix.Name, ix.Unique, ix.Key})
			}
			if err := w.json(struct {
				Name    string  `json:"name"`
				Key     string  `json:"key"`
				Indexes []index `json:"indexes"`
			}{info.Name, info.Key, ixs}); err != nil {
				return err
			}
			continue
		}
		var ixs []string
		for _, ix := range info.Indexes {
			if ix.Unique {
				ixs = append(ixs, fmt.Sprintf("%s(unique %s)", ix.Name, ix.Key))
			} else {
				ixs = append(ixs, fmt.Sprintf("%s(%s)", ix.Name, ix.Key))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", info.Name, info.Key, strings.Join(ixs, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// tabwriter pads the last column too when it is empty: drop that.
	for l := range strings.Lines(text.String()) {
		if err := w.line(strings.TrimRight(l, " \n")); err != nil {
			return err
		}
	}
	return nil
}

// get runs `txtdb get DIR NAME KEY`: it prints the row of table NAME with key KEY (written as
// `txtdb table` prints keys) as indented JSON. ErrNotFound if there is none, table.ErrInvalidKey
// if KEY is no key of the table's type. The handle is read-only.
func get(args []string, stdout io.Writer) error {
	if len(args) != 3 {
		return errors.New(getUse)
	}
	db, err := readOnly(args[0])
	if err != nil {
		return err
	}
	defer db.Close()
	var r table.RawRow
	if err := db.View(context.Background(), func(tx *txtdb.Tx) error {
		r, err = table.GetRaw(tx, args[1], args[2])
		return err
	}); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(r.Row)
}

// parseInterspersed parses fs's flags wherever they stand among args and returns the other
// arguments in order. "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// fs.Parse consumed a "--" just before rest: everything after it is positional.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// keyText writes a stored key as a person writes it, and as ParseKey reads it: a number in
// decimal, a string (UUIDs and times are strings) as it is, a composite key as a JSON list.
func keyText(k any) string {
	switch x := k.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	}
	s, err := compactJSON(k)
	if err != nil {
		return fmt.Sprint(k)
	}
	return s
}

// compactJSON encodes v as one line of JSON, leaving <, > and & as they are.
func compactJSON(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// lineWriter writes lines of text and of JSON.
type lineWriter struct{ w *bufio.Writer }

func (l *lineWriter) line(s string) error {
	l.w.WriteString(s)
	return l.w.WriteByte('\n')
}

func (l *lineWriter) json(v any) error {
	s, err := compactJSON(v)
	if err != nil {
		return err
	}
	return l.line(s)
}
