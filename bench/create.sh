#!/usr/bin/env bash
# Benchmark: torrent creation of one 1 GiB file (issue 2).
# shoal create (v1, hybrid, v2) vs mktorrent -t 2 (v1) and libtorrent's creator
# (v1, hybrid), same file, same piece size (1 MiB), same run. Median of RUNS.
# Usage: bench/create.sh [SIZE_MIB] [RUNS]       (needs mktorrent, python3-libtorrent)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
runs=${2:-3}
cargo build --release -q -p shoal
shoal=$PWD/target/release/shoal
work=$(mktemp -d /tmp/shoal-bench-create.XXXXXX)
trap 'rm -rf "$work"' EXIT
file=$work/data.bin
head -c $((size_mib * 1024 * 1024)) /dev/urandom > "$file"
cat "$file" > /dev/null # warm the page cache for every contender alike

time_cmd() { # prints wall seconds of the command
  local s e
  s=$(date +%s.%N)
  "$@" > /dev/null 2>&1
  e=$(date +%s.%N)
  awk "BEGIN {print $e - $s}"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

lt_create() { /usr/bin/python3 - "$@" <<'PY'
import sys, os, libtorrent as lt
mode, path, out = sys.argv[1:4]
fs = lt.file_storage(); lt.add_files(fs, path)
flags = {"v1": lt.create_torrent.v1_only, "hybrid": 0, "v2": lt.create_torrent.v2_only}[mode]
ct = lt.create_torrent(fs, 1 << 20, flags=flags)
lt.set_piece_hashes(ct, os.path.dirname(path))
open(out, "wb").write(lt.bencode(ct.generate()))
PY
}

printf '%-28s %10s %10s\n' contender seconds MiB/s
row() {
  local name=$1; shift
  local t
  t=$(for _ in $(seq "$runs"); do time_cmd "$@"; done | median)
  printf '%-28s %10.3f %10.0f\n' "$name" "$t" "$(awk "BEGIN {print $size_mib / $t}")"
}
row "shoal create --v1" "$shoal" create "$file" -o "$work/s1.torrent" --v1 --piece-size 1048576
mk() { rm -f "$work/m.torrent"; mktorrent -l 20 -t 2 -o "$work/m.torrent" "$1"; }
row "mktorrent -t 2 (v1)" mk "$file"
row "libtorrent (v1)" lt_create v1 "$file" "$work/l1.torrent"
row "shoal create --hybrid" "$shoal" create "$file" -o "$work/sh.torrent" --hybrid --piece-size 1048576
row "libtorrent (hybrid)" lt_create hybrid "$file" "$work/lh.torrent"
row "shoal create --v2" "$shoal" create "$file" -o "$work/s2.torrent" --v2 --piece-size 1048576
row "libtorrent (v2)" lt_create v2 "$file" "$work/l2.torrent"
