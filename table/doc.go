// Package table keeps records by key on top of a txtdb store: tables with typed primary keys,
// unique and secondary indexes, and ordered range scans, all transactional through txtdb.Tx.
//
//	users := table.New("app.users", func(u *User) uuid.UUID { return u.ID })
//	byEmail := table.Unique(users, "email", func(u *User) string { return u.Email })
//	byTeam := table.Index(users, "team", func(u *User) string { return u.Team })
//
//	err := db.Update(ctx, func(tx *txtdb.Tx) error {
//		if err := users.Create(tx); err != nil && !errors.Is(err, txtdb.ErrNamespaceExists) {
//			return err
//		}
//		return users.Insert(tx, &User{ID: uuid.New(), Email: "ada@example.com", Team: "core"})
//	})
//
// # Keys
//
// A key is a string, any integer type, uuid.UUID, time.Time (an instant: UTC nanoseconds, so
// one instant in two locations is one key), or a Key2 or Key3 of those. Keys sort naturally:
// numbers numerically, strings and UUIDs by bytes, times chronologically, composite keys part by
// part. The key type is recorded in the store when the table is created, so a key keeps its
// exact type in every process: code whose key type differs from the store's (int32 against
// int64, a string against a UUID) gets ErrSchemaMismatch instead of lookups that find nothing.
//
// # Storage
//
// A table is one namespace. Its first page holds the schema (key type, node size, indexes);
// the rows and every index are B+ trees of pages whose files are readable: a leaf holds entries
// {"key": ..., "row": {...}, "ix": {...}} in the store's format, the row exactly as the user's
// type encodes it. See docs/FORMAT.md.
//
// Leaves are written with keyed appends (txtdb.Tx.AppendPage), so transactions that insert,
// replace or delete distinct keys in one leaf do not conflict, from any process; two that
// write the same key, or the same value of a unique index, do: one commits, the other's Update
// runs again and sees the row. A leaf that grows past the node size is compacted or split; that
// rewrite conflicts with appends to the leaf in flight. The right-most leaf, where increasing
// keys (time stamps, sequence numbers, UUIDv7) all go, grows to twice the node size and is cut
// into full leaves and a short one, so it splits half as often. Inner nodes are read without a
// dependency (txtdb.Tx.PeekPage): a leaf's range only changes when the leaf itself is rewritten.
//
// # Schema changes
//
// The schema (key type, indexes) is recorded in the store by Create. Code that defines another
// key type gets ErrSchemaMismatch on every call; code that defines fewer, more or other indexes
// gets it on writes, so no write leaves an index stale. Migrate adds the indexes the code defines
// and the store lacks, filled from the rows in one transaction that rewrites every leaf of the
// table (so a writer that began before it and commits after it conflicts, under either isolation
// level); under a steady stream of writers it may take several of Update's tries. DropIndex
// removes an index the same way; Drop removes the table. Both leave no files once the checkpoint
// and cleanup have run.
//
// Tables work under both isolation levels. They need a JSON or YAML store (Create refuses XML
// with ErrUnsupported: entries nest a row and its index values).
//
// # Cost
//
// Get reads the tree's path (the schema, the inner nodes, one leaf); an insert appends one
// entry per tree; a range scan reads the leaves that hold the range. Nothing is kept in memory
// between transactions beyond the store's page cache, and nothing is rebuilt on open.
package table
