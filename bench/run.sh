#!/usr/bin/env bash
# Loads GetUser over native gRPC (h2c) and over REST (HTTP/1.1) against the release binary, with
# load generators that are not ours (h2load from nghttp2, wrk), next to a /healthz baseline measured
# in the same run. Prints a table and writes it to docs/benchmarks.md. Reports targets; never fails
# on a miss (it fails only when something does not work).
#
#   bench/run.sh                       (run by `make bench` after the build and install-deps --bench)
#
# Then bench/identity.sh (login vs raw argon2id, refresh grants, token verification vs raw ES256)
# runs against the same server; its section is printed and written after the GetUser one.
#
# Knobs (environment): BENCH_DURATION (measured seconds per scenario, default 15), BENCH_ROUNDS
# (interleaved rounds the duration is split into, default 3), BENCH_WARMUP (s, default 3),
# BENCH_CONNS (total concurrency, default 32), MGPASS_BIN (default target/release/mgpass),
# BENCH_OUT (markdown output, default docs/benchmarks.md; empty: do not write), BENCH_IDENTITY
# (0: skip bench/identity.sh; its own knobs are listed there), BENCH_OAUTH, BENCH_ACCESS,
# BENCH_LOYALTY (0: skip bench/oauth.sh, access.sh, loyalty.sh). The output is
# regenerated down to the "Hand-written notes" marker; what follows the marker is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

duration=${BENCH_DURATION:-15}
warmup=${BENCH_WARMUP:-3}
rounds=${BENCH_ROUNDS:-3}
conns=${BENCH_CONNS:-32}
bin=${MGPASS_BIN:-$root/target/release/mgpass}
out=${BENCH_OUT-docs/benchmarks.md}

for tool in h2load wrk curl python3 psql; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing; run scripts/install-deps.sh --bench" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "bench: $bin is missing; run make build" >&2; exit 1; }

