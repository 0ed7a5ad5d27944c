"""libtorrent on uTP only (TCP off both ways), seeding a deterministic v1
torrent on 127.0.0.1, for the uTP interop test. Usage: lt_utp.py DIR SIZE.
Prints one line: "<infohash-hex> <port> <piece-length> <length> <piece-hashes-hex>".
Then reads commands on stdin:
  connect PORT   connect to a peer at 127.0.0.1:PORT (over uTP)
  peers          print "peers" and one line per peer: "ip:port utp=0|1 client"
Exits when stdin closes or after 120 s."""
import hashlib
import os
import sys
import threading
import time

import libtorrent as lt

_t = threading.Timer(120, lambda: os._exit(0))
_t.daemon = True
_t.start()
d, size = sys.argv[1], int(sys.argv[2])
path = os.path.join(d, "data.bin")
block = bytes((i * 31 + 7) % 251 for i in range(1 << 16))
with open(path, "wb") as f:
    left = size
    while left > 0:
        f.write(block[: min(left, len(block))])
        left -= len(block)
fs = lt.file_storage()
lt.add_files(fs, path)
piece = 1 << 16
t = lt.create_torrent(fs, piece, flags=lt.create_torrent.v1_only)
lt.set_piece_hashes(t, d)
info = lt.torrent_info(lt.bencode(t.generate()))
ses = lt.session({
    "listen_interfaces": "127.0.0.1:0",
    "enable_dht": False,
    # peers are keyed by address and port, so our listener (another port)
    # is a new candidate right after our outgoing connection ends
    "allow_multiple_connections_per_ip": True,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "enable_outgoing_tcp": False,
    "enable_incoming_tcp": False,
    "enable_outgoing_utp": True,
    "enable_incoming_utp": True,
    "out_enc_policy": lt.enc_policy.disabled,
    "in_enc_policy": lt.enc_policy.disabled,
    "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.peer_notification | lt.alert.category_t.connect_notification,
})
def _alerts():
    while True:
        ses.wait_for_alert(500)
        for a in ses.pop_alerts():
            if os.environ.get("LT_UTP_DEBUG"):
                print("lt:", a.message(), file=sys.stderr, flush=True)
threading.Thread(target=_alerts, daemon=True).start()
h = ses.add_torrent({"ti": info, "save_path": d})
deadline = time.time() + 30
while not h.status().is_seeding and time.time() < deadline:
    time.sleep(0.05)
hashes = "".join(bytes(info.hash_for_piece(i)).hex() for i in range(info.num_pieces()))
print(info.info_hashes().v1.to_bytes().hex(), ses.listen_port(), piece, size, hashes, flush=True)
for line in sys.stdin:
    cmd = line.split()
    if not cmd:
        continue
    if cmd[0] == "connect":
        h.connect_peer(("127.0.0.1", int(cmd[1])))
    elif cmd[0] == "peers":
        print("peers", flush=True)
        for p in h.get_peer_info():
            utp = 1 if int(p.flags) & (1 << 17) else 0
            print(f"{p.ip[0]}:{p.ip[1]} utp={utp} {p.client}", flush=True)
        print("end", flush=True)
os._exit(0)
