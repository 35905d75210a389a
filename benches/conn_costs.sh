#!/usr/bin/env bash
# conn_costs.sh — what a short connection costs: the http example against nginx (1 worker)
# and the shared bench's tokio hello server, the echo example against tokio_echo and the C
# epoll echo server, all with a new connection per request / message.
#
# usage: benches/conn_costs.sh [-r ROUNDS] [-t SECS] [--what LIST]
#   --what LIST   any of syscalls,cpu,echo                     (default all three)
#     syscalls    system calls per connection: `strace -c -f` attached to each HTTP server
#                 while `ab -n 10000 -c 50` runs (HTTP/1.0, a connection per request)
#     cpu         server CPU per request under `ab -n 50000 -c 50` and under siege with a
#                 connection per request (`siege -b -c 100 -r 200`, the bench's siegerc)
#     echo        connect, one 64 B ping-pong, close (benches/conn_per_msg.rs, 8 client
#                 threads, SECS seconds): connections/s and server CPU per connection,
#                 then system calls per connection (strace, 2 s)
#   -r ROUNDS     rounds for cpu and echo, server order rotated per round (default 3)
#   -t SECS       seconds per echo run (default 5)
# env: BENCH   the bench harness, built (default benches/harness: benches/harness/build.sh)
# Needs: cargo build --release --examples; cargo bench --bench conn_per_msg --no-run;
#        apt-get install -y apache2-utils nginx siege strace.
# Servers run pinned to CPU $SERVER_CPU (0), clients to CPU $CLIENT_CPU (1). Only the
# processes this script starts are signalled (lib.sh).
. "$(dirname "${BASH_SOURCE[0]}")/shared_bench.sh"

ROUNDS=3; SECS=5; WHAT=syscalls,cpu,echo
while [ $# -gt 0 ]; do
  case $1 in
    -r) ROUNDS=$2; shift 2;; -t) SECS=$2; shift 2;; --what) WHAT=$2; shift 2;;
    -h|--help) usage; exit 0;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2;;
  esac
done
HTTP=$REPO/target/release/examples/http
ECHO=$REPO/target/release/examples/echo
CPM=$(ls -t "$REPO"/target/release/deps/conn_per_msg-* 2>/dev/null | grep -v '\.d$' | head -n1)
for f in "$HTTP" "$ECHO" "$CPM" "$BENCH/target/release/tokio_http" "$BENCH/target/release/tokio_echo" "$BENCH/target/c_epoll_echo"; do
  [ -x "$f" ] || { echo "missing $f (see --help: Needs)" >&2; exit 2; }
done
for t in ab siege nginx strace; do command -v $t >/dev/null || { echo "$t not found (see --help)" >&2; exit 2; }; done

