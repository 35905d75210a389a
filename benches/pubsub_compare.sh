#!/usr/bin/env bash
# Publish/subscribe: the kv example against redis-server, side by side, in one run.
#
#   benches/pubsub_compare.sh [-r ROUNDS] [-s SUBSCRIBERS] [-d DELIVERIES]
#
#   -r ROUNDS        interleaved rounds, the servers' order alternating (default 3)
#   -s SUBSCRIBERS   subscriber counts, comma-separated (default 1,20,200)
#   -d DELIVERIES    publications x subscribers per run (default 4000000)
# env: KV (default target/release/examples/kv) to measure another build
#
# For each subscriber count: N subscribers (benches/pubsub_subscribers.py, one process) on
# one channel, then `redis-benchmark -c 4 -P 16 -n P publish ch hello`, P = DELIVERIES / N.
# Both servers are pinned to CPU 0, the subscribers and redis-benchmark to CPU 1. The figure
# is the server's CPU time (utime + stime from /proc/PID/stat, clock ticks of 10 ms) from
# the moment every subscription is confirmed until every subscriber has its P publications,
# over the P x N publications delivered; a run whose subscribers did not all get every one
# (a subscriber dropped past its output limit, say) is marked and left out of the medians.
# Needs redis-server, redis-benchmark (Debian: apt-get install redis-server redis-tools),
# python3 and `cargo build --release --example kv`. Loopback only; stops what it started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUNDS=3 SUBS=1,20,200 DELIVERIES=4000000
while getopts r:s:d:h o; do
    case $o in
        r) ROUNDS=$OPTARG ;; s) SUBS=$OPTARG ;; d) DELIVERIES=$OPTARG ;;
        *) sed -n '2,/^set/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
    esac
done
KV=${KV:-target/release/examples/kv}
for tool in redis-server redis-benchmark python3 taskset; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found" >&2; exit 1; }
done
[ -x "$KV" ] || { echo "error: $KV missing: cargo build --release --example kv" >&2; exit 1; }
ulimit -n 4096

REDIS_PORT=${REDIS_PORT:-6397} KV_PORT=${KV_PORT:-6396}
WORK=$(mktemp -d -t pubsub.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

taskset -c 0 redis-server --save '' --appendonly no --port "$REDIS_PORT" --bind 127.0.0.1 \
    --logfile "$WORK/redis.log" --daemonize no >/dev/null &
PIDS+=($!); REDIS_PID=$!
RUST_LOG=warn taskset -c 0 "$KV" --addr "127.0.0.1:$KV_PORT" >"$WORK/kv.log" 2>&1 &
PIDS+=($!); KV_PID=$!
for port in "$REDIS_PORT" "$KV_PORT"; do
    for _ in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
done

# CPU ticks (utime + stime) of a process; the command name has no spaces here.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# run NAME PID PORT SUBS: one measured run; prints "NAME SUBS us_per_delivery complete".
run() {
    local name=$1 pid=$2 port=$3 subs=$4
    local pubs=$((DELIVERIES / subs))
    local out="$WORK/subs.$name.$subs"
    taskset -c 1 python3 benches/pubsub_subscribers.py "$port" "$subs" ch hello "$pubs" 120 >"$out" &
    local sub_pid=$!
    for _ in $(seq 600); do grep -q ready "$out" 2>/dev/null && break; sleep 0.05; done
    grep -q ready "$out" || { echo "error: $name: the subscribers never got ready" >&2; exit 1; }
    local before after
    before=$(ticks "$pid")
    taskset -c 1 redis-benchmark -p "$port" -c 4 -P 16 -n "$pubs" -q publish ch hello >/dev/null
    wait "$sub_pid"
    after=$(ticks "$pid")
    local complete
    complete=$(sed -n 's/.*complete=\([A-Z]*\).*/\1/p' "$out")
    awk -v n="$name" -v s="$subs" -v t=$((after - before)) -v d=$((pubs * subs)) -v c="$complete" \
        'BEGIN { printf "%s %d %.4f %s\n", n, s, t * 10000 / d, c }'
}

RESULTS="$WORK/results"
IFS=, read -r -a SUB_COUNTS <<<"$SUBS"
for round in $(seq "$ROUNDS"); do
    for subs in "${SUB_COUNTS[@]}"; do
        if [ $((round % 2)) -eq 1 ]; then order="kv redis"; else order="redis kv"; fi
        for name in $order; do
            if [ "$name" = kv ]; then line=$(run kv "$KV_PID" "$KV_PORT" "$subs"); else
                line=$(run redis "$REDIS_PID" "$REDIS_PORT" "$subs"); fi
            echo "round=$round $line" | tee -a "$RESULTS" >&2
        done
    done
done

echo
echo "server CPU per delivered publication (median of $ROUNDS rounds; $DELIVERIES deliveries a run)"
python3 - "$RESULTS" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    r, name, subs, us, complete = line.split()
    if complete == "YES":
        runs.setdefault((int(subs), name), {})[r] = float(us)
print("%-12s %14s %14s %22s" % ("subscribers", "kv us/msg", "redis us/msg", "kv/redis (paired)"))
for subs in sorted({s for s, _ in runs}):
    kv, redis = runs.get((subs, "kv"), {}), runs.get((subs, "redis"), {})
    paired = [kv[r] / redis[r] for r in kv if r in redis and redis[r] > 0]
    med = lambda xs: statistics.median(xs) if xs else float("nan")
    ratio = "%.2f (%.2f-%.2f)" % (med(paired), min(paired), max(paired)) if paired else "n/a"
    print("%-12d %14.3f %14.3f %22s" % (subs, med(list(kv.values())), med(list(redis.values())), ratio))
EOF
