"""libtorrent 2.0 with LSD on, listening on ADDR (inside the test's network
namespace), with one public torrent. Usage: lt_lsd.py DIR ADDR.
Prints "<infohash-hex> <port>"; exits when stdin closes or after 60 s."""
import os
import sys
import threading
import time

import libtorrent as lt

_t = threading.Timer(60, lambda: os._exit(1))
_t.daemon = True
_t.start()
d, addr = sys.argv[1], sys.argv[2]
path = os.path.join(d, "lsd.bin")
with open(path, "wb") as f:
    f.write(os.urandom(1 << 16))
fs = lt.file_storage()
lt.add_files(fs, path)
t = lt.create_torrent(fs, 1 << 14, flags=lt.create_torrent.v1_only)
lt.set_piece_hashes(t, d)
info = lt.torrent_info(lt.bencode(t.generate()))
ses = lt.session({
    "listen_interfaces": addr + ":0",
    "enable_dht": False,
    "enable_lsd": True,
    "enable_upnp": False,
    "enable_natpmp": False,
})
h = ses.add_torrent({"ti": info, "save_path": d})
print(info.info_hashes().v1.to_bytes().hex(), ses.listen_port(), flush=True)

sys.stdin.read()
os._exit(0)
