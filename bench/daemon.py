#!/usr/bin/env python3
"""10,000 small seeding torrents loaded over RPC into `shoal daemon` and into
`transmission-daemon`, same run, loopback only: RSS after loading, the time of
a `torrent-get` of all torrents with transmission-remote's list fields, the
time from restart until all are listed again and until all seed again, and the
RSS after the restart.

Usage: python3 bench/daemon.py SHOAL_BIN [N]   (bench/daemon.sh builds and runs it)
SHOAL_BENCH_TRACKER=K: every torrent names K UDP trackers on loopback (run by
this script: they answer every announce, with no peers), each in its own tier
of the announce-list, the same K for every torrent, as real torrents name a
handful of popular trackers.
Goals: shoal RSS under 200 MiB and below transmission-daemon's; the list
under 100 ms; restart under 10 s.
"""
import base64, hashlib, json, os, shutil, signal, socket, struct, subprocess, sys, tempfile, threading, time
import urllib.request, urllib.error

# transmission-remote 3.00's `-l` fields, and percentDone.
LIST_FIELDS = ["error", "errorString", "eta", "id", "isFinished", "leftUntilDone", "name",
               "peersGettingFromUs", "peersSendingToUs", "rateDownload", "rateUpload",
               "sizeWhenDone", "status", "uploadRatio", "percentDone"]


def benc(x):
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, bytes):
        return b"%d:%s" % (len(x), x)
    if isinstance(x, str):
        return benc(x.encode())
    if isinstance(x, list):
        return b"l" + b"".join(benc(v) for v in x) + b"e"
    if isinstance(x, dict):
        return b"d" + b"".join(benc(k) + benc(v) for k, v in sorted(x.items())) + b"e"
    raise TypeError(x)


def udp_tracker():
    """A BEP 15 tracker on loopback answering every announce with no peers
    (interval 30 min); its announce URL. Runs in a daemon thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))

    def serve():
        while True:
            data, addr = sock.recvfrom(2048)
            if len(data) < 16:
                continue
            action, tid = struct.unpack(">II", data[8:16])
            if action == 0:
                sock.sendto(struct.pack(">IIQ", 0, tid, 0x5EED), addr)
            elif action == 1:
                sock.sendto(struct.pack(">IIIII", 1, tid, 1800, 0, 1), addr)

    threading.Thread(target=serve, daemon=True).start()
    return "udp://127.0.0.1:%d/announce" % sock.getsockname()[1]


def make(data_dir, n, trackers=()):
    """n one-file torrents of 16 KiB each (one piece); the data in data_dir;
    each names `trackers` if given (one tier each)."""
    out = []
    for i in range(n):
        name = "t%05d.bin" % i
        body = hashlib.sha256(b"%d" % i).digest() * 512
        with open(os.path.join(data_dir, name), "wb") as f:
            f.write(body)
        info = {"name": name, "length": len(body), "piece length": 16384,
                "pieces": hashlib.sha1(body).digest()}
        top = {"info": info, "created by": "bench"}
        if trackers:
            top["announce"] = trackers[0]
        if len(trackers) > 1:
            top["announce-list"] = [[t] for t in trackers]
        out.append(benc(top))
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Rpc:
    def __init__(self, port):
        self.url = "http://127.0.0.1:%d/transmission/rpc" % port
        self.sid = ""

    def call(self, method, args=None, timeout=60):
        body = json.dumps({"method": method, "arguments": args or {}}).encode()
        for _ in range(2):
            req = urllib.request.Request(self.url, body, {"X-Transmission-Session-Id": self.sid,
                                                          "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    v = json.loads(r.read())
                    if v.get("result") != "success":
                        raise RuntimeError("%s: %s" % (method, v.get("result")))
                    return v["arguments"]
            except urllib.error.HTTPError as e:
                if e.code != 409:
                    raise
                self.sid = e.headers["X-Transmission-Session-Id"]
        raise RuntimeError("no session id")


def wait_rpc(rpc, proc, limit=60):
    end = time.time() + limit
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("the daemon exited")
        try:
            rpc.call("session-get", timeout=5)
            return
        except Exception:
            time.sleep(0.05)
    raise RuntimeError("no RPC answer")


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1]) / 1024
    return 0.0


def signal_group(proc, sig):
    """Signals the daemon's process group: the daemon itself, also when it
    runs under a wrapper (SHOAL_BENCH_WRAP)."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def list_all(rpc):
    t = time.perf_counter()
    ts = rpc.call("torrent-get", {"fields": LIST_FIELDS}, timeout=120)["torrents"]
    return time.perf_counter() - t, ts


# How long each daemon may take to check the torrents it was given (seconds):
# transmission-daemon verifies new torrents one by one, about 0.1-0.2 s each
# on a 2-core machine (20-45 min for 10,000).
SEED_WAIT = float(os.environ.get("SHOAL_BENCH_SEED_WAIT", "3600"))


