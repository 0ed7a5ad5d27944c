#!/usr/bin/env bash
# Benchmark: `shoal tracker` against opentracker (Debian), same run, same load.
# For each tracker: fill N torrents x P peers over UDP, record its RSS, then
# measure announces per second over UDP and over HTTP (keep-alive where the
# tracker allows it) for SECS seconds each, with the load generator
# crates/tracker-server/examples/tracker_load.rs (64 sources 127.1.x.y,
# re-announces of known peers, numwant 50). Loopback only.
# Usage: bench/tracker.sh [TORRENTS] [PEERS] [SECS]   (needs opentracker)
set -euo pipefail
cd "$(dirname "$0")/.."
torrents=${1:-100000}
peers=${2:-10}
secs=${3:-10}
cargo build --release -q -p shoal --bin shoal
cargo build --release -q -p shoal-tracker-server --example tracker_load
shoal=$PWD/target/release/shoal
load=$PWD/target/release/examples/tracker_load
work=$(mktemp -d /tmp/shoal-bench-tracker.XXXXXX)
chmod 755 "$work"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
"$load" hashes "$work/whitelist" --torrents "$torrents"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }

declare -A R
run_one() { # name, then the command line
  local name=$1; shift
  local port; port=$(free_port)
  "${@//PORT/$port}" > "$work/$name.log" 2>&1 &
  pid=$!
  wait_port "$port" || { cat "$work/$name.log"; exit 1; }
  local rss0; rss0=$(rss_kib $pid)
  local fill; fill=$("$load" fill "127.0.0.1:$port" --torrents "$torrents" --peers "$peers")
  sleep 1
  R[$name.rss]=$(( $(rss_kib $pid) - rss0 ))
  R[$name.rss_total]=$(rss_kib $pid)
  local udp; udp=$("$load" udp "127.0.0.1:$port" --torrents "$torrents" --peers "$peers" --secs "$secs")
  local http; http=$("$load" http "127.0.0.1:$port" --torrents "$torrents" --peers "$peers" --secs "$secs")
  R[$name.fill]=$(echo "$fill" | field rate)
  R[$name.udp]=$(echo "$udp" | field rate)
  R[$name.http]=$(echo "$http" | field rate)
  echo "$name: fill $fill"
  echo "$name: udp  $udp"
  echo "$name: http $http"
  echo "$name: RSS $(( R[$name.rss_total] / 1024 )) MiB in all, $(( R[$name.rss] / 1024 )) MiB for the swarms"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

user=()
[ "$(id -u)" = 0 ] && user=(-u nobody)
run_one opentracker opentracker -i 127.0.0.1 -p PORT -P PORT -d "$work" -w whitelist "${user[@]}"
run_one shoal "$shoal" tracker --http 127.0.0.1:PORT --udp 127.0.0.1:PORT --rate-limit 1000000

ratio() { awk "BEGIN {printf \"%.2f\", $1 / $2}"; }
echo
echo "$torrents torrents x $peers peers, $secs s per measurement, $(nproc) cores shared by tracker and load generator"
printf '%-22s %12s %12s %8s\n' "" opentracker shoal "shoal/ot"
for k in fill udp http; do
  printf '%-22s %12s %12s %8s\n' "$k announces/s" "${R[opentracker.$k]}" "${R[shoal.$k]}" "$(ratio "${R[shoal.$k]}" "${R[opentracker.$k]}")"
done
printf '%-22s %12s %12s %8s\n' "RSS of swarms (KiB)" "${R[opentracker.rss]}" "${R[shoal.rss]}" "$(ratio "${R[shoal.rss]}" "${R[opentracker.rss]}")"
printf '%-22s %12s %12s %8s\n' "RSS in all (KiB)" "${R[opentracker.rss_total]}" "${R[shoal.rss_total]}" "$(ratio "${R[shoal.rss_total]}" "${R[opentracker.rss_total]}")"
