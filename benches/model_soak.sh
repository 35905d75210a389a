#!/usr/bin/env bash
# The connection model test (tests/it/model/) over many more seeds than `cargo test` tries:
# every seed in START..END for single connections and forwarded pairs, all failures counted
# (EVLOOP_MODEL_ALL), each printed with the command that replays it.
#
#   benches/model_soak.sh [START [END]]      default 0 .. 20000 (about 6 minutes in release)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=${1:-0}
end=${2:-20000}
EVLOOP_MODEL_ALL=1 EVLOOP_MODEL_SEEDS="$start..$end" \
  cargo test --release --test it model:: -- --test-threads=2
