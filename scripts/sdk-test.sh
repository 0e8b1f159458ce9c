#!/usr/bin/env bash
# Runs the TypeScript, Python and Go SDK tests against ONE live mgpass: the `mgpass` binary
# (`serve --migrate --bootstrap`, as tests/src/lib.rs starts it) on a fresh database in the
# cluster at $MGPASS_TEST_PG_URL. The tests get the server and the bootstrap admin through
#   MGPASS_SDK_TEST_URL, MGPASS_SDK_TEST_ADMIN_EMAIL, MGPASS_SDK_TEST_ADMIN_PASSWORD.
# The Rust SDK's tests start their own server through the e2e harness (cargo test).
#
#   scripts/sdk-test.sh [typescript|python|go ...]   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

: "${MGPASS_TEST_PG_URL:?MGPASS_TEST_PG_URL is not set: run through scripts/test.sh (make test), which starts a throwaway Postgres}"
bin=${MGPASS_BIN:-$root/target/debug/mgpass}
[ -x "$bin" ] || { echo "sdk-test: $bin is missing: cargo build -p mgpass-server --bin mgpass" >&2; exit 1; }
sdks=("$@")
[ ${#sdks[@]} -gt 0 ] || sdks=(typescript python go)

db="sdk_$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
psql "$MGPASS_TEST_PG_URL" -qAtc "CREATE DATABASE $db"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
password="pw-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
log=$(mktemp /tmp/mgpass-sdk-test.XXXXXX.log)

# The same environment as the e2e harness (tests/src/lib.rs, TestServer::start_on).
env -i PATH="$PATH" \
  MGPASS_DATABASE__URL="${MGPASS_TEST_PG_URL%/*}/$db" \
  MGPASS_SERVER__LISTEN="127.0.0.1:$port" \
  MGPASS_BOOTSTRAP__ADMIN_PASSWORD="$password" \
  MGPASS_SECRETS__MASTER_KEY="dGVzdC1tYXN0ZXIta2V5LW9mLTMyLWJ5dGVzLWxvbmc=" \
  RUST_LOG=warn \
  "$bin" serve --migrate --bootstrap >/dev/null 2>"$log" &
pid=$!
cleanup() {
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  psql "$MGPASS_TEST_PG_URL" -qAtc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  rm -f "$log"
}
trap cleanup EXIT

export MGPASS_SDK_TEST_URL="http://127.0.0.1:$port"
export MGPASS_SDK_TEST_ADMIN_EMAIL="admin@admin.com"
export MGPASS_SDK_TEST_ADMIN_PASSWORD="$password"
for _ in $(seq 600); do
  curl -fsS "$MGPASS_SDK_TEST_URL/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "sdk-test: mgpass exited; log:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "$MGPASS_SDK_TEST_URL/readyz" >/dev/null || { echo "sdk-test: mgpass not ready in 60 s; log:" >&2; cat "$log" >&2; exit 1; }

failed=()
for sdk in "${sdks[@]}"; do
  echo "== sdk-test: $sdk against $MGPASS_SDK_TEST_URL"
  case "$sdk" in
    typescript) (cd sdk/typescript && npx --no-install tsc -p tsconfig.json && node --test --test-concurrency=1 test/) ;;
    python) (cd sdk/python && PYTHONPATH=src python3 -m pytest -q -p no:cacheprovider tests) ;;
    go) (cd sdk/go && go test -count=1 ./...) ;;
    *) echo "sdk-test: unknown SDK $sdk" >&2; false ;;
  esac || failed+=("$sdk")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "sdk-test: FAILED: ${failed[*]}; server log:" >&2
  cat "$log" >&2
  exit 1
fi
echo "sdk-test: ${sdks[*]} passed"
