"""Seeds a small deterministic torrent with libtorrent on 127.0.0.1 for the
wire interop test (a hybrid v1+v2 torrent). Usage: libtorrent_seed.py DIR.
Prints "<v1-infohash-hex> <v2-infohash-hex> <port>"; also writes DIR/v1.torrent
and seeds until stdin closes (or 60 s pass)."""
import os
import sys
import threading
import time

import libtorrent as lt

threading.Timer(60, lambda: os._exit(0)).start()
d = sys.argv[1]
path = os.path.join(d, "data.bin")
with open(path, "wb") as f:
    f.write(bytes((i * 31 + 7) % 251 for i in range(300_000)))
fs = lt.file_storage()
lt.add_files(fs, path)
t = lt.create_torrent(fs, 32768)
lt.set_piece_hashes(t, d)
info = lt.torrent_info(lt.bencode(t.generate()))
# a v1-only .torrent of the same data, for clients without v2 (aria2)
t1 = lt.create_torrent(fs, 32768, flags=lt.create_torrent.v1_only)
lt.set_piece_hashes(t1, d)
with open(os.path.join(d, "v1.torrent"), "wb") as f:
    f.write(lt.bencode(t1.generate()))
ses = lt.session({
    "listen_interfaces": "127.0.0.1:0",
    "enable_dht": False,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
})
h = ses.add_torrent({"ti": info, "save_path": d})
deadline = time.time() + 20
while not h.status().is_seeding and time.time() < deadline:
    time.sleep(0.05)
ih = info.info_hashes()
print(ih.v1.to_bytes().hex(), ih.v2.to_bytes().hex(), ses.listen_port(), flush=True)
sys.stdin.read()
os._exit(0)
