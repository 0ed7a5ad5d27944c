"""Two libtorrent 2.0 sessions on 127.0.0.1, uTP only (TCP off), one seeding
a SIZE-byte file to the other, for the LEDBAT measurement (run inside the
test's network namespace). Usage: lt_pair.py DIR SIZE SECONDS.
Prints "ready" once the seed is up and the leech connects, then after SECONDS
"bytes <downloaded> utp <0|1>" and exits."""
import os
import sys
import threading
import time

import libtorrent as lt

_t = threading.Timer(300, lambda: os._exit(1))
_t.daemon = True
_t.start()
d, size, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
src = os.path.join(d, "seed")
os.makedirs(src, exist_ok=True)
path = os.path.join(src, "data.bin")
block = os.urandom(1 << 20)
with open(path, "wb") as f:
    for _ in range(size >> 20):
        f.write(block)
fs = lt.file_storage()
lt.add_files(fs, path)
t = lt.create_torrent(fs, 1 << 20, flags=lt.create_torrent.v1_only)
lt.set_piece_hashes(t, src)
info = lt.torrent_info(lt.bencode(t.generate()))
base = {
    "listen_interfaces": "127.0.0.1:0",
    "enable_dht": False,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "enable_outgoing_tcp": False,
    "enable_incoming_tcp": False,
    "allow_multiple_connections_per_ip": True,
    "out_enc_policy": lt.enc_policy.disabled,
    "in_enc_policy": lt.enc_policy.disabled,
}
seed = lt.session(base)
leech = lt.session(base)
hs = seed.add_torrent({"ti": info, "save_path": src})
while not hs.status().is_seeding:
    time.sleep(0.05)
hl = leech.add_torrent({"ti": lt.torrent_info(info), "save_path": os.path.join(d, "leech")})
hl.connect_peer(("127.0.0.1", seed.listen_port()))
deadline = time.time() + 20
while not hl.get_peer_info() and time.time() < deadline:
    time.sleep(0.05)
print("ready", flush=True)
time.sleep(secs)
peers = hl.get_peer_info()
utp = 1 if peers and int(peers[0].flags) & (1 << 17) else 0
print("bytes", hl.status().total_payload_download, "utp", utp, flush=True)
os._exit(0)
