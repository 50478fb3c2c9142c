#!/usr/bin/env bash
# One `pointledger load` run against a fresh pointledgerd on its own data
# directory; prints the load summary and the server's CPU per transaction.
# The figures of BENCHMARKS.md's server sections come from it, e.g. batch 1:
#   bench/server_load.sh --connections 256 --batch 1 --in-flight 1 --duration 20s --mix earn=60,redeem=40
# and bulk:
#   bench/server_load.sh --connections 4 --batch 8190 --in-flight 1 --count 10000000
# Arguments go to `pointledger load`. Environment: B (binaries, default
# build/bin), DIR (data, default /var/tmp/pl-load: a real disk), PORT (7650).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build/bin}
DIR=${DIR:-/var/tmp/pl-load}
PORT=${PORT:-7650}
rm -rf "$DIR" && mkdir -p "$DIR"
"$B/pointledgerd" --data "$DIR/var" --listen "127.0.0.1:$PORT" > "$DIR/server.log" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q 'listening on' "$DIR/server.log" && break; sleep 0.1; done
grep -q 'listening on' "$DIR/server.log" || { cat "$DIR/server.log" >&2; exit 2; }
# utime and stime: fields 14 and 15 of /proc/PID/stat, in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
c0=$(cpu)
"$B/pointledger" --server "127.0.0.1:$PORT" --key-file "$DIR/var/admin.key" load "$@" --json > "$DIR/load.json"
c1=$(cpu)
kill -TERM $PID
wait $PID || true
trap - EXIT
python3 - "$DIR/load.json" "$((c1 - c0))" "$(getconf CLK_TCK)" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
cpu = int(sys.argv[2]) / int(sys.argv[3])
print('tx/s %.0f p50 %.2f p99 %.2f p999 %.2f max %.1f committed %d server_cpu_us_per_tx %.1f' % (
    d['transactions_per_second'], d['p50_ms'], d['p99_ms'], d['p999_ms'], d['max_ms'],
    d['committed'], cpu * 1e6 / max(d['committed'], 1)))
PY
