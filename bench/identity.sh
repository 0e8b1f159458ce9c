#!/usr/bin/env bash
# Identity figures of issue 3, next to their baselines measured in the same run:
#   1. login/s through the server (POST /v1/auth/login, h2load) against the raw argon2id rate at
#      the same parameters on as many threads as cores (server/benches/argon2_rate.rs);
#   2. refresh-token grants/s (POST /v1/auth/token:refresh, wrk + bench/refresh.lua: every token
#      used once, each session a chain);
#   3. in-server access-token verification (KeyRing::verify) against ring's raw ES256 verify, on
#      one thread, in process (server/benches/es256_verify.rs).
# Called by bench/run.sh once its GetUser load is over, against the same server and Postgres, with:
#   ID_BASE (server URL), ID_SERVER_PID, ID_TOKEN (an admin access token), ID_TMP (a scratch dir),
#   ID_OUT (markdown section to write), ID_CPU_HZ.
# Knobs: BENCH_ID_DURATION (measured s per scenario, default 15), BENCH_ID_ROUNDS (default 3),
# BENCH_LOGIN_CONNS (default 4), BENCH_REFRESH_CONNS (default 16), BENCH_ARGON2_THREADS (default
# nproc), BENCH_VERIFY_SECS (per path, default 6). Never fails on a missed target.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

: "${ID_BASE:?}" "${ID_SERVER_PID:?}" "${ID_TOKEN:?}" "${ID_TMP:?}" "${ID_OUT:?}"
hz=${ID_CPU_HZ:-$(getconf CLK_TCK)}
duration=${BENCH_ID_DURATION:-15}
rounds=${BENCH_ID_ROUNDS:-3}
login_conns=${BENCH_LOGIN_CONNS:-4}
refresh_conns=${BENCH_REFRESH_CONNS:-16}
argon_threads=${BENCH_ARGON2_THREADS:-$(nproc)}
verify_secs=${BENCH_VERIFY_SECS:-6}
round_secs=$(( duration / rounds )); [ "$round_secs" -ge 1 ] || round_secs=1
warmup=2
runs="$ID_TMP/identity"
mkdir -p "$runs"
cpu_ticks() { awk '{print $14+$15}' "/proc/$ID_SERVER_PID/stat"; }

# --- The bench binaries (release profile) ---------------------------------------------------------
if [ -s "${ID_BENCH_JSON:-}" ]; then
  cp "$ID_BENCH_JSON" "$runs/cargo.json"
else
  echo "identity: building server/benches (cargo bench --no-run)"
  cargo bench -q -p mgpass-server --bench argon2_rate --bench es256_verify --no-run --message-format=json \
    >"$runs/cargo.json" 2>"$runs/cargo.err" || { cat "$runs/cargo.err" >&2; exit 1; }
fi
bench_bin() {
  python3 - "$runs/cargo.json" "$1" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == sys.argv[2] and m.get("executable"):
        print(m["executable"])
EOF
}
argon2_bin=$(bench_bin argon2_rate); verify_bin=$(bench_bin es256_verify)
[ -x "$argon2_bin" ] && [ -x "$verify_bin" ] || { echo "identity: bench binaries not found" >&2; exit 1; }

# --- A user to sign in as -------------------------------------------------------------------------
password="bench-login-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
code=$(curl -sS -o "$runs/user.json" -w '%{http_code}' -H 'content-type: application/json' \
  -H "authorization: Bearer $ID_TOKEN" \
  -d "{\"user\":{\"email\":\"login-bench@example.com\"},\"password\":\"$password\"}" "$ID_BASE/v1/users")
[ "$code" = 200 ] || { echo "identity: creating the login user answered $code" >&2; cat "$runs/user.json" >&2; exit 1; }
printf '{"identifier":"login-bench@example.com","password":"%s"}' "$password" >"$runs/login.json"
code=$(curl -sS -o "$runs/login.out" -w '%{http_code}' -H 'content-type: application/json' \
  -d @"$runs/login.json" "$ID_BASE/v1/auth/login")
grep -q '"refreshToken"' "$runs/login.out" && [ "$code" = 200 ] \
  || { echo "identity: login answered $code" >&2; cat "$runs/login.out" >&2; exit 1; }

