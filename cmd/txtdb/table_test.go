package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/table"
)

type user struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Team  string `json:"team"`
}

type count struct {
	N     int64  `json:"n"`
	Label string `json:"label"`
}

type device struct {
	ID    uuid.UUID `json:"id"`
	Model string    `json:"model"`
}

type event struct {
	At   time.Time `json:"at"`
	What string    `json:"what"`
}

type score struct {
	Player string `json:"player"`
	Round  int64  `json:"round"`
	Points uint64 `json:"points"`
}

// users has a unique index "email" and a secondary index "team" (see init).
var (
	users   = table.New("app.users", func(u *user) string { return u.Name })
	counts  = table.New("app.counts", func(c *count) int64 { return c.N })
	devices = table.New("app.devices", func(d *device) uuid.UUID { return d.ID })
	events  = table.New("app.events", func(e *event) time.Time { return e.At })
	scores  = table.New("app.scores", func(s *score) table.Key2[string, int64] {
		return table.Key2[string, int64]{A: s.Player, B: s.Round}
	})
)

func init() {
	table.Unique(users, "email", func(u *user) string { return u.Email })
	table.Index(users, "team", func(u *user) string { return u.Team })
}

var (
	dev1 = uuid.MustParse("00000000-0000-4000-8000-000000000001")
	dev2 = uuid.MustParse("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
	t0   = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
)

// newTableStore makes a closed store with a table of each key type, and the plain namespace
// "app.notes" (no table).
func newTableStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	db, err := txtdb.Open(dir, nil)
	require.NoError(t, err)
	err = db.Update(context.Background(), func(tx *txtdb.Tx) error {
		for _, create := range []func(*txtdb.Tx) error{users.Create, counts.Create, devices.Create, events.Create, scores.Create} {
			if err := create(tx); err != nil {
				return err
			}
		}
		for _, u := range []user{{"bob", "bob@example.com", "core"}, {"ann", "ann@example.com", "r&d"}, {"cy", "cy@example.com", "core"}} {
			if err := users.Insert(tx, &u); err != nil {
				return err
			}
		}
		for _, n := range []int64{42, -5, 0, 7} {
			if err := counts.Insert(tx, &count{N: n, Label: "<" + time.Duration(n).String() + ">"}); err != nil {
				return err
			}
		}
		for _, d := range []device{{dev2, "x1"}, {dev1, "a1"}} {
			if err := devices.Insert(tx, &d); err != nil {
				return err
			}
		}
		for i, what := range []string{"boot", "login", "halt"} {
			if err := events.Insert(tx, &event{At: t0.Add(time.Duration(i) * 90 * time.Minute), What: what}); err != nil {
				return err
			}
		}
		for _, s := range []score{{"cy", 1, 5}, {"ann", 2, 1 << 63}, {"ann", 1, 10}} {
			if err := scores.Insert(tx, &s); err != nil {
				return err
			}
		}
		if err := tx.CreateNamespace("app.notes"); err != nil {
			return err
		}
		_, err := tx.Insert("app.notes", map[string]string{"text": "hello"})
		return err
	})
	require.NoError(t, err)
	require.NoError(t, db.Close())
	return dir
}

