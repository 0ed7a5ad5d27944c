#!/usr/bin/env bash
# Benchmark: torrent creation (issues 2 and 14), warm page cache.
# shoal create (v1, hybrid, v2) vs mktorrent -t 2 (v1) and libtorrent's creator
# (v1, hybrid, v2) on the same input, same piece size (1 MiB), same run:
#   1. one file of SIZE_MIB MiB;
#   2. a directory of FILES files (default 10,000) holding SIZE_MIB MiB in all.
# The contenders are interleaved run by run (load changes hit them alike);
# each cell is the median of RUNS. Columns: wall seconds, MiB/s, CPU seconds
# (user + sys), and the ratio to the anchor of the same version (mktorrent
# for v1, libtorrent for hybrid and v2; > 1: shoal is faster).
# Usage: bench/create.sh [SIZE_MIB] [RUNS] [FILES]   (needs mktorrent, python3-libtorrent)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
runs=${2:-3}
nfiles=${3:-10000}
cargo build --release -q -p shoal
shoal=$PWD/target/release/shoal
work=$(mktemp -d /tmp/shoal-bench-create.XXXXXX)
trap 'rm -rf "$work"' EXIT
file=$work/data.bin
head -c $((size_mib * 1024 * 1024)) /dev/urandom > "$file"
dir=$work/many
mkdir -p "$dir"
per=$((size_mib * 1024 * 1024 / nfiles))
for ((i = 0; i < nfiles; i++)); do
  d=$dir/$((i / 100))
  [ -d "$d" ] || mkdir "$d"
  head -c "$per" /dev/urandom > "$d/f$i"
done

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
mk() { rm -f "$work/m.torrent"; mktorrent -l 20 -t 2 -o "$work/m.torrent" "$1"; }
export -f lt_create mk
export work

# name|anchor-name|command (word-split; $in is the input)
contenders=(
  "shoal create --v1|mktorrent -t 2 (v1)|$shoal create \$in -o $work/s1.torrent --v1 --piece-size 1M"
  "mktorrent -t 2 (v1)||mk \$in"
  "libtorrent (v1)||lt_create v1 \$in $work/l1.torrent"
  "shoal create --hybrid|libtorrent (hybrid)|$shoal create \$in -o $work/sh.torrent --hybrid --piece-size 1M"
  "libtorrent (hybrid)||lt_create hybrid \$in $work/lh.torrent"
  "shoal create --v2|libtorrent (v2)|$shoal create \$in -o $work/s2.torrent --v2 --piece-size 1M"
  "libtorrent (v2)||lt_create v2 \$in $work/l2.torrent"
)

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

bench() { # $1 = label, $2 = input path
  local in=$2 label=$1 c name cmd r
  declare -A wall=() cpu=()
  find "$in" -type f -exec cat {} + > /dev/null # warm the page cache for every contender alike
  for ((r = 0; r < runs; r++)); do
    for c in "${contenders[@]}"; do
      name=${c%%|*}
      cmd=${c##*|}
      local t0 t1 tf
      tf=$(mktemp)
      t0=$(date +%s.%N)
      /usr/bin/time -o "$tf" -f '%U %S' bash -c "${cmd//\$in/$in}" > /dev/null 2>&1
      t1=$(date +%s.%N)
      wall[$name]+="$(awk "BEGIN {print $t1 - $t0}") "
      cpu[$name]+="$(awk '{print $1 + $2}' "$tf") "
      rm -f "$tf"
    done
  done
  echo
  echo "$label: $size_mib MiB, 1 MiB pieces, median of $runs"
  printf '| %-24s | %8s | %7s | %8s | %-28s |\n' contender "wall s" "MiB/s" "CPU s" "ratio to anchor (wall)"
  printf '|---|---|---|---|---|\n'
  declare -A med=()
  for c in "${contenders[@]}"; do
    name=${c%%|*}
    med[$name]=$(tr ' ' '\n' <<< "${wall[$name]}" | grep . | median)
  done
  for c in "${contenders[@]}"; do
    name=${c%%|*}
    local rest=${c#*|} anchor
    anchor=${rest%%|*}
    local w=${med[$name]} ratio=""
    if [ -n "$anchor" ]; then
      ratio="$(awk "BEGIN {printf \"%.2fx vs $anchor\", ${med[$anchor]} / $w}")"
    fi
    printf '| %-24s | %8.3f | %7.0f | %8.2f | %-28s |\n' "$name" "$w" \
      "$(awk "BEGIN {print $size_mib / $w}")" \
      "$(tr ' ' '\n' <<< "${cpu[$name]}" | grep . | median)" "$ratio"
  done
}

bench "one file" "$file"
bench "$nfiles files" "$dir"
