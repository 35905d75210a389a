#!/usr/bin/env bash
# Where an echo server's CPU goes: user space vs kernel, per message, for evloop and its peers.
#
# usage: benches/cpu_split.sh [-c CONNS] [-s SIZE] [-n MSGS] [-r ROUNDS]
#
# Each round starts every server (evloop's echo example, tokio current_thread and the C epoll
# echo from benches/harness), pinned to CPU 0, and drives it with benches/harness's loadgen,
# pinned to CPU 1, for MSGS messages after a warm-up. It reads the server's utime and stime
# from /proc/PID/stat before and after, and prints user and kernel microseconds per message;
# the order of the servers rotates each round. The last lines are medians over the rounds and
# the median of the per-round paired ratios (this machine's speed drifts between rounds, so
# the paired ratio is the figure to believe).
#
# Why: on this machine the kernel's TCP work is most of a server's CPU per message, and every
# server here makes the same system calls. The user-space share of a peer bounds what any
# user-space saving can buy against it: a server with zero user-space cost still pays the
# kernel's part. utime/stime are sampled at the scheduler tick (10 ms), so use enough
# messages for a few hundred ticks per run (the default, 2,000,000, gives ~300-600).
#
# Needs benches/harness built (benches/harness/build.sh) and a release build of the echo example.
# Loopback only; stops only the servers it started.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bench=$(cd "${BENCH:-$here/benches/harness}" && pwd)
conns=50 size=64 msgs=2000000 rounds=3
while getopts c:s:n:r: o; do
    case $o in c) conns=$OPTARG ;; s) size=$OPTARG ;; n) msgs=$OPTARG ;; r) rounds=$OPTARG ;; *) exit 2 ;; esac
done
[ -x "$bench/target/release/loadgen" ] || { echo "build the harness first: benches/harness/build.sh" >&2; exit 2; }
[ -x "$here/target/release/examples/echo" ] || (cd "$here" && cargo build --release --example echo)
hz=$(getconf CLK_TCK)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; true' EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; } # utime stime, in clock ticks

declare -A cmd=(
    [evloop]="$here/target/release/examples/echo --addr 127.0.0.1:{port} --max-conns 4096"
    [tokio]="$bench/target/release/tokio_echo --port {port}"
    [c_epoll]="$bench/target/c_epoll_echo {port}"
)
servers=(evloop tokio c_epoll)
results=$(mktemp)
for round in $(seq "$rounds"); do
    shift_by=$(( (round - 1) % ${#servers[@]} ))
    order=("${servers[@]:$shift_by}" "${servers[@]:0:$shift_by}")
    for name in "${order[@]}"; do
        port=$(free_port)
        # shellcheck disable=SC2086
        taskset -c 0 ${cmd[$name]//\{port\}/$port} >/dev/null 2>&1 &
        pid=$!
        taskset -c 1 "$bench/target/release/loadgen" --port "$port" -c "$conns" -s "$size" -t 1 -q >/dev/null
        read -r u0 s0 < <(ticks "$pid")
        taskset -c 1 "$bench/target/release/loadgen" --port "$port" -c "$conns" -s "$size" -t 600 \
            --max-msgs "$msgs" -q >/dev/null
        read -r u1 s1 < <(ticks "$pid")
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        pid=
        python3 -c "
u, s, n, hz = $u1 - $u0, $s1 - $s0, $msgs, $hz
print(f'round=$round server=$name user_us/msg={u / hz / n * 1e6:.3f} sys_us/msg={s / hz / n * 1e6:.3f} user_share={u / max(u + s, 1):.3f} ticks={u + s}')
" | tee -a "$results"
    done
done
python3 - "$results" <<'EOF'
import re, statistics, sys
rows = [dict(kv.split("=") for kv in line.split()) for line in open(sys.argv[1])]
med = {}
for name in ["evloop", "tokio", "c_epoll"]:
    mine = [r for r in rows if r["server"] == name]
    user = statistics.median(float(r["user_us/msg"]) for r in mine)
    sys_ = statistics.median(float(r["sys_us/msg"]) for r in mine)
    share = statistics.median(float(r["user_share"]) for r in mine)
    med[name] = user + sys_
    print(f"MEDIAN server={name} user_us/msg={user:.3f} sys_us/msg={sys_:.3f} total={user + sys_:.3f} user_share={share:.3f}")
total = {(r["round"], r["server"]): float(r["user_us/msg"]) + float(r["sys_us/msg"]) for r in rows}
rounds = sorted({r["round"] for r in rows})
paired = {peer: statistics.median(total[(n, "evloop")] / total[(n, peer)] for n in rounds) for peer in ["tokio", "c_epoll"]}
print(f"RATIO cpu_per_msg (median of paired per-round ratios) evloop/tokio={paired['tokio']:.3f} evloop/c_epoll={paired['c_epoll']:.3f}")
EOF
rm -f "$results"
