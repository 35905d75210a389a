#!/usr/bin/env bash
# proxy_compare.sh — examples/proxy against nginx's stream proxy (1 worker), HAProxy
# (nbthread 1) and a tokio copy_bidirectional proxy, all in front of the shared bench's C epoll
# echo server, then the same load straight at that echo server: how much a proxy adds.
#
# usage: benches/proxy_compare.sh [-r ROUNDS] [-t SECS] [-s SIZES] [-o DIR]
#   -r ROUNDS   rounds, order rotated per round (default 3)
#   -t SECS     measured seconds per run (default 3)
#   -s SIZES    message sizes, comma-separated (default 64,16384); 50 connections each
#   -o DIR      keep the raw lines and the peers' logs there
# env: BENCH   the bench harness, built (default benches/harness: benches/harness/build.sh;
#              its proxy_compare.sh runs the four proxies)
# Needs: cargo build --release --example proxy; apt-get install -y nginx libnginx-mod-stream haproxy
# The proxies run on CPU $SERVER_CPU (0); the load generator and the echo server share CPU
# $CLIENT_CPU (1), so every proxy has a core of its own and the rest is the same for each,
# and the direct runs (no proxy) keep that same CPU 1 for both ends.
. "$(dirname "${BASH_SOURCE[0]}")/shared_bench.sh"

ROUNDS=3; SECS=3; SIZES=64,16384; OUT=""
while [ $# -gt 0 ]; do
  case $1 in
    -r) ROUNDS=$2; shift 2;; -t) SECS=$2; shift 2;; -s) SIZES=$2; shift 2;; -o) OUT=$2; shift 2;;
    -h|--help) usage; exit 0;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2;;
  esac
done
PROXY=$REPO/target/release/examples/proxy
[ -x "$PROXY" ] || { echo "build it first: cargo build --release --example proxy" >&2; exit 2; }

# The four proxies, side by side (the shared script prints a table per size and a RATIO line).
"$BENCH/proxy_compare.sh" -t "$SECS" -r "$ROUNDS" -s "$SIZES" -n evloop ${OUT:+-o "$OUT"} \
  "$PROXY --listen 127.0.0.1:{port} --upstream 127.0.0.1:{upstream}"
status=$?

# The same load with no proxy: what a round trip costs without one.
WORKDIR=$(mktemp -d -t proxy_direct.XXXXXX); trap cleanup EXIT
UP=$(pick_port 24300)
SERVER_CPU=$CLIENT_CPU start_server echo "$UP" "'$BENCH/target/c_epoll_echo' $UP" || exit 2
printf '\n== direct to the echo server (median of %s rounds x %ss, loadgen and server on cpu %s)\n' \
  "$ROUNDS" "$SECS" "$CLIENT_CPU"
printf '%-8s %10s %9s %9s\n' size msgs/s p50_us p99_us
IFS=, read -ra SL <<<"$SIZES"
for s in "${SL[@]}"; do
  lines=$(for ((r = 0; r < ROUNDS; r++)); do
    taskset -c "$CLIENT_CPU" "$BENCH/target/release/loadgen" --port "$UP" -c 50 -s "$s" -t "$SECS" --warmup 0.5 -q | grep '^RESULT'
  done)
  med() { grep -o " $1=[^ ]*" <<<"$lines" | cut -d= -f2 | median; }
  printf '%-8s %10s %9s %9s\n' "$s" "$(med msgs_per_s)" "$(med p50_us)" "$(med p99_us)"
done
exit $status