tmp=$(mktemp -d /tmp/mgpass-bench.XXXXXX)
chmod 755 "$tmp" # the Postgres cluster belongs to `nobody` when run as root
server_pid=""
sampler_pid=""
cleanup() {
  local rc=$?
  set +e
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null && wait "$sampler_pid" 2>/dev/null
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$server_pid" 2>/dev/null && kill -KILL "$server_pid"
    wait "$server_pid" 2>/dev/null
  fi
  if [ "$rc" != 0 ] && [ -f "$tmp/server.log" ]; then
    echo "bench: failed (exit $rc); last lines of the server log:" >&2
    tail -n 30 "$tmp/server.log" >&2
  fi
  "$root/scripts/pg.sh" stop "$tmp/pg"
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The identity benchmarks' binaries (server/benches), built once before anything is started (a
# later build would recompile whatever changed in the tree meanwhile, mid-run).
if [ "${BENCH_IDENTITY:-1}" != 0 ] || [ "${BENCH_OAUTH:-1}" != 0 ]; then
  echo "bench: building server/benches"
  cargo bench -q -p mgpass-server --bench argon2_rate --bench es256_verify --bench jwt_sign_baselines --no-run --message-format=json \
    >"$tmp/benches.json" 2>"$tmp/benches.err" || { cat "$tmp/benches.err" >&2; exit 1; }
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
json_get() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v[k]
print(v)' "$1"; }
rss_kb() { awk -v k="$1:" '$1==k {print $2}' "/proc/$server_pid/status"; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$server_pid/stat"; }

# --- Postgres and the server ---------------------------------------------------------------------
pg_port=$(free_port)
PG_FSYNC=off scripts/pg.sh start "$tmp/pg" "$pg_port"
db_url=$(scripts/pg.sh url "$tmp/pg" "$pg_port")

port=$(free_port)
base="http://127.0.0.1:$port"
admin_password="bench-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
# A throwaway master key (it seals this run's signing keys), and a clean environment, as the
# tests have: no stray MGPASS_* / DATABASE_URL from the caller's shell.
master_key=$("$bin" keys generate-master)
env -i PATH="$PATH" MGPASS_SECRETS__MASTER_KEY="$master_key" \
  MGPASS_DATABASE__URL="$db_url" \
  MGPASS_SERVER__LISTEN="127.0.0.1:$port" \
  MGPASS_BOOTSTRAP__ADMIN_PASSWORD="$admin_password" \
  MGPASS_TOKENS__ACCESS_TOKEN_TTL_SECS=3600 \
  MGPASS_SESSIONS__LOCKOUT_THRESHOLD=1000000 \
  MGPASS_SESSIONS__IP_LOCKOUT_THRESHOLD=1000000 \
  MGPASS_IDENTITY__REGISTRATIONS_PER_IP_PER_HOUR=0 \
  RUST_LOG=warn \
  "$bin" serve --migrate --bootstrap >"$tmp/server.log" 2>&1 &
server_pid=$!

for i in $(seq 1 600); do
  if curl -fsS -o /dev/null "$base/readyz" 2>/dev/null; then break; fi
  kill -0 "$server_pid" 2>/dev/null || { echo "bench: mgpass exited during start" >&2; exit 1; }
  [ "$i" = 600 ] && { echo "bench: mgpass did not become ready within 60 s" >&2; exit 1; }
  sleep 0.1
done
rss_ready_kb=$(rss_kb VmRSS)

# --- Login, one user, the request bodies ---------------------------------------------------------
login=$(curl -fsS -H 'content-type: application/json' \
  -d "{\"identifier\":\"admin@admin.com\",\"password\":\"$admin_password\"}" "$base/v1/auth/login")
token=$(json_get accessToken <<<"$login")
created=$(curl -fsS -H 'content-type: application/json' -H "authorization: Bearer $token" \
  -d '{"user":{"email":"bench@example.com"}}' "$base/v1/users")
user_id=$(json_get user.id <<<"$created")

# GetUserRequest{user_id}: field 1, wire type 2 (tag 0x0a), varint length, bytes; gRPC frame:
# uncompressed flag 0x00, 4-byte big-endian length, message.
python3 - "$user_id" "$tmp/getuser.grpc" <<'EOF'
import struct, sys
uid = sys.argv[1].encode()
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F; n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n: return bytes(out)
msg = b"\x0a" + varint(len(uid)) + uid
open(sys.argv[2], "wb").write(b"\x00" + struct.pack(">I", len(msg)) + msg)
EOF

grpc_url="$base/mgpass.identity.v1.UserService/GetUser"
rest_url="$base/v1/users/$user_id"
health_url="$base/healthz"
auth="authorization: Bearer $token"

# One real gRPC call: HTTP 200 is not enough, grpc-status (a trailer) must be 0.
check_grpc() {
  curl -sS --http2-prior-knowledge -X POST -H 'content-type: application/grpc' -H 'te: trailers' \
    -H "$auth" --data-binary @"$tmp/getuser.grpc" -D "$tmp/grpc.headers" -o "$tmp/grpc.body" "$grpc_url"
  local st
  st=$(tr -d '\r' <"$tmp/grpc.headers" | awk -F': *' 'tolower($1)=="grpc-status" {print $2}' | tail -n 1)
  if [ "$st" != 0 ]; then
    echo "bench: GetUser over gRPC answered grpc-status '${st:-none}':" >&2
    cat "$tmp/grpc.headers" >&2
    exit 1
  fi
}
check_grpc
grpc_body_bytes=$(stat -c %s "$tmp/grpc.body")
grep -q "$user_id" "$tmp/grpc.body" || { echo "bench: the gRPC answer does not carry the user id" >&2; exit 1; }
rest_code=$(curl -sS -o "$tmp/rest.body" -w '%{http_code}' -H "$auth" "$rest_url")
[ "$rest_code" = 200 ] && grep -q "$user_id" "$tmp/rest.body" \
  || { echo "bench: GET /v1/users/{id} answered $rest_code" >&2; cat "$tmp/rest.body" >&2; exit 1; }

# A few warm-up calls on every path, then the idle figure.
for _ in $(seq 1 20); do
  curl -fsS -o /dev/null "$health_url"
  curl -fsS -o /dev/null -H "$auth" "$rest_url"
  curl -fsS -o /dev/null --http2-prior-knowledge -X POST -H 'content-type: application/grpc' \
    -H 'te: trailers' -H "$auth" --data-binary @"$tmp/getuser.grpc" "$grpc_url"
done
sleep 1
rss_idle_kb=$(rss_kb VmRSS)

# Peak RSS: VmHWM at the end, plus a VmRSS sampler while the load runs.
( peak=0
  while kill -0 "$server_pid" 2>/dev/null; do
    r=$(awk '$1=="VmRSS:" {print $2}' "/proc/$server_pid/status" 2>/dev/null || echo 0)
    [ "${r:-0}" -gt "$peak" ] && { peak=$r; echo "$peak" >"$tmp/rss.peak"; }
    sleep 0.2
  done ) &
sampler_pid=$!

# --- Load ----------------------------------------------------------------------------------------
# The capacity of a shared 2-core VM drifts by tens of percent within a minute, so the scenarios
# are interleaved: every round runs each of them once for duration/rounds seconds, and the figures
# aggregate the rounds. A drift then hits gRPC and REST alike instead of favouring whichever ran
# first.
hz=$(getconf CLK_TCK)
runs="$tmp/runs" # one directory entry set per scenario run: KEY.ROUND.{out,log,cpu}
mkdir -p "$runs"
round_secs=$(( duration / rounds ))
[ "$round_secs" -ge 1 ] || round_secs=1
round_warmup=1

# h2load: one scenario run; its summary, its per-request log and the server's CPU ticks are kept.
h2load_run() {
  local key=$1 round=$2 wu=$3; shift 3
  local c0 c1
  local hp
  h2load -t 1 -D "$round_secs" --warm-up-time "$wu" --log-file "$runs/$key.$round.log" "$@" >"$runs/$key.$round.out" 2>&1 &
  hp=$!
  sleep "$wu" # the server's CPU time is counted over the measured window only
  c0=$(cpu_ticks)
  if ! wait "$hp"; then cat "$runs/$key.$round.out" >&2; exit 1; fi
  c1=$(cpu_ticks)
  echo "$((c1 - c0))" >"$runs/$key.$round.cpu"
  printf '  round %s  %-18s %s\n' "$round" "$key" "$(grep -o '[0-9.]* req/s' "$runs/$key.$round.out" | head -n 1)"
}

# wrk: no warm-up option, so a short unrecorded run first; CPU ticks of the measured run only.
wrk_run() {
  local key=$1 round=$2 wu=$3; shift 3
  local c0 c1
  wrk -t 1 -c "$conns" -d "${wu}s" "$@" >/dev/null 2>&1 || true
  c0=$(cpu_ticks)
  wrk -t 1 -c "$conns" -d "${round_secs}s" --latency "$@" >"$runs/$key.$round.out" 2>&1 \
    || { cat "$runs/$key.$round.out" >&2; exit 1; }
  c1=$(cpu_ticks)
  echo "$((c1 - c0))" >"$runs/$key.$round.cpu"
  printf '  round %s  %-18s %s\n' "$round" "$key" "$(awk '/Requests\/sec/ {print $2 " req/s"}' "$runs/$key.$round.out")"
}

h2opts="-c $conns -m 1"
loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench: mgpass $(git rev-parse --short HEAD 2>/dev/null || echo '?') on $(nproc) cores; $conns concurrent requests" \
  "in every scenario ($conns connections x 1 stream); $rounds interleaved rounds of ${round_secs}s per scenario" \
  "(+${warmup}s warm-up in round 1, ${round_warmup}s after)"
for round in $(seq 1 "$rounds"); do
  wu=$round_warmup
  [ "$round" = 1 ] && wu=$warmup
  h2load_run healthz-h1 "$round" "$wu" --h1 $h2opts "$health_url"
  h2load_run healthz-h2c "$round" "$wu" $h2opts "$health_url"
  h2load_run grpc "$round" "$wu" $h2opts \
    -H 'content-type: application/grpc' -H 'te: trailers' -H "$auth" -d "$tmp/getuser.grpc" "$grpc_url"
  h2load_run rest-h1 "$round" "$wu" --h1 $h2opts -H "$auth" "$rest_url"
  wrk_run healthz-wrk "$round" "$wu" "$health_url"
  wrk_run rest-wrk "$round" "$wu" -H "$auth" "$rest_url"
done
check_grpc # still answering grpc-status 0 after the load

D="-D $round_secs --warm-up-time $warmup|$round_warmup"
cat >"$tmp/commands.txt" <<CMDS
# $rounds rounds; in each, every command below once, in this order. A|B: A in round 1, B after.
# LOG: a fresh per-request log; PORT: a free port picked at start.
h2load -t 1 $D --log-file LOG --h1 $h2opts http://127.0.0.1:\$PORT/healthz
h2load -t 1 $D --log-file LOG $h2opts http://127.0.0.1:\$PORT/healthz
h2load -t 1 $D --log-file LOG $h2opts -H 'content-type: application/grpc' -H 'te: trailers' -H 'authorization: Bearer \$TOKEN' -d getuser.grpc http://127.0.0.1:\$PORT/mgpass.identity.v1.UserService/GetUser
h2load -t 1 $D --log-file LOG --h1 $h2opts -H 'authorization: Bearer \$TOKEN' http://127.0.0.1:\$PORT/v1/users/\$USER_ID
wrk -t 1 -c $conns -d ${warmup}s|${round_warmup}s http://127.0.0.1:\$PORT/healthz; wrk -t 1 -c $conns -d ${round_secs}s --latency http://127.0.0.1:\$PORT/healthz
wrk -t 1 -c $conns -d ${warmup}s|${round_warmup}s -H 'authorization: Bearer \$TOKEN' http://127.0.0.1:\$PORT/v1/users/\$USER_ID; wrk -t 1 -c $conns -d ${round_secs}s --latency -H 'authorization: Bearer \$TOKEN' http://127.0.0.1:\$PORT/v1/users/\$USER_ID
CMDS

# One row per scenario: req/s = mean over rounds; h2load percentiles over every request of every
# round; wrk percentiles = mean of the rounds' percentiles (wrk gives no per-request log).
python3 - "$runs" "$rounds" "$conns" "$hz" "$grpc_body_bytes" >"$tmp/results.tsv" <<'EOF'
import re, statistics, sys
runs, rounds, conns, hz, grpc_bytes = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
scenarios = [  # key, scenario, tool, kind
    ("healthz-h1", "baseline GET /healthz", "h2load (h1)", "h2load"),
    ("healthz-h2c", "baseline GET /healthz", "h2load (h2c)", "h2load"),
    ("grpc", "GetUser gRPC", "h2load (h2c)", "h2load"),
    ("rest-h1", "GetUser REST", "h2load (h1)", "h2load"),
    ("healthz-wrk", "baseline GET /healthz", "wrk (h1)", "wrk"),
    ("rest-wrk", "GetUser REST", "wrk (h1)", "wrk"),
]
def wrk_ms(s):
    v, u = re.match(r"([\d.]+)(us|ms|s)", s).groups()
    return float(v) * {"us": 0.001, "ms": 1, "s": 1000}[u]
for key, scenario, tool, kind in scenarios:
    rps, done_all, bad_all, ticks, lat, p50s, p99s, notes = [], 0, 0, 0, [], [], [], []
    for r in range(1, rounds + 1):
        out = open(f"{runs}/{key}.{r}.out").read()
        ticks += int(open(f"{runs}/{key}.{r}.cpu").read())
        if kind == "h2load":
            rps.append(float(re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out).group(1)))
            m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
            done, errored, timeout = int(m.group(3)), int(m.group(6)), int(m.group(7))
            s2xx = int(re.search(r"status codes: (\d+) 2xx", out).group(1))
            bad = done - s2xx + errored + timeout
            if key == "grpc":
                # A gRPC error is HTTP 200 with a trailers-only answer (no DATA), which h2load counts
                # as 2xx. Every good GetUser answer carries the same message, so DATA bytes must be
                # (2xx answers) x (size of one good answer).
                data = int(re.search(r"traffic: .*, [\d.]+\w* \((\d+)\) data", out).group(1))
                missing = s2xx - data // grpc_bytes
                if missing > 0:
                    bad += missing
                    notes.append(f"round {r}: {missing} answers without the message (gRPC errors)")
            for line in open(f"{runs}/{key}.{r}.log"):
                f = line.split("\t")
                if len(f) >= 3 and f[1] != "-1":
                    lat.append(int(f[2]))
        else:
            rps.append(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)))
            p50s.append(wrk_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)))
            p99s.append(wrk_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)))
            done = int(re.search(r"(\d+) requests in", out).group(1))
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
            bad = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(g) for g in errs.groups()) if errs else 0)
        done_all += done
        bad_all += bad
    if kind == "h2load":
        lat.sort()
        pct = lambda p: lat[min(len(lat) - 1, int(round(p / 100 * (len(lat) - 1))))] / 1000 if lat else float("nan")
        p50, p99 = pct(50), pct(99)
    else:
        p50, p99 = statistics.mean(p50s), statistics.mean(p99s)
    cpu_us = ticks / hz * 1e6 / max(done_all, 1)
    bad_txt = str(bad_all) + (f" ({'; '.join(notes)})" if notes else "")
    print("\t".join([key, scenario, tool, conns, f"{statistics.mean(rps):.0f}", f"{p50:.2f}", f"{p99:.2f}",
                     bad_txt, f"{cpu_us:.0f}", " ".join(f"{x:.0f}" for x in rps)]))
