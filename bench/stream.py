#!/usr/bin/env python3
"""Streaming while downloading, loopback only: an MP4 whose `moov` index is
at the end, sent by a rate-limited libtorrent seeder.

shoal: `shoal daemon` adds the magnet (x.pe = the seeder); measured from the
add: time to first byte of GET /stream/H/0 (metadata included), time until
`ffprobe URL` succeeds (it reads the start, then the moov at the end), and
the whole download's time.

Anchor, same run, same seeder settings (a fresh seeder per client):
libtorrent (Python bindings) adds the same magnet, sets set_piece_deadline
on the first piece and on the pieces holding the moov as soon as the
metadata is there; measured: first piece, first piece + moov pieces (what
ffprobe needs), whole download.

Usage: python3 bench/stream.py SHOAL_BIN [MIB]   (bench/stream.sh builds and runs it)
"""
import json, os, shutil, socket, subprocess, sys, tempfile, time
import urllib.error, urllib.request

import libtorrent as lt

HERE = os.path.dirname(os.path.abspath(__file__))
LT_TOOL = os.path.join(HERE, "..", "crates", "shoal", "tests", "interop", "lt_tool.py")
RATES = [500_000, 2_000_000]          # seeder upload limit, bytes/s
PIECES = [64 * 1024, 256 * 1024]      # piece sizes
LIMIT = 300                           # bound of any one wait, s


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def make_mp4(path, mib):
    # Noise keeps the video from compressing to nothing; ~0.75 MiB a second.
    secs = max(2, int(mib / 0.75))
    subprocess.run(["ffmpeg", "-y", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=size=640x360:rate=25:duration=%d" % secs,
                    "-vf", "noise=alls=25:allf=t", "-c:v", "mpeg4", "-q:v", "12", path],
                   check=True, timeout=LIMIT)


def seeder(torrent, src, rate, logs):
    p = subprocess.Popen(["/usr/bin/python3", LT_TOOL, "seed", torrent, src,
                          "--max-upload", str(rate)],
                         stdout=subprocess.PIPE, stderr=open(logs, "w"), text=True)
    port = None
    end = time.time() + 60
    while time.time() < end:
        line = p.stdout.readline()
        if not line:
            break
        v = json.loads(line)
        port = v.get("listening", port)
        if v.get("seeding"):
            return p, port
    p.kill()
    raise RuntimeError("the seeder did not start (%s)" % logs)


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def http(url, method="GET", headers=None, body=None, timeout=LIMIT):
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=body)
    return urllib.request.urlopen(req, timeout=timeout)


def run_shoal(shoal, magnet, ih, work):
    state, dl = os.path.join(work, "state"), os.path.join(work, "dl")
    port = free_port()
    env = dict(os.environ, SHOAL_NO_DEFAULT_BOOTSTRAP="1")
    d = subprocess.Popen([shoal, "daemon", "--http", "127.0.0.1:%d" % port,
                          "--listen", "127.0.0.1:0", "--no-dht", "--state-dir", state,
                          "--download-dir", dl], env=env,
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "daemon.err"), "w"))
    base = "http://127.0.0.1:%d" % port
    try:
        end = time.time() + 60
        while True:
            try:
                http(base + "/api/v1/session", timeout=2).read()
                break
            except OSError:
                if time.time() > end:
                    raise
                time.sleep(0.05)
        t0 = time.time()
        http(base + "/api/v1/torrents", "POST", {"Content-Type": "application/json"},
             json.dumps({"magnet": magnet}).encode()).read()
        url = "%s/stream/%s/0" % (base, ih)
        while True:
            try:
                http(url, "HEAD", timeout=5).read()
                break
            except urllib.error.HTTPError as e:
                if e.code != 503 or time.time() - t0 > LIMIT:
                    raise
                time.sleep(0.02)
        r = http(url, headers={"Range": "bytes=0-"})
        r.read(1)
        ttfb = time.time() - t0
        r.close()
        subprocess.run(["ffprobe", "-v", "error", "-rw_timeout", "120000000",
                        "-show_entries", "format=duration", "-of", "json", url],
                       check=True, timeout=LIMIT, stdout=subprocess.DEVNULL)
        probe = time.time() - t0
        while True:
            t = json.load(http("%s/api/v1/torrents/%s" % (base, ih)))
            if t["pieces_have"] == t["pieces"] and t["pieces"] > 0:
                break
            if time.time() - t0 > LIMIT:
                raise RuntimeError("shoal did not complete")
            time.sleep(0.05)
        whole = time.time() - t0
        return ttfb, probe, whole
    finally:
        stop(d)


