#!/usr/bin/env bash
# Idle torrents in one session: RSS, threads and the time to add and check
# N small seeding torrents (no peers, no network beyond 127.0.0.1).
# Usage: bash bench/idle.sh [N]   (default 10000; goal: under 150 MiB RSS)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
cargo build --release -q -p shoal-engine --example idle_seeds
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "idle seeding torrents: $n"
target/release/examples/idle_seeds "$n" "$dir"
