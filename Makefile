# The two commands: `make run` brings mgpass up; `make test` runs every test.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PG_DIR ?= .data/pg
PG_PORT ?= 55432
MGPASS_SERVER__LISTEN ?= 127.0.0.1:8080
export MGPASS_SERVER__LISTEN

.PHONY: run test deps build sdk proto-lint proto-breaking bench pg-start pg-stop clean

## run: install what is missing, start a project-local Postgres (unless DATABASE_URL is set),
## migrate, bootstrap the super admin and serve on $(MGPASS_SERVER__LISTEN).
run: deps build
	@if [ -z "$${DATABASE_URL:-}" ]; then \
	  scripts/pg.sh start $(PG_DIR) $(PG_PORT); \
	  export DATABASE_URL=$$(scripts/pg.sh url $(PG_DIR) $(PG_PORT)); \
	  echo "mgpass: using the project-local Postgres in $(PG_DIR) ($$DATABASE_URL)"; \
	fi; \
	if [ -z "$${MGPASS_SECRETS__MASTER_KEY:-}" ]; then \
	  mkdir -p .data; \
	  [ -s .data/master.key ] || (umask 077; target/release/mgpass keys generate-master > .data/master.key); \
	  export MGPASS_SECRETS__MASTER_KEY=$$(cat .data/master.key); \
	  echo "mgpass: using the master key in .data/master.key (keep it; it seals the signing keys)"; \
	fi; \
	exec target/release/mgpass serve --migrate --bootstrap

## test: lint the contract, check it for breaking changes, and run every test on a throwaway Postgres.
test: deps proto-lint proto-breaking
	scripts/test.sh

deps:
	scripts/install-deps.sh

build:
	cargo build --release -p mgpass-server --bin mgpass

## sdk: regenerate every SDK's generated code and docs/api-reference.md, docs/openapi.json.
sdk: deps
	scripts/sdk-generate.sh

proto-lint:
	npx --no-install buf lint
	npx --no-install buf build -o /dev/null
	npx --no-install buf format -d --exit-code

## proto-breaking: compare the contract with the previous commit (or $$BUF_AGAINST, a git ref).
proto-breaking:
	@against=$${BUF_AGAINST:-$$(git rev-parse --verify -q HEAD~1 || true)}; \
	if [ -n "$$against" ] && git cat-file -e "$$against:buf.yaml" 2>/dev/null; then \
	  echo "buf breaking against $$against"; \
	  npx --no-install buf breaking --against ".git#ref=$$against"; \
	else \
	  echo "buf breaking: no earlier contract in git to compare against"; \
	fi

## bench: load GetUser over native gRPC and REST against the release binary.
bench: build
	scripts/install-deps.sh --bench
	bench/run.sh

pg-start:
	scripts/pg.sh start $(PG_DIR) $(PG_PORT)

pg-stop:
	scripts/pg.sh stop $(PG_DIR)

clean:
	scripts/pg.sh stop $(PG_DIR)
	rm -rf .data target
