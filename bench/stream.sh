#!/usr/bin/env bash
# Streaming while downloading, loopback only: time to first byte and time
# until ffprobe succeeds on /stream, against the whole download, at a few
# seeder rates and piece sizes; libtorrent with set_piece_deadline as the
# anchor in the same run. See bench/stream.py.
# Usage: bash bench/stream.sh [MIB]   (default 6)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p shoal
exec /usr/bin/python3 bench/stream.py target/release/shoal "${1:-6}"
