#!/usr/bin/python3
"""Benchmark: checking 1 GiB of data against its torrent (issue 14).

shoal verify vs libtorrent's force_recheck (Python bindings) and Transmission's
verify (transmission-daemon on loopback, driven by its RPC as
`transmission-remote -v` does), on the same file and the same v1 torrent
(1 MiB pieces), with a warm page cache and a cold one (caches dropped before
each run: needs root). Median of RUNS per cell; the last columns are each
anchor's time divided by shoal's (> 1: shoal is faster).

Usage: bench/verify.py [--size-mib 1024] [--runs 3] [--modes warm,cold]
       (run as root with /usr/bin/python3; needs python3-libtorrent and
       transmission-daemon). Everything listens on 127.0.0.1 only.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def warm(path):
    with open(path, "rb") as f:
        while f.read(8 << 20):
            pass


class Shoal:
    name = "shoal verify"

    def __init__(self, shoal, torrent, data, extra=()):
        self.cmd = [shoal, "verify", torrent, "--data", data, "--json", *extra]
        if extra:
            self.name += " " + " ".join(extra)

    def run(self):
        t = time.monotonic()
        out = subprocess.run(self.cmd, capture_output=True, timeout=600)
        secs = time.monotonic() - t
        v = json.loads(out.stdout)
        if out.returncode != 0 or not v["ok"]:
            raise SystemExit(f"shoal verify failed: {out.stderr.decode()}")
        return secs

    def close(self):
        pass


class Libtorrent:
    def __init__(self, torrent, data, hashing_threads=None):
        import libtorrent as lt

        self.lt = lt
        settings = {
            "listen_interfaces": f"127.0.0.1:{free_port()}",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
        }
        self.name = "libtorrent force_recheck"
        if hashing_threads:
            settings["hashing_threads"] = hashing_threads
            self.name += f" ({hashing_threads} hashing threads)"
        self.ses = lt.session(settings)
        ti = lt.torrent_info(torrent)
        self.h = self.ses.add_torrent({"ti": ti, "save_path": data})
        self.wait_seeding(120)

    def wait_seeding(self, limit):
        lt = self.lt
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            s = self.h.status()
            if s.state in (lt.torrent_status.seeding, lt.torrent_status.finished) and s.progress >= 1.0:
                return
            time.sleep(0.002)
        raise SystemExit(f"libtorrent: no full check within {limit} s")

    def run(self):
        lt = self.lt
        t = time.monotonic()
        self.h.force_recheck()
        # The check starts asynchronously: wait until it has, then until done.
        while self.h.status().state not in (
            lt.torrent_status.checking_files,
            lt.torrent_status.checking_resume_data,
        ):
            if time.monotonic() - t > 5:
                break
            time.sleep(0.001)
        self.wait_seeding(600)
        return time.monotonic() - t

    def close(self):
        self.ses.remove_torrent(self.h)
        del self.ses


class Transmission:
    name = "transmission verify"

    def __init__(self, torrent, data, work):
        self.conf = os.path.join(work, "tr-conf")
        os.makedirs(self.conf, exist_ok=True)
        self.port = free_port()
        settings = {
            "rpc-port": self.port,
            "rpc-bind-address": "127.0.0.1",
            "rpc-whitelist-enabled": False,
            "rpc-authentication-required": False,
            "bind-address-ipv4": "127.0.0.1",
            "bind-address-ipv6": "::1",
            "peer-port": free_port(),
            "dht-enabled": False,
            "lpd-enabled": False,
            "pex-enabled": False,
            "utp-enabled": False,
            "port-forwarding-enabled": False,
            "download-dir": data,
            "start-added-torrents": False,
        }
        with open(os.path.join(self.conf, "settings.json"), "w") as f:
            json.dump(settings, f)
        self.proc = subprocess.Popen(
            ["transmission-daemon", "-f", "-g", self.conf],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.sid = ""
        deadline = time.monotonic() + 20
        while True:
            try:
                self.rpc("session-get", {})
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("transmission-daemon did not answer")
                time.sleep(0.1)
        with open(torrent, "rb") as f:
            import base64

            meta = base64.b64encode(f.read()).decode()
        r = self.rpc("torrent-add", {"metainfo": meta, "download-dir": data, "paused": True})
        added = r["arguments"].get("torrent-added") or r["arguments"].get("torrent-duplicate")
        self.id = added["id"]
        # Let an initial check (if any) finish.
        self.wait_idle(120)

    def rpc(self, method, args):
        body = json.dumps({"method": method, "arguments": args}).encode()
        for _ in range(2):
            req = urllib.request.Request(
                f"http://127.0.0.1:{self.port}/transmission/rpc",
                data=body,
                headers={"X-Transmission-Session-Id": self.sid},
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    return json.loads(resp.read())
            except urllib.error.HTTPError as e:
                if e.code != 409:
                    raise
                self.sid = e.headers["X-Transmission-Session-Id"]
        raise SystemExit("transmission: no session id")

    def status(self):
        r = self.rpc("torrent-get", {"ids": [self.id], "fields": ["status", "percentDone"]})
        t = r["arguments"]["torrents"][0]
        return t["status"], t["percentDone"]

    def wait_idle(self, limit):
        # status: 0 stopped, 1 check wait, 2 checking.
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.status()[0] not in (1, 2):
                return
            time.sleep(0.005)
        raise SystemExit(f"transmission: still checking after {limit} s")

    def run(self):
        t = time.monotonic()
        self.rpc("torrent-verify", {"ids": [self.id]})
        while self.status()[0] not in (1, 2) and time.monotonic() - t < 5:
            time.sleep(0.001)
        self.wait_idle(600)
        secs = time.monotonic() - t
        if self.status()[1] < 1.0:
            raise SystemExit("transmission: data not complete after verify")
        return secs

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--modes", default="warm,cold")
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    modes = a.modes.split(",")
    if "cold" in modes and os.geteuid() != 0:
        raise SystemExit("cold runs drop the page cache: run as root")
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "shoal"], cwd=ROOT, check=True)
    shoal = os.path.join(ROOT, "target", "release", "shoal")
    work = tempfile.mkdtemp(prefix="shoal-bench-verify.")
    contenders = []
    try:
        data = os.path.join(work, "data")
        os.makedirs(data)
        path = os.path.join(data, "bench.bin")
        with open(path, "wb") as f:
            left = a.size_mib << 20
            while left:
                n = min(left, 8 << 20)
                f.write(os.urandom(n))
                left -= n
        torrent = os.path.join(work, "bench.torrent")
        subprocess.run(
            [shoal, "create", path, "-o", torrent, "--v1", "--piece-size", "1M"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        contenders = [
            Shoal(shoal, torrent, data),
            Libtorrent(torrent, data),
            Libtorrent(torrent, data, hashing_threads=2),
            Transmission(torrent, data, work),
        ]
        results = {}
        for mode in modes:
            times = {c.name: [] for c in contenders}
            for _ in range(a.runs):
                # Interleave the contenders so load changes hit them alike.
                for c in contenders:
                    if mode == "cold":
                        drop_caches()
                    else:
                        warm(path)
                    times[c.name].append(c.run())
            results[mode] = {n: statistics.median(v) for n, v in times.items()}
        size = a.size_mib
        print(f"\n{size} MiB, 1 MiB pieces, v1, median of {a.runs}; ratio = contender s / shoal s\n")
        print("| contender | " + " | ".join(f"{m} s | {m} MiB/s | {m} ratio" for m in modes) + " |")
        print("|---|" + "---|---|---|" * len(modes))
        for c in contenders:
            cells = []
            for m in modes:
                s = results[m][c.name]
                base = results[m][contenders[0].name]
                cells.append(f"{s:.3f} | {size / s:.0f} | {s / base:.2f}")
            print(f"| {c.name} | " + " | ".join(cells) + " |")
    finally:
        for c in contenders:
            c.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