EOF

rss_hwm_kb=$(rss_kb VmHWM)
kill "$sampler_pid" 2>/dev/null; wait "$sampler_pid" 2>/dev/null || true
sampler_pid=""
rss_sampled_kb=$(cat "$tmp/rss.peak" 2>/dev/null || echo 0)

# --- Identity (issue 3): after the RSS figures, which it would otherwise move ----------------------
identity_md=""
if [ "${BENCH_IDENTITY:-1}" != 0 ]; then
  identity_md="$tmp/identity.md"
  ID_BASE=$base ID_SERVER_PID=$server_pid ID_TOKEN=$token ID_TMP=$tmp ID_OUT=$identity_md ID_CPU_HZ=$hz ID_BENCH_JSON="$tmp/benches.json" \
    bench/identity.sh
fi

# --- OAuth (issue 4): the token endpoint against a bare signing handler ---------------------------
oauth_md=""
if [ "${BENCH_OAUTH:-1}" != 0 ]; then
  oauth_md="$tmp/oauth.md"
  OA_BASE=$base OA_SERVER_PID=$server_pid OA_TOKEN=$token OA_TMP=$tmp OA_OUT=$oauth_md OA_CPU_HZ=$hz OA_BENCH_JSON="$tmp/benches.json" \
    bench/oauth.sh
