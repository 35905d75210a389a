#!/usr/bin/env bash
# A binary upgrade under load: the http example against nginx's own, measured the same way.
#
#   benches/upgrade_compare.sh [SECONDS [UPGRADES]]
#
# For each server, wrk (-t 2 -c 50, keep-alive, --latency) runs SECONDS (default 12) against
# "GET /"; UPGRADES times (default 2), evenly spread, the server is upgraded in place:
#   evloop: kill -USR2 $(cat pidfile)     (the new process takes the sockets, rewrites the
#                                          pid file, and the old one drains and exits)
#   nginx:  kill -USR2 $(cat nginx.pid), then kill -QUIT $(cat nginx.pid.oldbin) once the
#           new master is up (nginx's documented sequence; its workers drain gracefully)
# and the same run without upgrades is the baseline. Reports wrk's requests, socket errors
# (connect, read, write, timeout), non-2xx answers, p50/p99/max latency, and what process
# serves at the end. Needs nginx and wrk (Debian: apt-get install nginx-light wrk or nginx
# wrk) and cargo build --release --example http. Output: stdout and
# benches/results/DATE-upgrade-compare.txt.
set -euo pipefail

SECONDS_RUN=${1:-12}
UPGRADES=${2:-2}
cd "$(dirname "$0")/.."
HTTP=target/release/examples/http
DAY=$(date +%F)
OUT=benches/results/$DAY-upgrade-compare.txt
for tool in nginx wrk; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found (apt-get install $tool)" >&2; exit 1; }
done
[ -x "$HTTP" ] || { echo "error: $HTTP missing: cargo build --release --example http" >&2; exit 1; }
ulimit -n 4096

WORK=$(mktemp -d /tmp/evloop-upgrade.XXXXXX)
cleanup() {
    for f in "$WORK"/evloop.pid "$WORK"/nginx.pid "$WORK"/nginx.pid.oldbin; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

nginx_conf() {
    local port=$1
    mkdir -p "$WORK/nginx"
    cat > "$WORK/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 65s;
    default_type text/plain;
    server {
        listen 127.0.0.1:$port backlog=4096;
        location / { return 200 "hello\n"; }
    }
}
EOF
}

wait_for_file() { for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done; echo "no $1" >&2; exit 1; }

# upgrade SERVER: one in-place upgrade, returns once the new process serves.
upgrade() {
    case $1 in
        evloop)
            local old; old=$(cat "$WORK/evloop.pid")
            kill -USR2 "$old"
            for _ in $(seq 200); do [ "$(cat "$WORK/evloop.pid")" != "$old" ] && return 0; sleep 0.05; done
            echo "evloop: the pid file still names $old" >&2 ;;
        nginx)
            kill -USR2 "$(cat "$WORK/nginx.pid")"
            wait_for_file "$WORK/nginx.pid.oldbin"
            wait_for_file "$WORK/nginx.pid"
            sleep 0.5   # the new master's worker starts
            kill -QUIT "$(cat "$WORK/nginx.pid.oldbin")" ;;
    esac
}

start() {
    local port; port=$(free_port)
    case $1 in
        evloop)
            "$HTTP" --addr "127.0.0.1:$port" --pid-file "$WORK/evloop.pid" --drain-timeout 10 \
                >/dev/null 2>"$WORK/evloop.err" &
            wait_for_file "$WORK/evloop.pid" ;;
        nginx)
            nginx_conf "$port"
            # By its full path: nginx re-executes argv[0] on USR2, without a PATH search.
            "$(command -v nginx)" -c "$WORK/nginx.conf" -e "$WORK/nginx.err"
            wait_for_file "$WORK/nginx.pid" ;;
    esac
    echo "$port"
}

stop() {
    case $1 in
        evloop) kill -TERM "$(cat "$WORK/evloop.pid")"; sleep 0.5 ;;
        nginx) kill -QUIT "$(cat "$WORK/nginx.pid")"; sleep 0.5 ;;
    esac
}

summary() {
    # wrk's text: requests, socket errors, non-2xx, latency percentiles and max.
    local requests errors non2xx p50 p99 max
    requests=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$1")
    errors=$(sed -n 's/^ *Socket errors: \(.*\)/\1/p' "$1"); errors=${errors:-none}
    non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: \([0-9]*\)/\1/p' "$1"); non2xx=${non2xx:-0}
    p50=$(awk '$1=="50%"{print $2}' "$1"); p99=$(awk '$1=="99%"{print $2}' "$1"); max=$(awk '$1=="Latency"{print $4; exit}' "$1")
    printf '%-8s %-9s %10s %8s %8s %9s   %s\n' "$2" "$3" "$requests" "$p50" "$p99" "$max" "non-2xx $non2xx; socket errors: $errors"
}

{
echo "Binary upgrade under wrk -t 2 -c 50 -d ${SECONDS_RUN}s --latency, GET /; $UPGRADES upgrades per run ($(date -u +%FT%TZ))"
printf '%-8s %-9s %10s %8s %8s %9s   %s\n' server upgrades requests p50 p99 max errors
for server in evloop nginx; do
    for upgrades in 0 "$UPGRADES"; do
        port=$(start "$server")
        wrk -t 2 -c 50 -d "${SECONDS_RUN}s" --latency "http://127.0.0.1:$port/" > "$WORK/wrk.txt" &
        wrk_pid=$!
        if [ "$upgrades" -gt 0 ]; then
            gap=$(python3 -c "print($SECONDS_RUN / ($upgrades + 1))")
            for _ in $(seq "$upgrades"); do sleep "$gap"; upgrade "$server"; done
        fi
        wait "$wrk_pid"
        summary "$WORK/wrk.txt" "$server" "$upgrades"
        stop "$server"
    done
done
} | tee "$OUT"