WORKDIR=$(mktemp -d -t conn_costs.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORKDIR/nginx"
sed -e "s#/tmp/bench-nginx#$WORKDIR/nginx#g" "$BENCH/nginx.conf" >"$WORKDIR/nginx.conf.in"

declare -A CMD=(
  [evloop]="$HTTP --addr 127.0.0.1:{port} --max-conns 4096"
  [nginx]="nginx -e stderr -c $WORKDIR/nginx.conf"
  [tokio]="$BENCH/target/release/tokio_http --port {port}"
  [evloop_echo]="$ECHO --addr 127.0.0.1:{port} --max-conns 4096"
  [tokio_echo]="$BENCH/target/release/tokio_echo --port {port}"
  [c_echo]="$BENCH/target/c_epoll_echo {port}"
)
declare -A PORT=()

# start NAME: picks a port, starts the server, remembers its port.
start() {
  local name=$1 port
  port=$(pick_port 23300)
  [ "$name" = nginx ] && sed "s/127.0.0.1:18080/127.0.0.1:$port/" "$WORKDIR/nginx.conf.in" >"$WORKDIR/nginx.conf"
  start_server "$name" "$port" "${CMD[$name]//\{port\}/$port}" || exit 1
  PORT[$name]=$port
}

# serving_pids NAME: the processes that serve connections (nginx: its worker, not the master).
serving_pids() {
  local pid=${SRV_PID[$1]}
  if [ "$1" = nginx ]; then pgrep -P "$pid" | paste -sd,; else echo "$pid"; fi
}

# traced NAME CALLS_PER_WHAT CMD...: runs CMD with strace counting the server's system
# calls; prints them divided by CALLS_PER_WHAT, busiest first, and the total.
traced() {
  local name=$1 per=$2; shift 2
  local out="$WORKDIR/$name.strace" pids p args=()
  pids=$(serving_pids "$name")
  for p in ${pids//,/ }; do args+=(-p "$p"); done
  strace -c -f -o "$out" "${args[@]}" 2>/dev/null & local tracer=$!
  sleep 1
  "$@" >"$WORKDIR/$name.load" 2>&1 || { log "$name: load failed"; cat "$WORKDIR/$name.load" >&2; }
  kill -INT "$tracer"; wait "$tracer" 2>/dev/null
  python3 - "$out" "$per" "$name" <<'PY'
import sys
rows, total = {}, 0
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 5 and f[0][0].isdigit() and f[-1] != 'total':
        rows[f[-1]] = int(f[3]); total += int(f[3])
per = float(sys.argv[2])
cols = ['accept4', 'setsockopt', 'epoll_ctl', 'recvfrom', 'read', 'sendto', 'writev', 'write', 'shutdown', 'close', 'epoll_wait']
other = total - sum(rows.get(c, 0) for c in cols)
cells = " | ".join(f"{rows.get(c, 0)/per:.2f}" for c in cols)
print(f"| {sys.argv[3]} | **{total/per:.2f}** | {cells} | {other/per:.2f} |")
PY
}

rotate() { local r=$1; shift; local a=("$@") n=$#; for i in $(seq 0 $((n - 1))); do echo "${a[$(((i + r) % n))]}"; done; }

if [[ $WHAT == *syscalls* ]]; then
  log "system calls per connection under ab -n 10000 -c 50"
  echo "| server | total | accept4 | setsockopt | epoll_ctl | recvfrom | read | sendto | writev | write | shutdown | close | epoll_wait | other |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for name in evloop nginx tokio; do
    start "$name"
    traced "$name" 10000 taskset -c "$CLIENT_CPU" ab -q -n 10000 -c 50 "http://127.0.0.1:${PORT[$name]}/"
    grep -q "^Failed requests: *0" "$WORKDIR/$name.load" || log "$name: ab reported failed requests"
    stop_server "$name"
  done
fi

declare -A CPU=()
# cpu_run NAME TOOL: one load run; appends "round value" of server µs per request to CPU[NAME/TOOL].
cpu_run() {
  local name=$1 tool=$2 port=${PORT[$1]} before after reqs
  before=$(group_cpu_ns "$name")
  if [ "$tool" = ab ]; then
    taskset -c "$CLIENT_CPU" ab -q -n 50000 -c 50 "http://127.0.0.1:$port/" >"$WORKDIR/ab.out" 2>&1
    reqs=$(sed -n 's/^Complete requests: *//p' "$WORKDIR/ab.out")
    grep -q "^Failed requests: *0" "$WORKDIR/ab.out" || log "$name: ab reported failed requests"
  else
    timeout 120 taskset -c "$CLIENT_CPU" siege -R "$BENCH/siegerc" -b -c 100 -r 200 "http://127.0.0.1:$port/" >"$WORKDIR/siege.out" 2>&1
    reqs=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(int(d["transactions"]))' "$WORKDIR/siege.out" 2>/dev/null)
  fi
  after=$(group_cpu_ns "$name")
  [ -n "$reqs" ] && [ "$reqs" -gt 0 ] || { log "$name/$tool: no requests counted"; return; }
  CPU[$name/$tool]+="$(awk -v a="$before" -v b="$after" -v n="$reqs" 'BEGIN{printf "%.3f", (b-a)/1000/n}') "
}

# paired A B KEY: median over rounds of A's value / B's value in the same round.
paired() {
  local a=(${CPU[$1/$3]}) b=(${CPU[$2/$3]}) i
  for i in "${!a[@]}"; do awk -v x="${a[$i]}" -v y="${b[$i]}" 'BEGIN{printf "%.3f\n", x/y}'; done | median
}

if [[ $WHAT == *cpu* ]]; then
  log "server CPU per request: ab -n 50000 -c 50, siege -b -c 100 -r 200 (connection per request)"
  for name in evloop nginx tokio; do start "$name"; done
  for r in $(seq 0 $((ROUNDS - 1))); do
    for name in $(rotate "$r" evloop nginx tokio); do
      for tool in ab siege; do cpu_run "$name" "$tool"; done
    done
  done
  for name in evloop nginx tokio; do stop_server "$name"; done
  echo
  echo "| load | evloop µs/req | nginx | tokio | evloop/nginx (paired) | evloop/tokio (paired) |"
  echo "|---|---:|---:|---:|---:|---:|"
  for tool in ab siege; do
    m() { tr ' ' '\n' <<<"${CPU[$1/$tool]}" | grep . | median; }
    echo "| $tool | $(m evloop) | $(m nginx) | $(m tokio) | $(paired evloop nginx "$tool") | $(paired evloop tokio "$tool") |"
  done
  echo "raw (µs/req per round): $(for k in "${!CPU[@]}"; do echo -n "$k=[${CPU[$k]% }] "; done)"
fi

if [[ $WHAT == *echo* ]]; then
  log "echo, a connection per 64 B message: conn_per_msg -c 8 -s 64 -t $SECS"
  for name in evloop_echo tokio_echo c_echo; do start "$name"; done
  declare -A RATE=()
  for r in $(seq 0 $((ROUNDS - 1))); do
    for name in $(rotate "$r" evloop_echo tokio_echo c_echo); do
      line=$(taskset -c "$CLIENT_CPU" "$CPM" --addr "127.0.0.1:${PORT[$name]}" -c 8 -s 64 -t "$SECS" --pid "$(serving_pids "$name")")
      log "$name: $line"
      RATE[$name]+="$(kv "$line" conns_per_s) "
      CPU[$name/echo]+="$(kv "$line" server_cpu_us_per_conn) "
    done
  done
  echo
  echo "| server | conns/s | server CPU µs/conn | evloop/it CPU (paired) |"
  echo "|---|---:|---:|---:|"
  for name in evloop_echo tokio_echo c_echo; do
    echo "| $name | $(tr ' ' '\n' <<<"${RATE[$name]}" | grep . | median) | $(tr ' ' '\n' <<<"${CPU[$name/echo]}" | grep . | median) | $(paired evloop_echo "$name" echo) |"
  done
  echo
  echo "| server | total | accept4 | setsockopt | epoll_ctl | recvfrom | read | sendto | writev | write | shutdown | close | epoll_wait | other |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for name in evloop_echo tokio_echo c_echo; do
    # Connections counted by the client; strace is attached for its whole run.
    traced "$name" 1 taskset -c "$CLIENT_CPU" "$CPM" --addr "127.0.0.1:${PORT[$name]}" -c 8 -s 64 -t 2 >"$WORKDIR/$name.row"
    conns=$(kv "$(cat "$WORKDIR/$name.load")" conns)
    python3 - "$conns" "$WORKDIR/$name.row" <<'PY'
import sys
n = float(sys.argv[1])
for line in open(sys.argv[2]):
    cells = [c.strip() for c in line.strip().strip('|').split('|')]
    out = [cells[0]] + [f"{float(c.strip('*'))/n:.2f}" for c in cells[1:]]
    out[1] = f"**{out[1]}**"
    print("| " + " | ".join(out) + " |")
PY
  done
  for name in evloop_echo tokio_echo c_echo; do stop_server "$name"; done
fi