# N fresh sessions' refresh tokens, one a line (signed in 4 at a time).
sessions() {
  python3 - "$ID_BASE" "$runs/login.json" "$1" >"$2" <<'EOF'
import concurrent.futures, json, sys, urllib.request
base, body, n = sys.argv[1], open(sys.argv[2], "rb").read(), int(sys.argv[3])
def one(_):
    req = urllib.request.Request(base + "/v1/auth/login", data=body, headers={"content-type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=30))["refreshToken"]
with concurrent.futures.ThreadPoolExecutor(4) as pool:
    for t in pool.map(one, range(n)):
        print(t)
EOF
}
# The chain works: a token refreshes once, and its successor again.
sessions 1 "$runs/chain.txt"
t0=$(head -n 1 "$runs/chain.txt")
t1=$(curl -fsS -H 'content-type: application/json' -d "{\"refreshToken\":\"$t0\"}" "$ID_BASE/v1/auth/token:refresh" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["refreshToken"])')
curl -fsS -o /dev/null -H 'content-type: application/json' -d "{\"refreshToken\":\"$t1\"}" "$ID_BASE/v1/auth/token:refresh" \
  || { echo "identity: a rotated refresh token was refused" >&2; exit 1; }

# --- 3. Token verification, in process (the server is idle meanwhile) --------------------------
echo "identity: ES256 verification in process, ${verify_secs}s per path"
"$verify_bin" --secs "$verify_secs" --rounds 3 | tee "$runs/verify.out" | grep -v '^RESULT'

# --- 1 and 2: interleaved rounds ------------------------------------------------------------------
echo "identity: $rounds interleaved rounds of ${round_secs}s: raw argon2id ($argon_threads threads)," \
  "login ($login_conns connections), refresh ($refresh_conns connections)"
for r in $(seq 1 "$rounds"); do
  "$argon2_bin" --threads "$argon_threads" --secs "$round_secs" >"$runs/argon2.$r.out"
  printf '  round %s  %-18s %s\n' "$r" argon2-raw "$(awk -F'\t' '/^RESULT/ {printf "%.1f hashes/s", $3}' "$runs/argon2.$r.out")"

  rm -f "$runs/login.$r.log"
  h2load -t 1 --h1 -c "$login_conns" -m 1 -D "$round_secs" --warm-up-time "$warmup" --log-file "$runs/login.$r.log" \
    -H 'content-type: application/json' -d "$runs/login.json" "$ID_BASE/v1/auth/login" >"$runs/login.$r.out" 2>&1 &
  hp=$!
  sleep "$warmup"; c0=$(cpu_ticks)
  wait "$hp" || { cat "$runs/login.$r.out" >&2; exit 1; }
  c1=$(cpu_ticks); echo "$((c1 - c0))" >"$runs/login.$r.cpu"
  printf '  round %s  %-18s %s\n' "$r" login "$(grep -o '[0-9.]* req/s' "$runs/login.$r.out" | head -n 1)"

  sessions "$refresh_conns" "$runs/warm.$r.txt"
  sessions $(( refresh_conns * 2 )) "$runs/tokens.$r.txt"
  wrk -t 1 -c "$refresh_conns" -d "${warmup}s" -s bench/refresh.lua "$ID_BASE" -- "$runs/warm.$r.txt" >/dev/null 2>&1 || true
  c0=$(cpu_ticks)
  wrk -t 1 -c "$refresh_conns" -d "${round_secs}s" --latency -s bench/refresh.lua "$ID_BASE" -- "$runs/tokens.$r.txt" \
    >"$runs/refresh.$r.out" 2>&1 || { cat "$runs/refresh.$r.out" >&2; exit 1; }
  c1=$(cpu_ticks); echo "$((c1 - c0))" >"$runs/refresh.$r.cpu"
  printf '  round %s  %-18s %s\n' "$r" refresh "$(awk '/Requests\/sec/ {print $2 " req/s"}' "$runs/refresh.$r.out")"
done

# --- Report ---------------------------------------------------------------------------------------
python3 - "$runs" "$rounds" "$hz" "$login_conns" "$refresh_conns" "$argon_threads" "$round_secs" "$warmup" \
  "$verify_secs" "$ID_OUT" <<'EOF'
import re, statistics, sys
runs, rounds, hz, lc, rc, threads, secs, warm, vsecs, out = sys.argv[1:]
rounds, hz = int(rounds), int(hz)
mean = statistics.mean
ok = lambda b: "PASS" if b else "MISS"

def result(path):
    return {l.split("\t")[1]: l.rstrip("\n").split("\t")[2:] for l in open(path) if l.startswith("RESULT")}

argon = [float(result(f"{runs}/argon2.{r}.out")["argon2"][0]) for r in range(1, rounds + 1)]
params = re.search(r"m=(\d+) t=(\d+) p=(\d+)", open(f"{runs}/argon2.1.out").read()).groups()

def wrk_ms(s):
    v, u = re.match(r"([\d.]+)(us|ms|s)", s).groups()
    return float(v) * {"us": 0.001, "ms": 1, "s": 1000}[u]

login_rps, lat, done_all, bad_all, ticks = [], [], 0, 0, 0
for r in range(1, rounds + 1):
    o = open(f"{runs}/login.{r}.out").read()
    login_rps.append(float(re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", o).group(1)))
    field = lambda name: int(re.search(r"requests: .*?(\d+) " + name, o).group(1))
    done, errored, timeout = field("done"), field("errored"), field("timeout")
    s2xx = int(re.search(r"status codes: (\d+) 2xx", o).group(1))
    done_all += done; bad_all += done - s2xx + errored + timeout
    ticks += int(open(f"{runs}/login.{r}.cpu").read())
    lat += [int(f[2]) for f in (l.split("\t") for l in open(f"{runs}/login.{r}.log")) if len(f) >= 3 and f[1] != "-1"]
lat.sort()
pct = lambda p: lat[min(len(lat) - 1, int(round(p / 100 * (len(lat) - 1))))] / 1000 if lat else float("nan")
login_cpu = ticks / hz * 1e6 / max(done_all, 1)

ref_rps, ref_p50, ref_p99, ref_done, ref_bad, ref_ticks = [], [], [], 0, 0, 0
for r in range(1, rounds + 1):
    o = open(f"{runs}/refresh.{r}.out").read()
    ref_rps.append(float(re.search(r"Requests/sec:\s+([\d.]+)", o).group(1)))
    ref_p50.append(wrk_ms(re.search(r"^\s+50%\s+(\S+)", o, re.M).group(1)))
    ref_p99.append(wrk_ms(re.search(r"^\s+99%\s+(\S+)", o, re.M).group(1)))
    ref_done += int(re.search(r"(\d+) requests in", o).group(1))
    n2 = re.search(r"Non-2xx or 3xx responses: (\d+)", o)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", o)
    ref_bad += (int(n2.group(1)) if n2 else 0) + (sum(int(g) for g in errs.groups()) if errs else 0)
    ref_ticks += int(open(f"{runs}/refresh.{r}.cpu").read())
ref_cpu = ref_ticks / hz * 1e6 / max(ref_done, 1)

v = result(f"{runs}/verify.out")
vr = {k: float(x[0]) for k, x in v.items()}
vrounds = {k: x[1] if len(x) > 1 else "" for k, x in v.items()}

a, l = mean(argon), mean(login_rps)
login_ratio = l / a
round_ratios = [x / y for x, y in zip(login_rps, argon)]
verify_ratio = vr["keyring"] / vr["ring"]
rounds_txt = lambda xs, f="{:.1f}": ", ".join(f.format(x) for x in xs)

table = [
    "| figure | tool | concurrency | rate | p50 ms | p99 ms | failed | server CPU us/op | per round |",
    "|---|---|---:|---:|---:|---:|---:|---:|---|",
    f"| raw argon2id hashes (m={params[0]} KiB, t={params[1]}, p={params[2]}) | `argon2_rate` bench | {threads} threads | {a:.1f}/s | | | | | {rounds_txt(argon)} |",
    f"| login `POST /v1/auth/login` | h2load (h1) | {lc} | {l:.1f}/s | {pct(50):.1f} | {pct(99):.1f} | {bad_all} of {done_all} | {login_cpu:.0f} | {rounds_txt(login_rps)} |",
    f"| refresh grant `POST /v1/auth/token:refresh` (chained) | wrk + refresh.lua (h1) | {rc} | {mean(ref_rps):.0f}/s | {mean(ref_p50):.2f} | {mean(ref_p99):.2f} | {ref_bad} of {ref_done} | {ref_cpu:.0f} | {rounds_txt(ref_rps, '{:.0f}')} |",
]
names = {"ring": "raw ES256 verify, ring `UnparsedPublicKey::verify`",
         "jwt": "`JwtVerifier::verify` (alg check + base64 + ring + JSON)",
         "keyring": "in-server path `KeyRing::verify::<AccessClaims>`",
         "authenticate": "`TokenIssuer::authenticate` (keyring + Principal)",
         "cached": "`KeyRing::verify` of a token already verified (cache by SHA-256)"}
for k in ("ring", "jwt", "keyring", "authenticate", "cached"):
    per = ", ".join(f"{float(x):.0f}" for x in vrounds[k].split())
    table.append(f"| {names[k]} | `es256_verify` bench | 1 thread | {vr[k]:.0f}/s ({1e6 / vr[k]:.1f} us) | | | | | {per} |")

summary = [
    f"- Login / raw argon2id: **{login_ratio:.2f}** ({l:.1f} / {a:.1f} per s); per round: {rounds_txt(round_ratios, '{:.2f}')}. "
    f"Every login answered 2xx: {'yes' if bad_all == 0 else f'no, {bad_all} failed'}.",
    f"- Refresh grants: **{mean(ref_rps):.0f}/s**, p50 {mean(ref_p50):.2f} ms, p99 {mean(ref_p99):.2f} ms, "
    f"{ref_bad} non-2xx/errors (a reused or lost token would show here).",
    f"- In-server verification / raw ring ES256: **{verify_ratio:.2f}** ({vr['keyring']:.0f} / {vr['ring']:.0f} per s); "
    f"the auth layer's token step (`authenticate`) costs {1e6 / vr['authenticate']:.1f} us per request, "
    f"{1e6 / vr['authenticate'] - 1e6 / vr['ring']:.1f} us more than the bare signature check.",
    "",
    "| target | figure | result |",
    "|---|---|---|",
    f"| login within 15% of raw argon2id (ratio >= 0.85) | {login_ratio:.2f} | {ok(login_ratio >= 0.85)} |",
    f"| refresh grants per second (reported, no threshold) | {mean(ref_rps):.0f}/s | {'PASS' if ref_bad == 0 else 'MISS (failures)'} |",
    f"| in-server token verification >= 80% of raw ES256 (ratio >= 0.80) | {verify_ratio:.2f} | {ok(verify_ratio >= 0.80)} |",
]
section = f"""## Identity: login, refresh, token verification (issue 3)

Written by `bench/identity.sh`, called by `bench/run.sh` after the GetUser load, against the same
server and Postgres (the server runs with `sessions.lockout_threshold` and
`sessions.ip_lockout_threshold` at 1000000 and `identity.registrations_per_ip_per_hour` 0).
{rounds} interleaved rounds, each: raw argon2id {secs} s, login {secs} s (+{warm} s warm-up), refresh
{secs} s (+{warm} s warm-up run on other sessions). Verification: in process, one thread, before
the rounds, {vsecs} s per path in 3 interleaved rounds.

{chr(10).join(table)}

{chr(10).join(summary)}

Commands (per round, in this order):

```
target/release/deps/argon2_rate-* --threads {threads} --secs {secs}
h2load -t 1 --h1 -c {lc} -m 1 -D {secs} --warm-up-time {warm} --log-file LOG -H 'content-type: application/json' -d login.json http://127.0.0.1:$PORT/v1/auth/login
wrk -t 1 -c {rc} -d {warm}s -s bench/refresh.lua http://127.0.0.1:$PORT -- warm.txt     # {rc} fresh sessions
wrk -t 1 -c {rc} -d {secs}s --latency -s bench/refresh.lua http://127.0.0.1:$PORT -- tokens.txt   # {int(rc) * 2} fresh sessions
# once, before the rounds:
target/release/deps/es256_verify-* --secs {vsecs} --rounds 3
```

- The raw argon2id rate is `Argon2::hash_password_into` at the server's parameters on {threads}
  threads (one per core: the hashes of concurrent logins run on tokio's blocking pool, and this
  machine has {threads} cores to run them), each call allocating its working memory as a login's
  verification does. Login adds, per request, the user lookup, the lockout check and reset, a
  session and a refresh-token insert in one transaction and an ES256 signature, and HTTP + JSON.
  `login.json` is one user's identifier and password; every login creates a session.
- Refresh: `bench/refresh.lua` keeps a pool of refresh tokens; each request takes one out, each
  200 answer puts its rotated token back, so every token is used once (a reuse would revoke the
  session and answer non-2xx). Each grant is a transaction (lock the token, read the session,
  mark the token used, insert its successor, touch the session), a user read and an ES256
  signature. wrk's p50/p99 are the mean of the rounds' `--latency` percentiles.
- Verification figures run in one process on one thread while the server idles: they compare
  code paths, not the machine under load (other sessions' jobs may still share the cores). `keyring` / `ring` is the share of the library's ES256
  rate the server's verification path keeps (its extra: header and kid parsing, base64, key lookup
  under a `tokio::sync::RwLock` taken twice, JSON into a `Value` then into `AccessClaims`).
"""
open(out, "w").write(section)
print()
print("\n".join(table))
print()
print("\n".join(summary))
EOF
