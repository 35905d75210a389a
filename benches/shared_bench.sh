# Sourced by the benches that drive the shared bench folder (conn_costs.sh, proxy_compare.sh):
# strict mode, where the repository and the shared bench are ($REPO, $BENCH: benches/harness
# in this repository unless BENCH says otherwise), lib.sh's helpers (pinning, start_server,
# median, cleanup), and `usage`, which prints the calling script's header comment.
set -uo pipefail
set +m
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=${BENCH:-$REPO/benches/harness}
. "$BENCH/lib.sh"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
