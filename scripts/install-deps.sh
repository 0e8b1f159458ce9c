#!/usr/bin/env bash
# Installs what building, running and testing mgpass needs and the machine lacks: Postgres server
# binaries and client and Chromium (Debian packages), the pinned Python test clients (aiosmtpd,
# authlib, requests), and the pinned npm tooling (buf, the grpc-web client, openid-client,
# playwright-core).
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
  || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # `npm install` rather than `npm ci`: the lock omits the optional buf binaries of other
  # platforms, which `npm ci` refuses; install still follows the lock for everything it lists.
  npm install --no-audit --no-fund --loglevel=error >/dev/null
fi