fi

# --- Access control (issue 5): CheckPermission decisions on cached data ---------------------------
access_md=""
if [ "${BENCH_ACCESS:-1}" != 0 ]; then
  access_md="$tmp/access.md"
  AC_BASE=$base AC_TOKEN=$token AC_TMP=$tmp AC_OUT=$access_md bench/access.sh
fi

# --- Loyalty (issue 6): partner events awarded per second, next to pgbench -------------------------
loyalty_md=""
if [ "${BENCH_LOYALTY:-1}" != 0 ]; then
  loyalty_md="$tmp/loyalty.md"
  LO_BASE=$base LO_TOKEN=$token LO_TMP=$tmp LO_OUT=$loyalty_md LO_PG_URL=$db_url bench/loyalty.sh
fi

# --- Report --------------------------------------------------------------------------------------
export BENCH_RESULTS="$tmp/results.tsv" BENCH_COMMANDS="$tmp/commands.txt" BENCH_OUT_FILE=$out \
  BENCH_RSS_READY=$rss_ready_kb BENCH_RSS_IDLE=$rss_idle_kb BENCH_RSS_HWM=$rss_hwm_kb \
  BENCH_RSS_SAMPLED=$rss_sampled_kb BENCH_WARMUP_S=$warmup BENCH_ROUND_WARMUP_S=$round_warmup \
  BENCH_ROUNDS=$rounds BENCH_ROUND_S=$round_secs BENCH_IDENTITY_MD=$identity_md BENCH_OAUTH_MD=$oauth_md BENCH_ACCESS_MD=$access_md BENCH_LOYALTY_MD=$loyalty_md
BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null | head -n 1)" ]; then
  BENCH_COMMIT="$BENCH_COMMIT + uncommitted changes in the working tree"
fi
BENCH_MACHINE="$(nproc) cores (\`nproc\`), $(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {printf "%.0f GB RAM", $2/1048576}' /proc/meminfo), kernel $(uname -r); load average before the load: $loadavg_before (anything else running competes for the same cores)"
BENCH_TOOLS="$(h2load --version 2>&1 | head -n 1), wrk $(wrk -v 2>&1 | head -n 1 | awk '{print $2}'), Postgres $(psql --version | awk '{print $3}') (throwaway cluster, fsync off)"
export BENCH_COMMIT BENCH_MACHINE BENCH_TOOLS
python3 - <<'EOF'
import datetime, os
e = os.environ
rows = {}
order = []
for line in open(e["BENCH_RESULTS"]):
    key, *rest = line.rstrip("\n").split("\t")
    rows[key] = rest  # scenario, tool, conc, rps, p50, p99, failed, cpu, per-round rps
    order.append(key)
rps = lambda k: float(rows[k][3])
per_round = lambda k: [float(x) for x in rows[k][8].split()]
grpc, rest, rest_wrk = rps("grpc"), rps("rest-h1"), rps("rest-wrk")
h1, h2, hw = rps("healthz-h1"), rps("healthz-h2c"), rps("healthz-wrk")
ratio = rest / grpc
round_ratios = [r / g for r, g in zip(per_round("rest-h1"), per_round("grpc"))]
mb = lambda k: int(e[k] or 0) / 1024
idle, ready, hwm, sampled = mb("BENCH_RSS_IDLE"), mb("BENCH_RSS_READY"), mb("BENCH_RSS_HWM"), mb("BENCH_RSS_SAMPLED")
ok = lambda b: "PASS" if b else "MISS"

