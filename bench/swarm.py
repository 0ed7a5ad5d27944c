#!/usr/bin/env python3
"""Loopback swarm benchmark (issue 3): one seeder, one leecher, every pair of
shoal / libtorrent / aria2 / Transmission that works, several runs each.

For the leecher it reports wall time (start to verified completion), CPU seconds
(user+sys, from wait4 rusage) and peak RSS (VmHWM, sampled every 20 ms); for the
seeder, the CPU seconds it spent while the leecher ran (from /proc/PID/stat, so
its start-up check is not counted). Peers find each other
through opentracker on 127.0.0.1; Transmission ignores loopback peers from a
tracker, so a seeder that can dial (shoal, libtorrent) dials it.

usage: bench/swarm.py [--size-mib 1024] [--runs 3] [--pairs shoal:shoal,libtorrent:shoal,...]
                      [--encryption default|plain|rc4] [--transport default|utp]
       --encryption rc4: every client requires MSE/PE with RC4 (shoal --encryption require,
       libtorrent in/out forced at RC4, aria2 --bt-require-crypto with arc4, Transmission
       "encryption": 2); plain: shoal --encryption disable, Transmission prefers plaintext,
       libtorrent and aria2 as by default (they select plaintext); default: every client
       with its own defaults.
       --transport utp: peer connections over uTP only (shoal --no-tcp, libtorrent with
       TCP off both ways); pairs with aria2 (no uTP) or Transmission are skipped.
       default: every client with its own transports (shoal and libtorrent dial TCP on
       loopback here; libtorrent's outgoing uTP is off in lt_tool.py).
       SHOAL_BENCH_BIN=PATH runs that shoal binary instead of building target/release/shoal.
       (builds shoal in release mode first; needs the Debian clients .ci/run installs)
Only loopback addresses are used. Every process is killed by PID at the end.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LT = os.path.join(ROOT, "crates/shoal/tests/interop/lt_tool.py")
SHOAL = os.path.join(ROOT, "target/release/shoal")
CLIENTS = ["shoal", "libtorrent", "aria2", "transmission"]
# Per-client extra arguments for the --encryption mode (filled in main).
ENC = {"shoal": [], "libtorrent": [], "aria2": []}
TR_ENCRYPTION = [1]
# Per-client extra arguments for the --transport mode (filled in main).
TRANSPORT = {"shoal": [], "libtorrent": []}
TRANSPORT_MODES = {
    "default": {"shoal": [], "libtorrent": []},
    "utp": {"shoal": ["--no-tcp"], "libtorrent": ["--utp-only"]},
}
ENC_MODES = {
    "default": ({"shoal": [], "libtorrent": [], "aria2": []}, 1),
    "plain": ({"shoal": ["--encryption", "disable"], "libtorrent": [], "aria2": []}, 0),
    "rc4": ({"shoal": ["--encryption", "require"], "libtorrent": ["--enc-forced"],
             "aria2": ["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"]}, 2),
}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Proc:
    def __init__(self, argv, log, **kw):
        self.log = open(log, "wb")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True, **kw)
        self.t0 = time.time()
        self.rusage = None
        self.status = None

    def poll(self):
        if self.status is None:
            pid, status, ru = os.wait4(self.p.pid, os.WNOHANG)
            if pid:
                self.status, self.rusage = status, ru
                self.p.returncode = os.waitstatus_to_exitcode(status)
        return self.status

    def stop(self, sig=signal.SIGKILL, grace=10.0):
        if self.poll() is None:
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                pass
            end = time.time() + grace
            while self.poll() is None and time.time() < end:
                time.sleep(0.05)
            if self.poll() is None:
                os.killpg(self.p.pid, signal.SIGKILL)
                _, status, ru = os.wait4(self.p.pid, 0)
                self.status, self.rusage = status, ru
        self.log.close()


def tracker(port, hexhash, work):
    d = os.path.join(work, "ot")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    with open(os.path.join(d, "wl"), "w") as f:
        f.write(hexhash + "\n")
    argv = ["opentracker", "-i", "127.0.0.1", "-p", str(port), "-P", str(port), "-d", d, "-w", "wl"]
    if os.geteuid() == 0:
        argv += ["-u", "nobody"]
    p = Proc(argv, os.path.join(work, "ot.log"), cwd=d)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return p
        except OSError:
            time.sleep(0.05)
    raise SystemExit("opentracker did not start")


def tr_config(d, port):
    os.makedirs(os.path.join(d, "cfg"), exist_ok=True)
    with open(os.path.join(d, "cfg", "settings.json"), "w") as f:
        json.dump({"dht-enabled": False, "lpd-enabled": False, "pex-enabled": False,
                   "utp-enabled": False, "port-forwarding-enabled": False, "peer-port": port,
                   "bind-address-ipv4": "127.0.0.1", "rpc-enabled": False,
                   "ratio-limit-enabled": False, "speed-limit-up-enabled": False,
                   "message-level": 1, "encryption": TR_ENCRYPTION[0],
                   "rename-partial-files": False}, f)  # no .part left when the done script runs
    done = os.path.join(d, "done.sh")
    with open(done, "w") as f:
        f.write("#!/bin/sh\ntouch '%s'\n" % os.path.join(d, "done"))
    os.chmod(done, 0o755)
    return done


def start_seeder(kind, torrent, data_parent, work, leech_port):
    port = free_port()
    log = os.path.join(work, "seed-%s.log" % kind)
    dial = ["--peer", "127.0.0.1:%d" % leech_port] if leech_port else []
    if kind == "shoal":
        p = Proc([SHOAL, "seed", torrent, "--data", data_parent, "--listen", "127.0.0.1:%d" % port,
                  "--no-dht"] + dial + ENC["shoal"] + TRANSPORT["shoal"], log)
        # Ready once its data is checked, as the libtorrent seeder below:
        # "listening on" comes before the check, which then overlapped the
        # leecher's start (its hashing on the same cores, its first announce
        # late).
        ready = lambda: "; seeding" in open(log, errors="replace").read()
    elif kind == "libtorrent":
        p = Proc(["/usr/bin/python3", LT, "seed", torrent, data_parent, "--port", str(port),
                  "--timeout", "3600"] + dial + ENC["libtorrent"] + TRANSPORT["libtorrent"], log)
        ready = lambda: '"seeding": true' in open(log, errors="replace").read()
    elif kind == "aria2":
        p = Proc(["aria2c", "--no-conf", "--dir=" + data_parent, "--seed-ratio=0.0", "--check-integrity=true",
                  "--bt-seed-unverified=false", "--enable-dht=false", "--enable-dht6=false",
                  "--bt-enable-lpd=false", "--enable-peer-exchange=false", "--listen-port=%d" % port,
                  "--interface=127.0.0.1", "--disable-ipv6=true", "--summary-interval=1"] + ENC["aria2"] + [torrent], log)
        ready = lambda: "SEED(" in open(log, errors="replace").read()
    elif kind == "transmission":
        d = os.path.join(work, "tr-seed")
        # Fresh each run: a config dir holding the torrent from the previous
        # run makes transmission-cli 3.00 start without printing "Seeding".
        shutil.rmtree(d, ignore_errors=True)
        tr_config(d, port)
        p = Proc(["transmission-cli", "-g", os.path.join(d, "cfg"), "-w", data_parent, "-p", str(port), torrent], log)
        ready = lambda: "Seeding" in open(log, errors="replace").read()
    t0 = time.time()
    while not ready():
        if p.poll() is not None or time.time() - t0 > 300:
            raise RuntimeError("%s seeder did not start: see %s" % (kind, log))
        time.sleep(0.1)
    return p


def cpu_s(pid):
    """CPU seconds (user+sys) process `pid` has used so far, all its threads; 0 once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def vm_hwm_kib(pid):
    """Peak resident set of a running process (VmHWM), in KiB; 0 once it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


SHOAL_LEECH_ARGS = []


def run_leecher(kind, torrent, out, work, port, timeout):
    log = os.path.join(work, "leech-%s.log" % kind)
    done_file = None
    if kind == "shoal":
        p = Proc([SHOAL, "download", torrent, "-o", out, "--listen", "127.0.0.1:%d" % port, "--no-dht"]
                 + SHOAL_LEECH_ARGS + ENC["shoal"] + TRANSPORT["shoal"], log)
    elif kind == "libtorrent":
        p = Proc(["/usr/bin/python3", LT, "download", torrent, out, "--port", str(port), "--timeout", str(timeout)]
                 + ENC["libtorrent"] + TRANSPORT["libtorrent"], log)
    elif kind == "aria2":
        p = Proc(["aria2c", "--no-conf", "--dir=" + out, "--seed-time=0", "--enable-dht=false",
                  "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
                  "--listen-port=%d" % port, "--interface=127.0.0.1", "--disable-ipv6=true",
                  "--summary-interval=0", "--console-log-level=warn"] + ENC["aria2"] + [torrent], log)
    elif kind == "transmission":
        d = os.path.join(work, "tr-leech")
        shutil.rmtree(d, ignore_errors=True)
        script = tr_config(d, port)
        done_file = os.path.join(d, "done")
        if os.path.exists(done_file):  # left by the previous Transmission run
            os.remove(done_file)
        p = Proc(["transmission-cli", "-g", os.path.join(d, "cfg"), "-w", out, "-p", str(port), "-f", script, torrent], log)
    t0 = time.time()
    hwm_kib = 0
    while True:
        hwm_kib = max(hwm_kib, vm_hwm_kib(p.p.pid))
        if done_file and os.path.exists(done_file):
            wall = time.time() - t0
            p.stop()
            break
        if p.poll() is not None:
            wall = time.time() - t0
            break
        if time.time() - t0 > timeout:
            p.stop()
            raise RuntimeError("%s leecher timed out: see %s" % (kind, log))
        time.sleep(0.02)
    if kind == "libtorrent":
        # The helper measures from its own start to completion (excludes interpreter exit).
        for line in open(log, errors="replace"):
            if line.startswith("{") and '"seconds"' in line:
                wall = json.loads(line)["seconds"]
    if p.p.returncode not in (0, None, -9) and not done_file:
        raise RuntimeError("%s leecher failed (%s): see %s" % (kind, p.p.returncode, log))
    ru = p.rusage
    # Not ru_maxrss: on Linux it includes the forking Python's RSS from before
    # exec (about 24 MiB), a floor that hides smaller leechers.
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "rss_mib": hwm_kib / 1024.0}


def same(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def payload(work, size_mib):
    """A random `work/src/payload.bin` of size_mib MiB, its torrent (1 MiB pieces)
    announcing to an opentracker started here: (parent dir, data, torrent, tracker)."""
    parent = os.path.join(work, "src")
    os.makedirs(parent)
    data = os.path.join(parent, "payload.bin")
    with open(data, "wb") as f:
        left = size_mib << 20
        while left:
            n = min(left, 8 << 20)
            f.write(os.urandom(n))
            left -= n
    tport = free_port()
    torrent = os.path.join(work, "payload.torrent")
    subprocess.run([SHOAL, "create", data, "-o", torrent, "--piece-size", str(1 << 20),
                    "--tracker", "http://127.0.0.1:%d/announce" % tport], check=True,
                   stdout=subprocess.DEVNULL)
    info = json.loads(subprocess.check_output([SHOAL, "info", "--json", torrent]))
    return parent, data, torrent, tracker(tport, info["info_hash_v1"], work)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pairs", default="")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--shoal-leech-args", default="",
                    help="extra arguments for shoal as leecher, e.g. --buffered-writes")
    ap.add_argument("--encryption", choices=sorted(ENC_MODES), default="default",
                    help="MSE/PE settings of every client (see the module docs)")
    ap.add_argument("--transport", choices=sorted(TRANSPORT_MODES), default="default",
                    help="transports of shoal and libtorrent (see the module docs)")
    args = ap.parse_args()
    TRANSPORT.update(TRANSPORT_MODES[args.transport])
    ENC.update(ENC_MODES[args.encryption][0])
    TR_ENCRYPTION[0] = ENC_MODES[args.encryption][1]
    SHOAL_LEECH_ARGS.extend(args.shoal_leech_args.split())
    if os.environ.get("SHOAL_BENCH_BIN"):
        # A shoal binary built elsewhere (no cargo build).
        global SHOAL
        SHOAL = os.environ["SHOAL_BENCH_BIN"]
    else:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "shoal"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="shoal-bench-swarm.")
    ot = None
    try:
        parent, data, torrent, ot = payload(work, args.size_mib)
        if args.pairs:
            pairs = [tuple(p.split(":")) for p in args.pairs.split(",")]
        else:
            pairs = [(s, l) for s in CLIENTS for l in CLIENTS]
        results = []
        print("%-13s %-13s %8s %8s %8s %8s %8s  %s" % ("seeder", "leecher", "wall_s", "MiB/s", "cpu_s", "rss_MiB", "seed_cpu", "runs"))
        for seeder, leecher in pairs:
            if args.transport == "utp" and not {seeder, leecher} <= {"shoal", "libtorrent"}:
                print("%-13s %-13s  skipped: --transport utp runs shoal and libtorrent only" % (seeder, leecher))
                continue
            if leecher == "transmission" and seeder not in ("shoal", "libtorrent"):
                print("%-13s %-13s  skipped: transmission ignores loopback peers from a tracker and %s cannot dial" % (seeder, leecher, seeder))
                continue
            runs = []
            for r in range(args.runs):
                lport = free_port()
                s = None
                out = os.path.join(work, "out")
                shutil.rmtree(out, ignore_errors=True)
                os.makedirs(out)
                try:
                    s = start_seeder(seeder, torrent, parent, work, lport if leecher == "transmission" else None)
                    seed_cpu0 = cpu_s(s.p.pid)
                    res = run_leecher(leecher, torrent, out, work, lport, args.timeout)
                    res["seed_cpu_s"] = cpu_s(s.p.pid) - seed_cpu0
                    if not same(data, os.path.join(out, "payload.bin")):
                        raise RuntimeError("downloaded data differs")
                    runs.append(res)
                except RuntimeError as e:
                    print("%-13s %-13s  run %d failed: %s" % (seeder, leecher, r + 1, e))
                finally:
                    if s:
                        s.stop(signal.SIGINT if seeder == "shoal" else signal.SIGKILL)
            if runs:
                med = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
                row = {"seeder": seeder, "leecher": leecher, **med, "mib_s": args.size_mib / med["wall_s"], "runs": len(runs)}
                results.append(row)
                print("%-13s %-13s %8.2f %8.0f %8.2f %8.1f %8.2f  %d" % (seeder, leecher, med["wall_s"], row["mib_s"], med["cpu_s"], med["rss_mib"], med["seed_cpu_s"], len(runs)))
                sys.stdout.flush()
        with open(os.path.join(ROOT, "bench", "swarm-last.json"), "w") as f:
            json.dump({"size_mib": args.size_mib, "encryption": args.encryption,
                       "transport": args.transport, "results": results},
                      f, indent=1)
    finally:
        # Stopped even when a run raised (it was left running before).
        if ot:
            ot.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
