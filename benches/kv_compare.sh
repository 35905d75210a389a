#!/usr/bin/env bash
# The kv example against redis-server, side by side in one run, driven by redis-benchmark.
#
#   flock /tmp/evloop-heavy.lock benches/kv_compare.sh [N [ROUNDS]]
#
# N requests per test (default 1000000), ROUNDS interleaved rounds (default 1; the order of
# the two servers alternates each round). Needs redis-server, redis-benchmark (Debian:
# apt-get install redis-server redis-tools) and a release build of the example
# (cargo build --release --example kv). Both servers are pinned to CPU 0, redis-benchmark to
# CPU 1. For each load (-c 50 -P 1, -c 50 -P 16, -c 1000 -P 1) and each test (PING inline
# and multibulk, SET, GET, INCR, MSET of 10 keys) it runs both servers and reports
# redis-benchmark's req/s, p50 and p99, and the server's CPU time per request from
# /proc/PID/stat (utime + stime, before and after the run; clock ticks of 10 ms).
# Output: the raw redis-benchmark output in benches/results/DATE-kv-compare-raw.txt; one
# line per run, then medians over rounds and the median paired CPU ratio kv/redis, on
# stdout and in benches/results/DATE-kv-compare.txt.
set -euo pipefail

N=${1:-1000000}
ROUNDS=${2:-1}
cd "$(dirname "$0")/.."
KV=target/release/examples/kv
REDIS_PORT=${REDIS_PORT:-6399}
KV_PORT=${KV_PORT:-6398}
TESTS=(ping_inline ping_mbulk set get incr mset)
LOADS=("-c 50 -P 1" "-c 50 -P 16" "-c 1000 -P 1")
DAY=$(date +%F)
RAW=benches/results/$DAY-kv-compare-raw.txt
TABLE=benches/results/$DAY-kv-compare.txt

for tool in redis-server redis-benchmark redis-cli taskset; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found" >&2; exit 1; }
done
[ -x "$KV" ] || { echo "error: $KV missing: cargo build --release --example kv" >&2; exit 1; }
# 1,000 clients need 1,000 descriptors on each side, plus a few.
ulimit -n 4096

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

taskset -c 0 redis-server --save '' --appendonly no --port "$REDIS_PORT" --bind 127.0.0.1 \
    --logfile /dev/null --daemonize no &
PIDS+=($!)
REDIS_PID=$!
RUST_LOG=warn taskset -c 0 "$KV" --addr "127.0.0.1:$KV_PORT" >/dev/null &
PIDS+=($!)
KV_PID=$!
for port in "$REDIS_PORT" "$KV_PORT"; do
    for _ in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    redis-cli -p "$port" ping >/dev/null || { echo "error: nothing answers on port $port" >&2; exit 1; }
done

# CPU time (user + system) of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

{
    echo "# $(date -u +%FT%TZ) N=$N rounds=$ROUNDS $(redis-server --version | cut -d' ' -f1-3) kv=$(git rev-parse --short HEAD)"
    echo "# $(uname -srm), $(nproc) CPUs; servers on CPU 0, redis-benchmark on CPU 1"
} | tee "$RAW" >"$TABLE"
RUNS=$(mktemp)
printf '%-5s %-12s %-12s %-6s %12s %8s %8s %11s\n' round load test server req/s p50_ms p99_ms cpu_us/req | tee -a "$TABLE"

for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="redis kv"; else order="kv redis"; fi
    for load in "${LOADS[@]}"; do
        for test in "${TESTS[@]}"; do
            for server in $order; do
                if [ "$server" = redis ]; then pid=$REDIS_PID port=$REDIS_PORT; else pid=$KV_PID port=$KV_PORT; fi
                redis-cli -p "$port" flushall >/dev/null
                before=$(cpu_ticks "$pid")
                # shellcheck disable=SC2086  # $load is several flags
                out=$(taskset -c 1 redis-benchmark -p "$port" -t "$test" -n "$N" $load --csv 2>&1)
                after=$(cpu_ticks "$pid")
                { echo "## round $round $server $test $load"; echo "$out"; } >>"$RAW"
                # "test","rps","avg","min","p50","p95","p99","max"
                line=$(echo "$out" | grep -v '^"test"' | grep '^"' | tail -1 | tr -d '"')
                rps=$(echo "$line" | cut -d, -f2)
                p50=$(echo "$line" | cut -d, -f5)
                p99=$(echo "$line" | cut -d, -f7)
                cpu=$(awk -v t=$((after - before)) -v hz="$HZ" -v n="$N" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
                printf '%-5s %-12s %-12s %-6s %12s %8s %8s %11s\n' "$round" "${load// /}" "$test" "$server" \
                    "$rps" "$p50" "$p99" "$cpu" | tee -a "$TABLE" >>"$RUNS"
                tail -1 "$TABLE"
                if echo "$out" | grep -qi 'error'; then
                    echo "error reported by redis-benchmark against $server:" >&2
                    echo "$out" | grep -i error | head -3 >&2
                fi
            done
        done
    done
done

# Medians over rounds per (load, test, server), and the median of the per-round ratios
# kv/redis of CPU per request.
{
    echo
    echo "medians over $ROUNDS round(s); cpu ratio = median over rounds of kv/redis"
    printf '%-12s %-12s %12s %12s %8s %8s %8s %8s %9s %9s %9s\n' load test redis_req/s kv_req/s \
        redis_p50 kv_p50 redis_p99 kv_p99 redis_cpu kv_cpu cpu_ratio
    awk '
        function median(list,    n, a, i, j, t) {
            n = split(list, a, " ")
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        {
            key = $2 " " $3
            if (!(key in seen)) { seen[key] = 1; keys[++nkeys] = key }
            rps[key, $4] = rps[key, $4] " " $5; p50[key, $4] = p50[key, $4] " " $6
            p99[key, $4] = p99[key, $4] " " $7; cpu[key, $4] = cpu[key, $4] " " $8
            cpus[$1, key, $4] = $8
            rounds[$1] = 1
        }
        END {
            for (k = 1; k <= nkeys; k++) {
                key = keys[k]; ratios = ""
                for (r in rounds) if (cpus[r, key, "redis"] > 0) ratios = ratios " " cpus[r, key, "kv"] / cpus[r, key, "redis"]
                split(key, lt, " ")
                printf "%-12s %-12s %12.0f %12.0f %8.3f %8.3f %8.3f %8.3f %9.2f %9.2f %9.2f\n", lt[1], lt[2],
                    median(rps[key, "redis"]), median(rps[key, "kv"]), median(p50[key, "redis"]), median(p50[key, "kv"]),
                    median(p99[key, "redis"]), median(p99[key, "kv"]), median(cpu[key, "redis"]), median(cpu[key, "kv"]),
                    median(ratios)
            }
        }' "$RUNS"
} | tee -a "$TABLE"
rm -f "$RUNS"
echo "raw output: $RAW; table: $TABLE"