table = ["| scenario | tool | concurrency | req/s | p50 ms | p99 ms | non-2xx/failed | server CPU us/req | req/s per round |",
         "|---|---|---:|---:|---:|---:|---:|---:|---|"]
table += ["| " + " | ".join(rows[k][:8] + [", ".join(rows[k][8].split())]) + " |" for k in order]
summary = [
    f"- REST/gRPC throughput ratio (h2load for both): **{ratio:.2f}** ({rest:.0f} / {grpc:.0f} req/s);"
    f" per round: {', '.join(f'{x:.2f}' for x in round_ratios)}; with wrk for REST: {rest_wrk / grpc:.2f}",
    f"- Share of the /healthz baseline: gRPC GetUser {grpc / h2:.1%} of h2c /healthz; REST GetUser"
    f" {rest / h1:.1%} of HTTP/1.1 /healthz with h2load, {rest_wrk / hw:.1%} with wrk",
    f"- Idle RSS (after ready, one login, one user created and 60 warm-up calls): **{idle:.1f} MB**"
    f" (right after /readyz, before the first login: {ready:.1f} MB)",
    f"- Peak RSS: **{hwm:.1f} MB** (VmHWM over the process life; highest VmRSS sampled every 0.2 s"
    f" during the load: {sampled:.1f} MB)",
    "",
    "| target | figure | result |",
    "|---|---|---|",
    f"| REST within 15% of gRPC (ratio >= 0.85) | {ratio:.2f} | {ok(ratio >= 0.85)} |",
    f"| idle RSS < 30 MB | {idle:.1f} MB | {ok(idle < 30)} |",
]
print()
print("\n".join(table))
print()
print("\n".join(summary))
identity = open(e["BENCH_IDENTITY_MD"]).read() if e.get("BENCH_IDENTITY_MD") else ""
if identity:
    print()
    print(identity)
oauth = open(e["BENCH_OAUTH_MD"]).read() if e.get("BENCH_OAUTH_MD") else ""
access = open(e["BENCH_ACCESS_MD"]).read() if e.get("BENCH_ACCESS_MD") else ""
loyalty = open(e["BENCH_LOYALTY_MD"]).read() if e.get("BENCH_LOYALTY_MD") else ""
if oauth:
    print()
    print(oauth)
