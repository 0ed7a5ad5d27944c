#!/usr/bin/env bash
# `shoal daemon` against `transmission-daemon`, same run, loopback only:
# N small seeding torrents added over RPC; RSS, the time of a torrent-get of
# all of them with transmission-remote's list fields, the time from restart
# until all are listed. See bench/daemon.py.
# Usage: bash bench/daemon.sh [N]   (default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p shoal
exec /usr/bin/python3 bench/daemon.py target/release/shoal "${1:-10000}"
