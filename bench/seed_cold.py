#!/usr/bin/env python3
"""Seeding right after a download (issue 15): shoal downloads a payload from a
libtorrent seed (its writes bypass the page cache, O_DIRECT), then seeds it
to a libtorrent leecher twice: the first pass reads what the download wrote
(cold: not in the page cache), the second reads it again (warm). Dirty
pages are written back (sync) before every pass. The anchor
is libtorrent seeding the same payload to the same leecher, from a copy it
downloaded itself, in the same two passes. Loopback only; peers meet through
opentracker on 127.0.0.1.

Usage: python3 bench/seed_cold.py [--size-mib 512] [--drop-caches]
       --drop-caches: also empty the page cache before each cold pass (root),
       so both seeders start from the disk (otherwise libtorrent's copy may be
       cached from its own buffered writes, which is its real behaviour).
Reports per pass the leecher's wall time and MiB/s, and how much of the
seeder's file was in the page cache before the pass (fincore).
SHOAL_BENCH_BIN=PATH runs that shoal binary instead of target/release/shoal.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import swarm  # noqa: E402  (the loopback swarm harness: processes, tracker, clients)


def cached_fraction(path):
    """Share of `path`'s pages in the page cache (util-linux fincore)."""
    try:
        out = subprocess.check_output(["fincore", "--bytes", "--noheadings", "--output", "RES,SIZE", path],
                                      text=True).split()
        return int(out[0]) / max(1, int(out[1]))
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        return float("nan")


def drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def seed_pass(kind, pass_name, torrent, data_parent, work, timeout):
    """One pass: `kind` seeds from data_parent, a fresh libtorrent leecher downloads."""
    out = os.path.join(work, "leech-out")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    # Earlier steps' dirty pages are written back first, so that their
    # writeback does not slow this pass.
    subprocess.run(["sync"], check=True)
    cached = cached_fraction(os.path.join(data_parent, "payload.bin"))
    s = swarm.start_seeder(kind, torrent, data_parent, work, None)
    try:
        res = swarm.run_leecher("libtorrent", torrent, out, work, swarm.free_port(), timeout)
    finally:
        s.stop(signal.SIGINT if kind == "shoal" else signal.SIGKILL)
        for f in ("seed-%s.log" % kind, "leech-libtorrent.log"):
            if os.path.exists(os.path.join(work, f)):
                os.replace(os.path.join(work, f), os.path.join(work, "%s.%s" % (pass_name, f)))
    if not swarm.same(os.path.join(work, "src", "payload.bin"), os.path.join(out, "payload.bin")):
        raise RuntimeError("downloaded data differs")
    shutil.rmtree(out, ignore_errors=True)
    return res["wall_s"], cached


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--drop-caches", action="store_true")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs) and print it")
    args = ap.parse_args()
    if os.environ.get("SHOAL_BENCH_BIN"):
        swarm.SHOAL = os.environ["SHOAL_BENCH_BIN"]
    else:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "shoal"], cwd=swarm.ROOT, check=True)
    work = tempfile.mkdtemp(prefix="shoal-bench-seedcold.")
    procs = []
    try:
        parent, _, torrent, ot = swarm.payload(work, args.size_mib)
        procs.append(ot)

        # Each client downloads its own copy from a libtorrent seed of the original.
        copies = {}
        for kind in ("shoal", "libtorrent"):
            dest = os.path.join(work, "copy-" + kind)
            os.makedirs(dest)
            s = swarm.start_seeder("libtorrent", torrent, parent, work, None)
            try:
                r = swarm.run_leecher(kind, torrent, dest, work, swarm.free_port(), args.timeout)
            finally:
                s.stop()
            # Not compared with the original here: reading it would put it in
            # the page cache. Each pass's leecher output is compared instead.
            print("%-10s downloaded its copy in %.2f s" % (kind, r["wall_s"]), flush=True)
            copies[kind] = dest

        print("%-10s %-5s %8s %8s %10s" % ("seeder", "pass", "wall_s", "MiB/s", "cached"))
        rows = {}
        for kind in ("shoal", "libtorrent"):
            for name in ("cold", "warm"):
                if name == "cold" and args.drop_caches:
                    drop_caches()
                wall, cached = seed_pass(kind, "%s-%s" % (kind, name), torrent, copies[kind], work, args.timeout)
                rows[(kind, name)] = wall
                print("%-10s %-5s %8.2f %8.0f %9.0f%%" % (kind, name, wall, args.size_mib / wall, cached * 100),
                      flush=True)
        s_ratio = rows[("shoal", "cold")] / rows[("shoal", "warm")]
        l_ratio = rows[("libtorrent", "cold")] / rows[("libtorrent", "warm")]
        print("cold/warm time: shoal %.2f, libtorrent %.2f; shoal/libtorrent cold %.2f, warm %.2f"
              % (s_ratio, l_ratio, rows[("shoal", "cold")] / rows[("libtorrent", "cold")],
                 rows[("shoal", "warm")] / rows[("libtorrent", "warm")]))
    finally:
        for p in procs:
            p.stop()
        if args.keep:
            print("work directory kept:", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