out = e["BENCH_OUT_FILE"]
if not out:
    raise SystemExit(0)

now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
cmds = open(e["BENCH_COMMANDS"]).read().rstrip("\n")
conc = rows[order[0]][2]
n, secs = e["BENCH_ROUNDS"], e["BENCH_ROUND_S"]
doc = f"""# Benchmarks

Written by `bench/run.sh` (`make bench`); the figures below are from its last run. Re-run to
refresh them; compare runs by their ratios, not by their absolute numbers.

## Last run

- Date: {now}
- Commit: {e["BENCH_COMMIT"]}
- Machine: {e["BENCH_MACHINE"]}
- Tools: {e["BENCH_TOOLS"]}
- Server: `target/release/mgpass serve --migrate --bootstrap`, `RUST_LOG=warn`, default pool size
  (16), access tokens of 3600 s; one user, fetched by id again and again with the admin's bearer
  token.
- Load: {conc} concurrent requests in every scenario ({conc} connections x 1 stream, HTTP/1.1 and
  h2c alike), one load-generator thread; {n} interleaved rounds, each running every scenario once
  for {secs} s after a warm-up ({e["BENCH_WARMUP_S"]} s in round 1, {e["BENCH_ROUND_WARMUP_S"]} s after): {int(n) * int(secs)} s measured per scenario.

{chr(10).join(table)}

{chr(10).join(summary)}

req/s is the mean of the rounds. h2load's percentiles are computed over every request of every
measured window from its per-request `--log-file`; wrk's are the mean of the rounds' `--latency`
percentiles. "non-2xx/failed" counts non-2xx answers, errors and timeouts; for gRPC it also counts
answers without the GetUser message (a gRPC error is HTTP 200 with a trailers-only answer, which
h2load counts as 2xx), and one call is checked for `grpc-status: 0` before and after the load.
"server CPU us/req" is the server process's user+system CPU time over the measured windows divided
by the requests done in them: what one request costs the server, whatever else the machine was
doing.

## Commands

```
{cmds}
```

`getuser.grpc` is the framed `GetUserRequest{{user_id}}`: `00`, the 4-byte big-endian length, then
`0a <varint length> <user id>`. `$TOKEN` is the admin's access token from `POST /v1/auth/login`.

## How to read these figures

- The load generator shares the 2 cores with the server and Postgres: every figure is "what this
  machine does with all three on it", not the server's capacity. Absolute req/s vary from run to
  run (and within a run: see the rounds); compare ratios within one run (REST/gRPC,
  GetUser/healthz) and the CPU time per request.
- /healthz (no auth, no database) is the ceiling of the HTTP stack plus the load generator at that
  moment. GetUser adds an ES256 verification of the bearer token, the auth layer, a primary-key
  select and the encoding of the answer (protobuf, or JSON through the transcoder for REST).
- Reference limits measured on this machine size (`/work/shared/notes/stack.md`): argon2id ~34 ms
  per hash (~30/s per core; only login pays it, not GetUser), ES256 verify ~55 us (~18k/s per
  core), Postgres primary-key select ~50k tps (pgbench, 8 clients), bare axum POST handler
  ~87k req/s with wrk (64 connections).
- Idle RSS is read after the first login: argon2id's 19 MiB working memory is allocated by every
  hash (bootstrap and login) and may stay resident in the allocator afterwards.
"""
if identity:
    doc += "\n" + identity
if oauth:
    doc += "\n" + oauth
if access:
    doc += "\n" + access
if loyalty:
    doc += "\n" + loyalty
# Everything from the marker on is written by hand (analysis, profiles) and kept across runs.
marker = "<!-- Hand-written notes below: bench/run.sh keeps everything from this line on. -->"
try:
    old = open(out).read()
except FileNotFoundError:
    old = ""
kept = old[old.index(marker):] if marker in old else marker + "\n"
open(out, "w").write(doc + "\n" + kept)
print(f"\nbench: wrote {out}")
EOF
