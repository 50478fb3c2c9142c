#!/usr/bin/env bash
# Builds the month-end demo ledger of docs/finance.md in DIR (default
# /tmp/pointledger-finance-demo), served on 127.0.0.1:7661; prints the
# server's pid at the end. Run from the repository after `make build`.
# Run again, it first stops the demo server it started before (its pid is
# kept in DIR/server.pid), then starts afresh.
set -u
B=$(cd "$(dirname "$0")/.." && pwd)/build/bin
DIR=${1:-/tmp/pointledger-finance-demo}
# Only if that pid is still a pointledgerd (a pid can be reused).
OLD=$(cat "$DIR/server.pid" 2>/dev/null || true)
if [[ -n "$OLD" ]] && grep -q pointledgerd "/proc/$OLD/cmdline" 2>/dev/null && kill "$OLD" 2>/dev/null; then
  while kill -0 "$OLD" 2>/dev/null; do sleep 0.1; done
fi
rm -rf "$DIR" && mkdir -p "$DIR"
"$B/pointledgerd" --data "$DIR/var" --listen 127.0.0.1:7661 > "$DIR/server.log" 2>&1 &
PID=$!
echo "$PID" > "$DIR/server.pid"
for _ in $(seq 100); do grep -q 'listening on' "$DIR/server.log" 2>/dev/null && break; sleep 0.1; done
if ! grep -q 'listening on' "$DIR/server.log"; then
  echo "pointledgerd did not start; its log:" >&2
  cat "$DIR/server.log" >&2
  exit 2
fi
P="$B/pointledger --server 127.0.0.1:7661 --key-file $DIR/var/admin.key"
day() { date -u -d "+$1 days" +%Y-%m-%dT00:00:00Z; }
soon=$(date -u -d "+3 seconds" +%Y-%m-%dT%H:%M:%SZ)
$P program create acme --currency USD --point-value-micros 5000 --expiry-days 365
$P partner create hotelco --program acme --earn-price-micros 9000 --redeem-price-micros 7000
$P partner create airline --program acme --earn-price-micros 8000 --redeem-price-micros 6000
$P earn --program acme --member alice --points 1200 --id order-1001
$P earn --program acme --member bob --points 800 --id order-1002 --expires-at $(day 20)
$P earn --program acme --member carol --points 500 --id order-1003 --expires-at $(day 50)
$P earn --program acme --member dave --points 300 --id order-1004 --expires-at $(day 80)
$P earn --program acme --member erin --points 150 --id order-1005 --expires-at $soon
$P earn --program acme --member alice --points 400 --id hotel-stay-77 --partner hotelco
$P referral --program acme --referrer alice --referee frank --referrer-points 500 --referee-points 250 --id ref-frank
$P redeem --program acme --member alice --points 600 --id reward-501
$P redeem --program acme --member bob --points 200 --id hotel-night-9 --partner hotelco
$P redeem --program acme --member carol --points 9000 --id reward-502
$P adjust --program acme --member dave --delta -50 --reason "duplicate earn" --id adj-17
$P reverse --program acme --original order-1003 --points 100 --id refund-1003
$P hold --program acme --member frank --points 100 --timeout 600 --id hold-31
$P capture --program acme --hold hold-31 --points 80 --id cap-31
$P account close --program acme --member dave --id close-dave
sleep 4
$P expire   # erin's lot expired; the server's own sweep may have booked it already
echo "pointledgerd pid $PID (data in $DIR/var; stop it with: kill $PID)"
