"""Downloads a torrent with libtorrent from one peer on 127.0.0.1, for the wire
interop test. Usage: libtorrent_leech.py DATA_DIR SAVE_DIR PORT.
Creates DATA_DIR/v1.torrent from DATA_DIR/data.bin, prints "ready" once the
torrent is added, connects to 127.0.0.1:PORT, and exits 0 (printing "done")
when the download completes and checks, or 1 after 30 s."""
import os
import sys
import threading
import time

import libtorrent as lt

threading.Timer(40, lambda: os._exit(2)).start()
data_dir, save_dir, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fs = lt.file_storage()
lt.add_files(fs, os.path.join(data_dir, "data.bin"))
t = lt.create_torrent(fs, 32768, flags=lt.create_torrent.v1_only)
lt.set_piece_hashes(t, data_dir)
raw = lt.bencode(t.generate())
with open(os.path.join(data_dir, "v1.torrent"), "wb") as f:
    f.write(raw)
ses = lt.session({
    "listen_interfaces": "127.0.0.1:0",
    "enable_dht": False,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
})
h = ses.add_torrent({"ti": lt.torrent_info(raw), "save_path": save_dir})
print("ready", flush=True)
h.connect_peer(("127.0.0.1", port))
deadline = time.time() + 30
while time.time() < deadline:
    s = h.status()
    if s.is_seeding:
        print("done", flush=True)
        os._exit(0)
    time.sleep(0.05)
print("timeout", h.status().progress, flush=True)
os._exit(1)