def run(name, start, torrents, data_dir, results):
    port = free_port()
    proc = start(port)
    rpc = Rpc(port)
    try:
        wait_rpc(rpc, proc)
        t0 = time.time()
        for b in torrents:
            rpc.call("torrent-add", {"metainfo": base64.b64encode(b).decode(), "download-dir": data_dir})
        load = time.time() - t0
        # Until every torrent finished its check and seeds (status 6).
        end = time.time() + SEED_WAIT
        while True:
            _, ts = list_all(rpc)
            if len(ts) == len(torrents) and all(t["status"] == 6 for t in ts):
                break
            if time.time() > end:
                raise RuntimeError("%s: not all seeding" % name)
            time.sleep(1)
        time.sleep(3)
        rss = rss_mib(proc.pid)
        lists = sorted(list_all(rpc)[0] for _ in range(5))
        signal_group(proc, signal.SIGTERM)
        proc.wait(timeout=120)
        proc = start(port)
        t0 = time.time()
        rpc = Rpc(port)
        wait_rpc(rpc, proc, limit=120)
        while True:
            _, ts = list_all(rpc)
            if len(ts) == len(torrents):
                break
            if time.time() - t0 > 300:
                raise RuntimeError("%s: not all back" % name)
            time.sleep(0.05)
        restart = time.time() - t0
        # Then until every torrent seeds again (its resume check done).
        while True:
            _, ts = list_all(rpc)
            if all(t["status"] == 6 for t in ts):
                break
            if time.time() - t0 > SEED_WAIT:
                raise RuntimeError("%s: not all seeding after the restart" % name)
            time.sleep(0.2)
        reseed = time.time() - t0
        time.sleep(3)
        rss2 = rss_mib(proc.pid)
        results[name] = {"rss_mib": rss, "list_s": lists[2], "restart_s": restart, "load_s": load,
                         "reseed_s": reseed, "rss_restarted_mib": rss2}
        print("%-20s RSS %7.1f MiB   list (median of 5) %7.1f ms   restart %6.2f s   load over RPC %6.1f s"
              "   seeding again %6.2f s   RSS after restart %7.1f MiB"
              % (name, rss, lists[2] * 1000, restart, load, reseed, rss2), flush=True)
    finally:
        if proc.poll() is None:
            signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                signal_group(proc, signal.SIGKILL)


def main():
    shoal = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    root = tempfile.mkdtemp(prefix="shoal-bench-daemon-")
    try:
        data = os.path.join(root, "data")
        os.makedirs(data)
        trackers = [udp_tracker() for _ in range(int(os.environ.get("SHOAL_BENCH_TRACKER") or 0))]
        print("making %d torrents of 16 KiB%s" % (n, ", each with " + " ".join(trackers) if trackers else ""),
              flush=True)
        torrents = make(data, n, trackers)
        results = {}
        env = dict(os.environ, SHOAL_NO_DEFAULT_BOOTSTRAP="1")

        def shoal_start(port):
            # SHOAL_BENCH_WRAP: a command to run the daemon under (e.g. heaptrack).
            wrap = os.environ.get("SHOAL_BENCH_WRAP", "").split()
            return subprocess.Popen(wrap + [shoal, "daemon", "--http", "127.0.0.1:%d" % port,
                                     "--listen", "127.0.0.1:0", "--no-dht",
                                     "--state-dir", os.path.join(root, "shoal-state"),
                                     "--download-dir", data, "--peer-limit-global", "100"],
                                    env=env, stdout=subprocess.DEVNULL, start_new_session=True,
                                    stderr=open(os.path.join(root, "shoal.err"), "a"))

        def tr_start(port):
            conf = os.path.join(root, "tr-config")
            os.makedirs(conf, exist_ok=True)
            settings = os.path.join(conf, "settings.json")
            if not os.path.exists(settings):
                with open(settings, "w") as f:
                    json.dump({"rpc-port": port, "rpc-bind-address": "127.0.0.1",
                               "rpc-authentication-required": False, "rpc-whitelist-enabled": False,
                               "rpc-host-whitelist-enabled": False, "dht-enabled": False,
                               "lpd-enabled": False, "pex-enabled": False, "utp-enabled": False,
                               "port-forwarding-enabled": False, "peer-port": free_port(),
                               "bind-address-ipv4": "127.0.0.1", "bind-address-ipv6": "::1",
                               "download-dir": data, "download-queue-enabled": False,
                               "seed-queue-enabled": False, "message-level": 1}, f)
            return subprocess.Popen(["transmission-daemon", "-f", "-g", conf],
                                    stdout=subprocess.DEVNULL, start_new_session=True,
                                    stderr=open(os.path.join(root, "tr.err"), "a"))

        # SHOAL_BENCH_ONLY=shoal|transmission runs one side (no ratios).
        only = os.environ.get("SHOAL_BENCH_ONLY", "")
        if only != "transmission":
            run("shoal daemon", shoal_start, torrents, data, results)
        if only != "shoal":
            run("transmission-daemon", tr_start, torrents, data, results)
        if only:
            return
        s, t = results["shoal daemon"], results["transmission-daemon"]
        print("ratios shoal/transmission: RSS %.2f   list %.2f   restart %.2f"
              % (s["rss_mib"] / t["rss_mib"], s["list_s"] / t["list_s"], s["restart_s"] / t["restart_s"]))
        ok = s["rss_mib"] < 200 and s["rss_mib"] < t["rss_mib"] and s["list_s"] < 0.1 and s["restart_s"] < 10
        print("goals (RSS < 200 MiB and < transmission's, list < 100 ms, restart < 10 s): %s"
              % ("met" if ok else "NOT met"))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
