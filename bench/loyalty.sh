#!/usr/bin/env bash
# Loyalty figures of issue 6: partner events awarded per second, one per request at 64 connections
# and in batches of 1,000, next to pgbench's TPC-B-like rate on the same Postgres, in the same run.
# Every event is new (unique partner event ids) and matches one fixed-points rule, so each is a
# full award: event row, rule, cap-free ledger transaction of two entries, the user's balance row.
# Targets: single events >= 80% of pgbench TPC-B tps; batches >= 20,000 events/s. Never fails on
# a miss. Called by bench/run.sh with LO_BASE, LO_TOKEN (admin), LO_TMP, LO_OUT, LO_PG_URL (a
# superuser URL of the same cluster). Knobs: BENCH_LOYALTY_SECS (per scenario, default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${LO_BASE:?}" "${LO_TOKEN:?}" "${LO_TMP:?}" "${LO_OUT:?}" "${LO_PG_URL:?}"
secs=${BENCH_LOYALTY_SECS:-10}
dir="$LO_TMP/loyalty"
mkdir -p "$dir"
api() { # method path json -> body; fails on non-200
  local code
  code=$(curl -sS -o "$dir/api.out" -w '%{http_code}' -X "$1" -H 'content-type: application/json' \
    -H "authorization: Bearer $LO_TOKEN" -d "$3" "$LO_BASE$2")
  [ "$code" = 200 ] || { echo "loyalty: $1 $2 answered $code" >&2; cat "$dir/api.out" >&2; exit 1; }
  cat "$dir/api.out"
}
jget() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v[k]
print(v)' "$1"; }

# --- Fixtures: a partner and its key, one rule, one member -----------------------------------------
partner=$(api POST /v1/loyalty/partners '{"name":"Bench shop","eventTypes":["purchase"]}' | jget partner.id)
key=$(api POST "/v1/loyalty/partners/$partner/apiKeys" '{"name":"bench"}' | jget key)
api POST /v1/loyalty/rules '{"name":"seven per purchase","eventType":"purchase","fixedPoints":"7"}' >/dev/null
user=$(api POST /v1/users '{"user":{"email":"loyalty-bench@example.com"}}' | jget user.id)
occur=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# --- pgbench baseline on the same cluster ----------------------------------------------------------
pg_base=${LO_PG_URL%/*}
psql "$LO_PG_URL" -qAtc "CREATE DATABASE loyalty_pgbench"
pgbench -q -i -s 8 "$pg_base/loyalty_pgbench" >"$dir/pgbench-init.out" 2>&1
pgbench -n -c 8 -j 2 -T "$secs" "$pg_base/loyalty_pgbench" >"$dir/pgbench.out" 2>&1
tps=$(awk '/^tps/ {print $3; exit}' "$dir/pgbench.out")
echo "  pgbench TPC-B      $tps tps"

run() { # name connections batch-size
  wrk -t 1 -c "$2" -d 2s --timeout 30s -H 'content-type: application/json' -H "x-api-key: $key" -s bench/loyalty-event.lua \
    "$LO_BASE" -- "warm-$1" "$user" "$occur" "$3" >/dev/null
  wrk -t 1 -c "$2" -d "${secs}s" --timeout 30s --latency -H 'content-type: application/json' -H "x-api-key: $key" \
    -s bench/loyalty-event.lua "$LO_BASE" -- "$1" "$user" "$occur" "$3" >"$dir/$1.out"
  printf '  %-18s %s\n' "$1" "$(grep 'Requests/sec' "$dir/$1.out")"
}
echo "loyalty: events over REST with wrk, ${secs}s per scenario"
run single 64 1
run batch 4 1000

# --- Report ----------------------------------------------------------------------------------------
python3 - "$dir" "$tps" "$secs" >"$LO_OUT" <<'PY'
import re, sys
d, tps, secs = sys.argv[1], float(sys.argv[2]), sys.argv[3]
def wrk(name):
    o = open(f"{d}/{name}.out").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", o).group(1))
    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", o)
        v, u = float(m.group(1)), m.group(2)
        return v / 1000 if u == "us" else v * 1000 if u == "s" else v
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", o)
    errs = re.search(r"Socket errors: .*", o)
    total = int(re.search(r"(\d+) requests in", o).group(1))
    return rps, pct(50), pct(99), int(bad.group(1)) if bad else 0, total, errs.group(0) if errs else ""
s_rps, s50, s99, s_bad, s_total, s_err = wrk("single")
b_rps, b50, b99, b_bad, b_total, b_err = wrk("batch")
ratio = s_rps / tps
print("## Loyalty events (issue 6)\n")
print(f"wrk over REST with a partner key, {secs} s per scenario after 2 s of warm-up; every event new and awarded "
      "by one fixed-points rule; pgbench (`-c 8 -j 2`, scale 8, TPC-B-like) on the same Postgres just before.\n")
print("| scenario | connections | events/s | req/s | p50 ms | p99 ms | non-2xx |")
print("|---|---:|---:|---:|---:|---:|---:|")
print(f"| pgbench TPC-B-like (baseline) | 8 clients | {tps:.0f} tps | | | | |")
print(f"| single events `POST /v1/loyalty/events` | 64 | {s_rps:.0f} | {s_rps:.0f} | {s50:.2f} | {s99:.2f} | {s_bad} of {s_total} |")
print(f"| batches of 1,000 `POST /v1/loyalty/events:batchIngest` | 4 | {b_rps*1000:.0f} | {b_rps:.2f} | {b50:.1f} | {b99:.1f} | {b_bad} of {b_total} |")
print()
ok1 = ratio >= 0.8 and s_bad == 0
ok2 = b_rps * 1000 >= 20000 and b_bad == 0
print(f"- single events: {s_rps:.0f}/s = {ratio:.2f} of pgbench's {tps:.0f} tps (target >= 0.80): {'PASS' if ok1 else 'MISS'}")
print(f"- batches of 1,000: {b_rps*1000:.0f} events/s (target >= 20,000): {'PASS' if ok2 else 'MISS'}")
if s_err or b_err:
    print(f"- wrk socket errors: {s_err} {b_err}")
PY
cat "$LO_OUT"