// table lists rows in key order, for every key type, as KEY<TAB>ROW or JSON lines; without NAME
// it lists the tables. Nothing in the store changes.
func TestTableCommand(t *testing.T) {
	dir := newTableStore(t)
	before := tree(t, dir)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"tables", []string{dir}, "" +
			"app.counts   int64\n" +
			"app.devices  uuid\n" +
			"app.events   time\n" +
			"app.scores   key2(string,int64)\n" +
			"app.users    string              email(unique string) team(string)\n"},
		{"tables json", []string{"-json", dir}, "" +
			`{"name":"app.counts","key":"int64","indexes":[]}` + "\n" +
			`{"name":"app.devices","key":"uuid","indexes":[]}` + "\n" +
			`{"name":"app.events","key":"time","indexes":[]}` + "\n" +
			`{"name":"app.scores","key":"key2(string,int64)","indexes":[]}` + "\n" +
			`{"name":"app.users","key":"string","indexes":[{"name":"email","unique":true,"key":"string"},{"name":"team","unique":false,"key":"string"}]}` + "\n"},
		{"string", []string{dir, "app.users"}, "" +
			"ann\t" + `{"email":"ann@example.com","name":"ann","team":"r&d"}` + "\n" +
			"bob\t" + `{"email":"bob@example.com","name":"bob","team":"core"}` + "\n" +
			"cy\t" + `{"email":"cy@example.com","name":"cy","team":"core"}` + "\n"},
		{"int64", []string{dir, "app.counts"}, "" +
			"-5\t" + `{"label":"<-5ns>","n":-5}` + "\n" +
			"0\t" + `{"label":"<0s>","n":0}` + "\n" +
			"7\t" + `{"label":"<7ns>","n":7}` + "\n" +
			"42\t" + `{"label":"<42ns>","n":42}` + "\n"},
		{"uuid", []string{dir, "app.devices"}, "" +
			dev1.String() + "\t" + `{"id":"` + dev1.String() + `","model":"a1"}` + "\n" +
			dev2.String() + "\t" + `{"id":"` + dev2.String() + `","model":"x1"}` + "\n"},
		{"time", []string{dir, "app.events"}, "" +
			"2026-05-01T12:00:00Z\t" + `{"at":"2026-05-01T12:00:00Z","what":"boot"}` + "\n" +
			"2026-05-01T13:30:00Z\t" + `{"at":"2026-05-01T13:30:00Z","what":"login"}` + "\n" +
			"2026-05-01T15:00:00Z\t" + `{"at":"2026-05-01T15:00:00Z","what":"halt"}` + "\n"},
		{"key2", []string{dir, "app.scores"}, "" +
			`["ann",1]` + "\t" + `{"player":"ann","points":10,"round":1}` + "\n" +
			`["ann",2]` + "\t" + `{"player":"ann","points":9223372036854775808,"round":2}` + "\n" +
			`["cy",1]` + "\t" + `{"player":"cy","points":5,"round":1}` + "\n"},
		{"json", []string{"-json", dir, "app.scores"}, "" +
			`{"key":["ann",1],"row":{"player":"ann","points":10,"round":1}}` + "\n" +
			`{"key":["ann",2],"row":{"player":"ann","points":9223372036854775808,"round":2}}` + "\n" +
			`{"key":["cy",1],"row":{"player":"cy","points":5,"round":1}}` + "\n"},
		{"json int64", []string{dir, "app.counts", "-json", "-to", "0"}, "" +
			`{"key":-5,"row":{"label":"<-5ns>","n":-5}}` + "\n"},
		{"from to", []string{"-from", "-5", "-to", "7", dir, "app.counts"}, "" +
			"-5\t" + `{"label":"<-5ns>","n":-5}` + "\n" +
			"0\t" + `{"label":"<0s>","n":0}` + "\n"},
		{"from after the args", []string{dir, "app.counts", "-from=1"}, "" +
			"7\t" + `{"label":"<7ns>","n":7}` + "\n" +
			"42\t" + `{"label":"<42ns>","n":42}` + "\n"},
		{"from between keys", []string{"-from", "b", dir, "app.users", "-to", "c"}, "" +
			"bob\t" + `{"email":"bob@example.com","name":"bob","team":"core"}` + "\n"},
		{"flags end at --", []string{"-to", "0", "--", dir, "app.counts"}, "-5\t" + `{"label":"<-5ns>","n":-5}` + "\n"},
		{"to before from", []string{"-from", "7", "-to", "0", dir, "app.counts"}, ""},
		{"to equals from", []string{"-from", "7", "-to", "7", dir, "app.counts"}, ""},
		{"time bounds in another zone", []string{"-from", "2026-05-01T14:00:00+01:00", "-to", "2026-05-01T15:00:00Z", dir, "app.events"}, "" +
			"2026-05-01T13:30:00Z\t" + `{"at":"2026-05-01T13:30:00Z","what":"login"}` + "\n"},
		{"uuid from", []string{"-from", dev2.String(), dir, "app.devices"}, "" +
			dev2.String() + "\t" + `{"id":"` + dev2.String() + `","model":"x1"}` + "\n"},
		{"key2 from", []string{"-from", `["ann",2]`, dir, "app.scores"}, "" +
			`["ann",2]` + "\t" + `{"player":"ann","points":9223372036854775808,"round":2}` + "\n" +
			`["cy",1]` + "\t" + `{"player":"cy","points":5,"round":1}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(append([]string{"table"}, tc.args...)...)
			require.Equal(t, 0, code, "stderr: %s", errOut)
			require.Equal(t, tc.want, out)
		})
	}
	require.Equal(t, before, tree(t, dir), "table changed the store")
}

// Every key table prints, get accepts.
func TestTableKeysRoundTrip(t *testing.T) {
	dir := newTableStore(t)
	for _, ns := range []string{"app.users", "app.counts", "app.devices", "app.events", "app.scores"} {
		code, out, errOut := runCLI("table", dir, ns)
		require.Equal(t, 0, code, "stderr: %s", errOut)
		for l := range strings.Lines(out) {
			key, row, ok := strings.Cut(strings.TrimSuffix(l, "\n"), "\t")
			require.True(t, ok, l)
			code, got, errOut := runCLI("get", dir, ns, key)
			require.Equal(t, 0, code, "get %s %q: %s", ns, key, errOut)
			require.JSONEq(t, row, got)
		}
	}
}

// get prints one row as indented JSON.
func TestGetCommand(t *testing.T) {
	dir := newTableStore(t)
	before := tree(t, dir)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"string", []string{"app.users", "ann"}, "{\n  \"email\": \"ann@example.com\",\n  \"name\": \"ann\",\n  \"team\": \"r&d\"\n}\n"},
		{"negative int64", []string{"app.counts", "-5"}, "{\n  \"label\": \"<-5ns>\",\n  \"n\": -5\n}\n"},
		{"uuid", []string{"app.devices", dev2.String()}, "{\n  \"id\": \"" + dev2.String() + "\",\n  \"model\": \"x1\"\n}\n"},
		{"uuid in capitals", []string{"app.devices", strings.ToUpper(dev2.String())}, "{\n  \"id\": \"" + dev2.String() + "\",\n  \"model\": \"x1\"\n}\n"},
		{"time", []string{"app.events", "2026-05-01T13:30:00Z"}, "{\n  \"at\": \"2026-05-01T13:30:00Z\",\n  \"what\": \"login\"\n}\n"},
		{"time in another zone", []string{"app.events", "2026-05-01T15:30:00+02:00"}, "{\n  \"at\": \"2026-05-01T13:30:00Z\",\n  \"what\": \"login\"\n}\n"},
		{"key2", []string{"app.scores", `["ann", 2]`}, "{\n  \"player\": \"ann\",\n  \"points\": 9223372036854775808,\n  \"round\": 2\n}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(append([]string{"get", dir}, tc.args...)...)
			require.Equal(t, 0, code, "stderr: %s", errOut)
			require.Equal(t, tc.want, out)
		})
	}
	require.Equal(t, before, tree(t, dir), "get changed the store")
}

// Missing rows, missing tables, namespaces that are no tables and keys of the wrong type: exit 1
// and one line on stderr, as the other commands report errors.
func TestTableGetErrors(t *testing.T) {
	dir := newTableStore(t)
	before := tree(t, dir)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no row", []string{"get", dir, "app.users", "dan"}, "txtdb: txtdb: page not found: table app.users, key dan\n"},
		{"no row int64", []string{"get", dir, "app.counts", "8"}, "txtdb: txtdb: page not found: table app.counts, key 8\n"},
		{"no table", []string{"get", dir, "app.none", "1"}, "txtdb: txtdb: namespace not found: \"app.none\"\n"},
		{"no table to list", []string{"table", dir, "app.none"}, "txtdb: txtdb: namespace not found: \"app.none\"\n"},
		{"not a table", []string{"get", dir, "app.notes", "1"}, "txtdb: txtdb/table: not a table: app.notes/page000001 is not a table schema\n"},
		{"not a table to list", []string{"table", dir, "app.notes"}, "txtdb: txtdb/table: not a table: app.notes/page000001 is not a table schema\n"},
		{"bad int64", []string{"get", dir, "app.counts", "seven"}, "txtdb: table app.counts (int64 keys): txtdb/table: invalid key: \"seven\" is not an int64\n"},
		{"bad uuid", []string{"get", dir, "app.devices", "ann"}, "txtdb: table app.devices (uuid keys): txtdb/table: invalid key: \"ann\" is not a UUID\n"},
		{"bad time", []string{"get", dir, "app.events", "2026-05-01"}, "txtdb: table app.events (time keys): txtdb/table: invalid key: \"2026-05-01\" is not an RFC 3339 time\n"},
		{"bad key2", []string{"get", dir, "app.scores", "ann"}, "txtdb: table app.scores (key2(string,int64) keys): txtdb/table: invalid key: \"ann\" is not a JSON list of 2 parts\n"},
		{"key2 part of the wrong type", []string{"get", dir, "app.scores", `[1, 2]`}, "txtdb: table app.scores (key2(string,int64) keys): txtdb/table: invalid key: part 1 of \"[1, 2]\" is not a JSON string\n"},
		{"bad from", []string{"table", "-from", "x", dir, "app.counts"}, "txtdb: table app.counts (int64 keys): txtdb/table: invalid key: \"x\" is not an int64\n"},
		{"bad to", []string{"table", "-to", "1.5", dir, "app.counts"}, "txtdb: table app.counts (int64 keys): txtdb/table: invalid key: \"1.5\" is not an int64\n"},
		{"get usage", []string{"get", dir, "app.users"}, "txtdb: " + getUse + "\n"},
		{"table usage", []string{"table"}, "txtdb: " + tableUse + "\n"},
		{"table extra argument", []string{"table", dir, "app.users", "ann"}, "txtdb: " + tableUse + "\n"},
		{"table unknown flag", []string{"table", "-pretty", dir}, "txtdb: " + tableUse + "\n"},
		{"no flags after --", []string{"table", "--", dir, "app.counts", "-to", "1"}, "txtdb: " + tableUse + "\n"},
		{"bounds without a table", []string{"table", "-from", "1", dir}, "txtdb: " + tableUse + ": -from and -to need NAME\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(tc.args...)
			require.Equal(t, 1, code)
			require.Empty(t, out)
			require.Equal(t, tc.want, errOut)
		})
	}
	require.Equal(t, before, tree(t, dir), "a failed table or get changed the store")

	// The messages above are these errors'.
	err := withStore(t, dir, func(tx *txtdb.Tx) error {
		_, err := table.GetRaw(tx, "app.counts", "seven")
		require.ErrorIs(t, err, table.ErrInvalidKey)
		_, err = table.GetRaw(tx, "app.counts", "8")
		require.ErrorIs(t, err, txtdb.ErrNotFound)
		_, err = table.GetRaw(tx, "app.none", "8")
		require.ErrorIs(t, err, txtdb.ErrNamespaceNotFound)
		_, err = table.GetRaw(tx, "app.notes", "8")
		require.ErrorIs(t, err, table.ErrNotTable)
		return nil
	})
	require.NoError(t, err)

	none := filepath.Join(t.TempDir(), "none")
	code, _, _ := runCLI("table", none)
	require.Equal(t, 1, code)
	code, _, _ = runCLI("get", none, "app.users", "ann")
	require.Equal(t, 1, code)
	require.NoDirExists(t, none, "table or get must not create a store")
}

// withStore runs fn in a read-only transaction on the store in dir.
func withStore(t *testing.T, dir string, fn func(tx *txtdb.Tx) error) error {
	t.Helper()
	db, err := readOnly(dir)
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	return db.View(context.Background(), fn)
}

// writeFile writes a file, making its folder.
func writeFile(t *testing.T, path, text string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
}
