package table

import (
	"errors"
	"fmt"
	"maps"
	"sync"

	"github.com/txtdb/txtdb"
	"github.com/txtdb/txtdb/pages"
)

// schemaPage is the page of a table's namespace that holds its schema: the first page the table's
// creation made (PART OF THE FORMAT).
var schemaPage = pages.PageID(1)

// schemaKey is the key a schema read depends on: nothing appends under it, so only a rewrite of
// the schema (an index added or dropped) conflicts.
const schemaKey = "schema"

// schemaVersion is the table layout version a schema records (PART OF THE FORMAT).
const schemaVersion = 1

// defaultNodeBytes is the size a node reaches before it is split, for new tables.
const defaultNodeBytes = 16 << 10

// schemaDoc is the schema object (PART OF THE FORMAT).
type schemaDoc struct {
	Table     int        `json:"txtdb_table" yaml:"txtdb_table"`
	Key       string     `json:"key" yaml:"key"`
	NodeBytes int        `json:"node_bytes" yaml:"node_bytes"`
	Root      string     `json:"root" yaml:"root"`
	Indexes   []indexDoc `json:"indexes" yaml:"indexes"`
}

type indexDoc struct {
	Name   string `json:"name" yaml:"name"`
	Unique bool   `json:"unique" yaml:"unique"`
	Key    string `json:"key" yaml:"key"`
	Root   string `json:"root" yaml:"root"`
}

// schema is a parsed schemaDoc.
type schema struct {
	ns      string
	doc     schemaDoc
	kt      keyType
	primary *tree
	indexes map[string]*tree
}

// readSchema reads a table's schema, depending only on its rewrites.
func readSchema(tx *txtdb.Tx, ns string) (*schema, error) {
	objs, err := tx.ReadPageKey(ns, schemaPage, schemaKey)
	if errors.Is(err, txtdb.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s has no schema page", ErrNotTable, ns)
	}
	if err != nil {
		return nil, err
	}
	if len(objs) == 1 {
		schemas.mu.Lock()
		c := schemas.m[ns]
		schemas.mu.Unlock()
		if c != nil && sameText(c.obj, objs[0]) {
			return c.s, nil
		}
	}
	sc, err := parseSchema(ns, objs)
	if err == nil {
		schemas.mu.Lock()
		if len(schemas.m) >= nodeCacheMax {
			clear(schemas.m)
		}
		schemas.m[ns] = &cachedSchema{obj: objs[0], s: sc}
		schemas.mu.Unlock()
	}
	return sc, err
}

// schemas caches parsed schemas by their exact object, as nodeCache does nodes. A cached schema
// is shared: nothing changes it (Migrate works on a copy).
var schemas = struct {
	mu sync.Mutex
	m  map[string]*cachedSchema
}{m: map[string]*cachedSchema{}}

type cachedSchema struct {
	obj pages.Object
	s   *schema
}

// clone returns a copy whose index set may be changed.
func (s *schema) clone() *schema {
	c := *s
	c.indexes = maps.Clone(s.indexes)
	return &c
}

func parseSchema(ns string, objs []txtdb.Object) (*schema, error) {
	var doc schemaDoc
	if len(objs) != 1 || objs[0].Decode(&doc) != nil || doc.Table == 0 {
		return nil, fmt.Errorf("%w: %s/%s is not a table schema", ErrNotTable, ns, schemaPage)
	}
	if doc.Table != schemaVersion {
		return nil, fmt.Errorf("%w: %s: table layout %d (this version reads %d)", ErrSchema, ns, doc.Table, schemaVersion)
	}
	kt, err := parseKeyType(doc.Key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ns, err)
	}
	if doc.NodeBytes < 512 || doc.Root == "" {
		return nil, fmt.Errorf("%w: %s: node_bytes %d, root %q", ErrSchema, ns, doc.NodeBytes, doc.Root)
	}
	s := &schema{ns: ns, doc: doc, kt: kt, indexes: map[string]*tree{}}
	s.primary = &tree{ns: ns, root: doc.Root, kt: kt, limit: doc.NodeBytes}
	for _, ix := range doc.Indexes {
		xt, err := parseKeyType(ix.Key)
		if err != nil {
			return nil, fmt.Errorf("%s: index %s: %w", ns, ix.Name, err)
		}
		if ix.Root == "" || s.indexes[ix.Name] != nil {
			return nil, fmt.Errorf("%w: %s: index %q", ErrSchema, ns, ix.Name)
		}
		s.indexes[ix.Name] = &tree{ns: ns, root: ix.Root, kt: xt, pkt: kt, multi: !ix.Unique, limit: doc.NodeBytes}
	}
	return s, nil
}

func (s *schema) index(name string) (indexDoc, bool) {
	for _, ix := range s.doc.Indexes {
		if ix.Name == name {
			return ix, true
		}
	}
	return indexDoc{}, false
}
