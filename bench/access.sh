#!/usr/bin/env bash
# Access-control figures of issue 5: PermissionService.CheckPermission decisions/s and p99 over
# native gRPC (h2c) on cached data, next to GET /healthz over h2c with the same load, measured in
# the same run; then the same call authenticated with a personal API key instead of the JWT.
# Targets: >= 50,000 decisions/s with p99 < 2 ms; an API-key call costs at most 10% more time
# than the JWT call. Never fails on a miss.
# Called by bench/run.sh against the same server with AC_BASE, AC_TOKEN (an admin access token),
# AC_TMP and AC_OUT (markdown section to write). Knobs: BENCH_ACCESS_SECS (measured seconds per
# scenario, default 10), BENCH_ACCESS_CONNS (default 16), BENCH_ACCESS_STREAMS (per connection,
# default 2: 32 calls in flight, as the other scenarios).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${AC_BASE:?}" "${AC_TOKEN:?}" "${AC_TMP:?}" "${AC_OUT:?}"
secs=${BENCH_ACCESS_SECS:-10}
conns=${BENCH_ACCESS_CONNS:-16}
streams=${BENCH_ACCESS_STREAMS:-2}
dir="$AC_TMP/access"
mkdir -p "$dir"
auth="authorization: Bearer $AC_TOKEN"
api() { # method path json -> body; fails on non-200
  local code
  code=$(curl -sS -o "$dir/api.out" -w '%{http_code}' -X "$1" -H 'content-type: application/json' -H "$auth" -d "$3" "$AC_BASE$2")
  [ "$code" = 200 ] || { echo "access: $1 $2 answered $code" >&2; cat "$dir/api.out" >&2; exit 1; }
  cat "$dir/api.out"
}
jget() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v[k]
print(v)' "$1"; }

# --- Fixtures: a permission, a user holding it through a direct grant ---------------------------
api POST /v1/permissionGroups '{"name":"benchProjects","permissions":[{"name":"edit"}]}' >/dev/null
user_id=$(api POST /v1/users '{"user":{"email":"access-bench@example.com"}}' | jget user.id)
api POST /v1/permissionGrants "{\"permission\":\"benchProjects.edit\",\"grantee\":{\"userId\":\"$user_id\"}}" >/dev/null

# CheckPermissionRequest{subject{user_id}, permission} in a gRPC frame (see bench/run.sh).
python3 - "$user_id" "$dir/check.grpc" <<'PY'
import struct, sys
def field(tag, b): return bytes([tag, len(b)]) + b
msg = field(0x0a, field(0x0a, sys.argv[1].encode())) + field(0x12, b"benchProjects.edit")
open(sys.argv[2], "wb").write(b"\x00" + struct.pack(">I", len(msg)) + msg)
PY
url="$AC_BASE/mgpass.access.v1.PermissionService/CheckPermission"
curl -sS --http2-prior-knowledge -X POST -H 'content-type: application/grpc' -H 'te: trailers' -H "$auth" \
  --data-binary @"$dir/check.grpc" -D "$dir/h" -o "$dir/body" "$url"
tr -d '\r' <"$dir/h" | grep -qi '^grpc-status: 0' || { echo "access: CheckPermission failed" >&2; cat "$dir/h" >&2; exit 1; }
# The answer starts with field 1 (allowed) = true: 08 01 after the 5-byte frame header.
[ "$(od -An -tx1 -j5 -N2 "$dir/body" | tr -d ' \n')" = 0801 ] || { echo "access: the check was not allowed" >&2; exit 1; }
body_bytes=$(stat -c %s "$dir/body")
# A personal API key of the same admin with just the scope the call needs.
api_key=$(api POST /v1/me/apiKeys '{"name":"bench","scopes":["access.permissions.check"]}' | jget key)
key_auth="authorization: Bearer $api_key"

h2() { # key url [h2load args...]
  local key=$1 u=$2; shift 2
  h2load -t 1 -c "$conns" -m "$streams" -D "$secs" --warm-up-time 2 --log-file "$dir/$key.log" "$@" "$u" >"$dir/$key.out" 2>&1 \
    || { cat "$dir/$key.out" >&2; exit 1; }
  printf '  %-16s %s\n' "$key" "$(grep -o '[0-9.]* req/s' "$dir/$key.out" | head -n 1)"
}
echo "access: CheckPermission over h2c, $conns connections x $streams streams, ${secs}s per scenario"
h2 healthz-h2c "$AC_BASE/healthz"
h2 check "$url" -H 'content-type: application/grpc' -H 'te: trailers' -H "$auth" -d "$dir/check.grpc"
h2 check-apikey "$url" -H 'content-type: application/grpc' -H 'te: trailers' -H "$key_auth" -d "$dir/check.grpc"

python3 - "$dir" "$body_bytes" "$conns" "$streams" >"$AC_OUT" <<'PY'
import re, sys
d, body, conns, streams = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def figures(key):
    out = open(f"{d}/{key}.out").read()
    rps = float(re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out).group(1))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
    done, s2xx = int(m.group(3)), int(re.search(r"status codes: (\d+) 2xx", out).group(1))
    bad = done - s2xx + int(m.group(6)) + int(m.group(7))
    if key.startswith("check"):  # a gRPC error is a 200 without DATA: count the answers by their bytes
        data = int(re.search(r"traffic: .*, [\d.]+\w* \((\d+)\) data", out).group(1))
        bad += max(0, s2xx - data // body)
    lat = sorted(int(f[2]) for f in (l.split("\t") for l in open(f"{d}/{key}.log")) if len(f) >= 3 and f[1] != "-1")
    pct = lambda p: lat[min(len(lat) - 1, int(round(p / 100 * (len(lat) - 1))))] / 1000 if lat else float("nan")
    return rps, pct(50), pct(99), bad, done
h, c, k = figures("healthz-h2c"), figures("check"), figures("check-apikey")
print("## Permission decisions (issue 5)\n")
print(f"h2load over h2c, {conns} connections x {streams} streams; one subject holding the permission through a direct grant (cached after the first call).\n")
print("| scenario | req/s | p50 ms | p99 ms | failed |")
print("|---|---|---|---|---|")
print(f"| baseline GET /healthz | {h[0]:.0f} | {h[1]:.2f} | {h[2]:.2f} | {h[3]} of {h[4]} |")
print(f"| CheckPermission gRPC, JWT | {c[0]:.0f} | {c[1]:.2f} | {c[2]:.2f} | {c[3]} of {c[4]} |")
print(f"| CheckPermission gRPC, API key | {k[0]:.0f} | {k[1]:.2f} | {k[2]:.2f} | {k[3]} of {k[4]} |")
ok = c[0] >= 50000 and c[2] < 2 and c[3] == 0
print(f"\n- CheckPermission: {c[0]:.0f} decisions/s (target >= 50,000), p99 {c[2]:.2f} ms (target < 2 ms), {c[0] / h[0]:.0%} of /healthz: {'PASS' if ok else 'MISS'}")
extra = c[0] / k[0] - 1  # time per call with the key over time per call with the JWT, minus one
ok = extra <= 0.10 and k[3] == 0
print(f"- API key instead of JWT: {extra:+.1%} time per call (target <= +10%): {'PASS' if ok else 'MISS'}")
PY
cat "$AC_OUT"