def run_lt(magnet, moov_at, work):
    ses = lt.session({"listen_interfaces": "127.0.0.1:%d" % free_port(),
                      "enable_dht": False, "enable_lsd": False, "enable_upnp": False,
                      "enable_natpmp": False, "enable_incoming_utp": False,
                      "enable_outgoing_utp": False,
                      "alert_mask": lt.alert.category_t.error_notification})
    atp = lt.parse_magnet_uri(magnet)
    atp.save_path = work
    t0 = time.time()
    h = ses.add_torrent(atp)
    while not h.status().has_metadata:
        if time.time() - t0 > LIMIT:
            raise RuntimeError("libtorrent: no metadata")
        time.sleep(0.01)
    ti = h.torrent_file()
    n, plen = ti.num_pieces(), ti.piece_length()
    moov = list(range(moov_at // plen, n))
    h.set_piece_deadline(0, 0)
    for i, p in enumerate(moov):
        h.set_piece_deadline(p, 100 * (i + 1))
    first = needed = None
    while True:
        st = h.status()
        have = st.pieces
        now = time.time() - t0
        if first is None and have and have[0]:
            first = now
        if needed is None and have and have[0] and all(have[p] for p in moov):
            needed = now
        if st.is_seeding:
            return first, needed if needed is not None else now, now
        if now > LIMIT:
            raise RuntimeError("libtorrent did not complete")
        time.sleep(0.01)


def main():
    shoal = os.path.abspath(sys.argv[1])
    mib = float(sys.argv[2]) if len(sys.argv) > 2 else 6
    root = tempfile.mkdtemp(prefix="shoal-stream-bench-")
    try:
        src = os.path.join(root, "src")
        os.makedirs(src)
        clip = os.path.join(src, "clip.mp4")
        make_mp4(clip, mib)
        data = open(clip, "rb").read()
        moov_at = data.rfind(b"moov") - 4
        print("file: %.1f MiB, moov at %.1f%%" % (len(data) / 2**20, 100 * moov_at / len(data)))
        print("%-10s %-7s | %-28s | %-28s" % ("rate", "piece", "shoal: ttfb / ffprobe / all (s)",
                                               "libtorrent: first / moov / all"))
        for rate in RATES:
            for piece in PIECES:
                t = os.path.join(root, "clip-%d.torrent" % piece)
                subprocess.run([shoal, "create", "-l", str(piece), "-o", t, clip], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=LIMIT)
                ih = str(lt.torrent_info(t).info_hashes().v1)
                res = {}
                for who in ("shoal", "libtorrent"):
                    work = tempfile.mkdtemp(dir=root)
                    seed, port = seeder(t, src, rate, os.path.join(work, "seed.err"))
                    magnet = "magnet:?xt=urn:btih:%s&dn=clip.mp4&x.pe=127.0.0.1:%d" % (ih, port)
                    try:
                        res[who] = (run_shoal(shoal, magnet, ih, work) if who == "shoal"
                                    else run_lt(magnet, moov_at, work))
                    finally:
                        stop(seed)
                s, l = res["shoal"], res["libtorrent"]
                print("%-10s %-7s | %6.2f / %6.2f / %6.2f     | %6.2f / %6.2f / %6.2f" % (
                    "%d KB/s" % (rate // 1000), "%d KiB" % (piece // 1024),
                    s[0], s[1], s[2], l[0], l[1], l[2]), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
