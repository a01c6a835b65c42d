package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/wal"
)

// check runs table.Check: a clean store is "ok"; an index entry removed behind the table's back
// is a problem naming the index's page, with exit 1, and check changes nothing.
func TestCheckTables(t *testing.T) {
	dir := newTableStore(t)
	before := tree(t, dir)
	code, out, errOut := runCLI("check", dir)
	require.Equal(t, 0, code, "stderr: %s", errOut)
	require.Equal(t, "ok\n", out)
	require.Equal(t, before, tree(t, dir), "check changed the store")

	// Drop the last entry of the email index's root leaf, with raw page calls.
	db, err := txtdb.Open(dir, nil)
	require.NoError(t, err)
	var root string
	require.NoError(t, db.Update(context.Background(), func(tx *txtdb.Tx) error {
		objs, err := tx.ReadPage("app.users", "page000001")
		if err != nil {
			return err
		}
		var schema struct {
			Indexes []struct{ Name, Root string }
		}
		if err := objs[0].Decode(&schema); err != nil {
			return err
		}
		for _, ix := range schema.Indexes {
			if ix.Name == "email" {
				root = ix.Root
			}
		}
		objs, err = tx.ReadPage("app.users", root)
		if err != nil {
			return err
		}
		var hdr struct{ Node string }
		require.NoError(t, objs[0].Decode(&hdr))
		require.Equal(t, "leaf", hdr.Node, "the email index of three rows is one leaf")
		require.Len(t, objs, 4, "a header and three entries")
		var last struct{ Key, PK string }
		require.NoError(t, objs[3].Decode(&last))
		require.Equal(t, "cy", last.PK)
		rest := make([]any, 0, len(objs)-1)
		for _, o := range objs[:3] {
			rest = append(rest, o)
		}
		return tx.UpdatePage("app.users", root, rest...)
	}))
	require.NoError(t, db.Close())
	require.NotEmpty(t, root)

	before = tree(t, dir)
	code, out, errOut = runCLI("check", dir)
	require.Equal(t, 1, code, "stderr: %s", errOut)
	require.Equal(t, "app/users/"+root+": txtdb/table: rows and indexes disagree: index email has 2 entries for 3 rows\n", out)
	require.Equal(t, before, tree(t, dir), "check changed the store")

	// The table still reads (the rows are intact), and get by primary key still works.
	code, out, _ = runCLI("get", dir, "app.users", "cy")
	require.Equal(t, 0, code)
	var u user
	require.NoError(t, json.Unmarshal([]byte(out), &u))
	require.Equal(t, "cy@example.com", u.Email)
}

// Store problems and table problems come out together, sorted by path.
func TestCheckStoreAndTables(t *testing.T) {
	dir := newTableStore(t)
	db, err := txtdb.Open(dir, nil)
	require.NoError(t, err)
	var root string
	require.NoError(t, db.Update(context.Background(), func(tx *txtdb.Tx) error {
		// A row entry without its index values, appended to the rows' root leaf under its
		// key's encoding (hex of "dan", then ".").
		objs, err := tx.ReadPage("app.users", "page000001")
		if err != nil {
			return err
		}
		var schema struct{ Root string }
		if err := objs[0].Decode(&schema); err != nil {
			return err
		}
		root = schema.Root
		return tx.AppendPage("app.users", root, "64616e.", map[string]any{"key": "dan", "row": user{Name: "dan"}})
	}))
	require.NoError(t, db.Close())
	writeFile(t, filepath.Join(dir, "app", "users", "notes.txt"), "x")
	writeFile(t, filepath.Join(dir, "zz", "readme.txt"), "hello\n")

	code, out, errOut := runCLI("check", dir)
	require.Equal(t, 1, code, "stderr: %s", errOut)
	require.Equal(t, ""+
		"app/users/notes.txt: txtdb: file outside the layout: not a page version file\n"+
		"app/users/"+root+": txtdb/table: rows and indexes disagree: app.users: row 64616e. has no value for index email\n"+
		"zz: txtdb: file outside the layout: no namespace incarnation uses this folder\n", out)
}

// A store too damaged to open: its store problems, and stderr says the tables were not checked.
func TestCheckUnopenable(t *testing.T) {
	dir := newTableStore(t)
	writeFile(t, filepath.Join(dir, "txtdb.json"), fmt.Sprintf(`{"txtdb": %d}`, wal.Version+1))
	code, out, errOut := runCLI("check", dir)
	require.Equal(t, 1, code)
	require.Equal(t, fmt.Sprintf("txtdb.json: txtdb: unsupported layout version: layout %d, this build reads %d\n", wal.Version+1, wal.Version), out)
	require.True(t, strings.HasPrefix(errOut, "txtdb: tables not checked: "), errOut)
}
