# txtdb — make targets. `make` prints usage.
GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Packages that spawn many processes run one at a time so 2 cores do not make them flaky.
HEAVY       := ./lockfs/... ./txn/... ./events/... ./table/... ./procharness/... ./cmd/txtdb $(if $(wildcard tests),./tests/...)
PKGS        := $(shell $(GO) list ./... 2>/dev/null)
HEAVY_PKGS  := $(shell $(GO) list $(HEAVY) 2>/dev/null)
LIGHT_PKGS  := $(filter-out $(HEAVY_PKGS),$(PKGS))
FUZZTIME    ?= 20s

# bench: how long each engine runs per cell (a time.ParseDuration string; 48 cells by default),
# and which workloads get rows (comma-separated; empty: transfer,insert,read; bench-tables:
# tables, that is table-insert-random,table-insert-increasing,table-get-key,table-get-unique,
# table-range). The other knobs (TXTDB_BENCH_MODES, _PROCS, _CLIENTS, _FILL, _PERF,
# _SQLITE_SYNC) pass through the environment.
BENCH_CELL  ?= 3s
BENCH_ROWS  ?=
# bench-scale: the table sizes TestScale fills and measures (comma-separated).
SCALE_SIZES ?= 1000,1000000

# The soak: every workload, many workers, a SIGKILL about every 150ms, at least 1,000 kills.
SOAK_ARGS   ?=

.PHONY: help fmt vet lint test e2e powerloss stress soak bench bench-tables bench-scale bench-go bench-peer fuzz

help:
	@echo "txtdb make targets:"
	@echo "  make fmt     fail on any gofmt diff"
	@echo "  make vet     go vet ./..."
	@echo "  make lint    staticcheck (pinned, fetched through the module proxy)"
	@echo "  make test    the CI suite: -short, -race, -count=1"
	@echo "  make e2e     the end-to-end tests (tests/e2e) in their full form, -race (TXTDB_SEED=n replays)"
	@echo "  make powerloss  power cuts and I/O faults on a FUSE layer, long form (root, /dev/fuse; module tests/powerfs)"
	@echo "  make stress  multi-process stress run with SIGKILLs (STRESS_ARGS=-duration 60s ...)"
	@echo "  make soak    every workload, at least 1,000 SIGKILLs (SOAK_ARGS=...)"
	@echo "  make bench   one txtdb/SQLite markdown table: transfer, insert and read rows, durable and relaxed (module bench/; BENCH_CELL=$(BENCH_CELL) per cell, BENCH_ROWS=transfer,insert,read)"
	@echo "  make bench-tables  the same for the table layer: inserts (random and increasing keys), gets by key and unique index, ranges (34 cells)"
	@echo "  make bench-scale   cost against table size: gets, ranges, inserts, pages read, Open and RSS at SCALE_SIZES=$(SCALE_SIZES) rows (the 1M fill takes minutes)"
	@echo "  make bench-go    the engine's go test -bench benchmarks, -benchmem (compare with benchstat)"
	@echo "  make bench-peer  txtdb against SQLite as go test -bench sub-benchmarks, b.N transfers (module bench/)"
	@echo "  make fuzz    every fuzz target for FUZZTIME each (default $(FUZZTIME))"

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt diff in:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	cd tests/powerfs && $(GO) vet ./...
	cd bench && $(GO) vet ./...

lint:
	$(GO) run $(STATICCHECK) ./...
	cd tests/powerfs && $(GO) run $(STATICCHECK) ./...
	cd bench && $(GO) run $(STATICCHECK) ./...

test:
	$(GO) test -race -short -count=1 -timeout 20m $(LIGHT_PKGS)
	@if [ -n "$(HEAVY_PKGS)" ]; then $(GO) test -race -short -count=1 -timeout 20m -p 1 $(HEAVY_PKGS); fi
	cd tests/powerfs && $(GO) test -race -short -count=1 -timeout 10m ./...

# tests/powerfs is a module of its own, so go-fuse never becomes a dependency of txtdb. It skips
# (saying why) where it cannot mount: it needs root and /dev/fuse.
powerloss:
	cd tests/powerfs && $(GO) test -count=1 -timeout 60m -v ./...

# The full form of the end-to-end suite (make test runs its -short form).
e2e:
	$(GO) test -race -count=1 -timeout 60m -p 1 ./tests/...

stress:
	$(GO) run ./cmd/txtdb stress $(STRESS_ARGS)

soak:
	$(GO) run ./cmd/txtdb stress -workloads all -workers 14 -duration 5m -kill 150ms -min-kills 1000 -append-max-list 64 $(SOAK_ARGS)

# One markdown table, txtdb and SQLite side by side, fixed-length cells (bench/table_test.go).
# bench/ is a module of its own, so the SQLite driver never becomes a dependency of txtdb.
bench:
	cd bench && TXTDB_BENCH_TABLE=1 TXTDB_BENCH_CELL=$(BENCH_CELL) $(if $(BENCH_ROWS),TXTDB_BENCH_ROWS=$(BENCH_ROWS)) \
	  $(GO) test -run '^TestTable$$' -count=1 -timeout 30m

# The table layer (package table) beside a SQLite table with a unique index, in the same machinery
# (bench/records_test.go). A target of its own: with its rows, make bench would run past 5 minutes.
bench-tables:
	cd bench && TXTDB_BENCH_TABLE=1 TXTDB_BENCH_CELL=$(BENCH_CELL) TXTDB_BENCH_ROWS=$(or $(BENCH_ROWS),tables) \
	  $(GO) test -run '^TestTable$$' -count=1 -timeout 30m

# "Cost does not grow with the table": the records table filled to each of SCALE_SIZES, measured
# in a fresh process (bench/scale_test.go). Never part of make test.
bench-scale:
	cd bench && TXTDB_BENCH_SCALE=$(SCALE_SIZES) $(GO) test -run '^TestScale$$' -count=1 -timeout 3h

# The engine's own benchmarks (hot paths: begin, read, commit, log append, lock hand-off).
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 30m ./...

bench-peer:
	cd bench && $(GO) test -run '^$$' -bench . -benchtime=3000x -count=3 -timeout 30m

fuzz:
	@for pkg in $(PKGS); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done
