#!/usr/bin/env bash
# Benchmark: the engine's torrent cores in the deterministic swarm simulator
# (crates/engine/src/sim) against the fluid-model minimum time of Kumar and
# Ross, T_min = max(F/u_s, F/d_min, N*F/(u_s + sum u_i)) (issue 9).
# Every run is virtual time: same seed, same result, on any machine.
# Usage: bench/swarmsim.sh [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
seed=${1:-1}
cargo build --release -q -p shoal-engine --example swarmsim
sim=$PWD/target/release/examples/swarmsim

run() { # prints the command, then its result
  echo "\$ target/release/examples/swarmsim $* --seed $seed"
  "$sim" "$@" --seed "$seed" | sed 's/^/    /'
  echo
}

echo "== 1 seed + 100 leechers, 64 MiB in 256 KiB pieces, 1 MiB/s up, 4 MiB/s down, 10-100 ms (issue 9's bound: 1.15 x T_min)"
run --seeds 1 --leechers 100 --size-mib 64 --piece-kib 256 --up-kib 1024 --down-kib 4096 --latency-ms 10-100

echo "== other swarm sizes"
for n in 25 50 200; do
  run --seeds 1 --leechers "$n" --size-mib 64 --piece-kib 256 --up-kib 1024 --down-kib 4096 --latency-ms 10-100
done

echo "== 1+100 with 64 KiB pieces, with 4 upload slots, and with a 4 MiB/s seed"
run --seeds 1 --leechers 100 --size-mib 64 --piece-kib 64 --up-kib 1024 --down-kib 4096 --latency-ms 10-100
run --seeds 1 --leechers 100 --size-mib 64 --piece-kib 256 --up-kib 1024 --down-kib 4096 --latency-ms 10-100 --slots 4
run --seeds 1 --leechers 100 --size-mib 64 --piece-kib 256 --up-kib 1024 --seed-up-kib 4096 --down-kib 4096 --latency-ms 10-100

echo "== 10 free riders among 100 leechers (seed-bound, then with a 4 MiB/s seed)"
run --seeds 1 --leechers 100 --free-riders 10 --size-mib 64 --piece-kib 256 --up-kib 1024 --down-kib 4096 --latency-ms 10-100
run --seeds 1 --leechers 100 --free-riders 10 --size-mib 64 --piece-kib 256 --up-kib 1024 --seed-up-kib 4096 --down-kib 4096 --latency-ms 10-100

echo "== 1 corrupt peer among 51 leechers, 32 MiB"
run --seeds 1 --leechers 51 --corrupt 1 --size-mib 32 --piece-kib 256 --up-kib 1024 --down-kib 4096 --latency-ms 10-100
