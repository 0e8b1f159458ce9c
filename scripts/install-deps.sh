#!/usr/bin/env bash
# Installs what building, running and testing mgpass needs and the machine lacks: Postgres server
# binaries and client and Chromium (Debian packages), the pinned Python test clients (aiosmtpd,
# authlib, requests), the pinned npm tooling (buf, protoc-gen-es and the TypeScript SDK's
# dependencies, the grpc-web client, openid-client, playwright-core), and the SDK generators and
# test dependencies: grpcio-tools, mypy-protobuf, PyJWT (pip) and protoc-gen-go, -go-grpc,
# -openapiv2, -doc (go install from the Go module proxy).
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v psql >/dev/null || need_apt+=(postgresql-client)
command -v runuser >/dev/null || need_apt+=(util-linux)
# The browser of tests/node/browser_signin.mjs (playwright-core drives it; it never downloads one).
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ "${1:-}" = "--bench" ]; then
  command -v h2load >/dev/null || need_apt+=(nghttp2-client)
  command -v wrk >/dev/null || need_apt+=(wrk)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-deps: installing ${need_apt[*]}" >&2
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # Debian starts a system cluster on install; mgpass uses its own, so stop that one.
  if command -v pg_lsclusters >/dev/null; then
    $SUDO pg_ctlcluster --force 15 main stop >/dev/null 2>&1 || true
  fi
fi

python3 -c 'import aiosmtpd' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check aiosmtpd
# The independent OAuth client of tests/python/authlib_code_flow.py, at pinned versions.
python3 - 2>/dev/null <<'PY' || python3 -m pip install --quiet --disable-pip-version-check authlib==1.9.9 requests==2.34.2
import importlib.metadata as m
assert m.version("authlib") == "1.9.9" and m.version("requests") == "2.34.2"
PY

if [ ! -x node_modules/.bin/buf ] || [ ! -d node_modules/openid-client ] || [ ! -d node_modules/playwright-core ] \
  || [ ! -x node_modules/.bin/protoc-gen-es ] || [ ! -d node_modules/jose ] \
  || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # `npm install` rather than `npm ci`: the lock omits the optional buf binaries of other
  # platforms, which `npm ci` refuses; install still follows the lock for everything it lists.
  npm install --no-audit --no-fund --loglevel=error >/dev/null
fi

# The Python SDK: generation (grpcio-tools reads buf's image; mypy-protobuf writes the .pyi) and its
# run-time and test dependencies, at pinned versions.
python3 - 2>/dev/null <<'PY' || python3 -m pip install --quiet --disable-pip-version-check \
  grpcio==1.85.1 grpcio-tools==1.85.1 googleapis-common-protos==1.76.0 \
  mypy-protobuf==5.1.0 'pyjwt[crypto]==2.15.1' pytest==9.2.0
import importlib.metadata as m
want = {"grpcio": "1.85.1", "grpcio-tools": "1.85.1", "googleapis-common-protos": "1.76.0",
        "mypy-protobuf": "5.1.0", "pyjwt": "2.15.1", "pytest": "9.2.0"}
assert all(m.version(k) == v for k, v in want.items())
PY

# The protoc plugins of buf.gen.yaml that come from Go, pinned; installed into `go env GOPATH`/bin.
gobin="$(go env GOPATH)/bin"
go_plugin() { # binary module@version (module path as `go version -m` reports it) install-path
  local have
  have=$(go version -m "$gobin/$1" 2>/dev/null | awk '$1=="mod"{print $2"@"$3}')
  [ "$have" = "$2" ] || GOBIN="$gobin" go install "$3@${2##*@}"
}
go_plugin protoc-gen-go google.golang.org/protobuf@v1.36.12 google.golang.org/protobuf/cmd/protoc-gen-go
go_plugin protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2 google.golang.org/grpc/cmd/protoc-gen-go-grpc
go_plugin protoc-gen-openapiv2 github.com/grpc-ecosystem/grpc-gateway/v2@v2.33.0 \
  github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2
go_plugin protoc-gen-doc github.com/pseudomuto/protoc-gen-doc@v1.5.1 github.com/pseudomuto/protoc-gen-doc/cmd/protoc-gen-doc
# The Go SDK's modules (pinned by sdk/go/go.sum), so its tests need no network.
(cd sdk/go && go mod download)
