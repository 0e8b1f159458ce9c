#!/usr/bin/env bash
# Runs every test against a throwaway Postgres cluster that lives only as long as this script.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d /tmp/mgpass-test.XXXXXX)
chmod 755 "$tmp"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() {
  scripts/pg.sh stop "$tmp/pg" || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# Durability is irrelevant for a cluster that is deleted afterwards; fsync off makes it faster.
PG_FSYNC=off scripts/pg.sh start "$tmp/pg" "$port"
export MGPASS_TEST_PG_URL="postgres://mgpass@127.0.0.1:$port/postgres"

# The committed SDK code and API documents must be what the contract generates.
scripts/sdk-generate.sh --check

cargo build -p mgpass-server --bin mgpass
cargo test --workspace --no-fail-fast "$@"
# The TypeScript, Python and Go SDKs against one live server (the Rust SDK's tests ran above).
scripts/sdk-test.sh
