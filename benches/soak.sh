#!/usr/bin/env bash
# The soak: echo, http, proxy and chat (release builds) under a mixed, verified load, with
# the servers' RSS and descriptors sampled every 10 s. A benchmark, not a test: it runs for
# minutes. Figures in BENCHMARKS.md ("Soak"); the load itself is described in soak.py.
#
#   benches/soak.sh                  # 10 minutes
#   benches/soak.sh --duration 120   # any number of seconds
#   benches/soak.sh --quick          # 60 seconds
#   benches/soak.sh --seed 42        # replay a load
#
# It builds the examples with --release first. On a shared machine run it under the heavy
# lock: flock /tmp/evloop-heavy.lock benches/soak.sh
set -euo pipefail

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

duration=600
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) duration="${2:?--duration needs seconds}"; shift 2 ;;
        --quick) duration=60; shift ;;
        --seed) extra+=(--seed "${2:?--seed needs a number}"); shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "soak.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$duration" in
    ''|*[!0-9.]*) echo "soak.sh: --duration must be a number of seconds" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
cargo build --release --example echo --example http --example proxy --example chat
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
exec python3 benches/soak.py --duration "$duration" --examples "$target_dir/release/examples" "${extra[@]}"
