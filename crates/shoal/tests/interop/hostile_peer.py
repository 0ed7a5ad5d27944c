#!/usr/bin/env python3
"""A hostile BitTorrent peer for shoal's robustness tests. Speaks just enough
of BEP 3 to be believed, then misbehaves. Listens on 127.0.0.1 only.

usage: hostile_peer.py MODE INFO_HASH_HEX DATA_FILE PIECE_LENGTH [--host 127.0.0.X] [--port P] [--timeout S]
  MODE corrupt   claims every piece, unchokes, answers requests with flipped bytes
       garbage   after the handshake sends random bytes
       huge      after the handshake sends a 1 GB length prefix and a trickle of bytes
DATA_FILE is the torrent's content as one stream (single-file torrent).
Prints one JSON line {"listening": PORT} at start and one JSON line per event
({"event": "connected"|"closed"|"served", ...}).
"""
import json
import os
import socket
import struct
import sys
import threading
import time


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def serve(conn, mode, info_hash, data, piece_len, num_pieces):
    t0 = time.time()
    try:
        hs = recv_exact(conn, 68)
        if hs[28:48] != info_hash:
            emit({"event": "closed", "why": "wrong info hash"})
            return
        conn.sendall(b"\x13BitTorrent protocol" + b"\0" * 8 + info_hash + b"-XX0001-hostilepeer!")
        if mode == "garbage":
            conn.sendall(os.urandom(4096))
            while conn.recv(65536):
                pass
            raise EOFError
        if mode == "huge":
            conn.sendall(struct.pack(">I", 1 << 30) + b"\x07")
            while True:
                conn.sendall(b"\0" * 1024)
                time.sleep(0.05)
        nbytes = (num_pieces + 7) // 8
        bits = bytearray(b"\xff" * nbytes)
        spare = nbytes * 8 - num_pieces
        if spare:
            bits[-1] = (0xFF << spare) & 0xFF
        conn.sendall(struct.pack(">IB", 1 + nbytes, 5) + bytes(bits))
        served = 0
        while True:
            (length,) = struct.unpack(">I", recv_exact(conn, 4))
            if length == 0:
                continue
            msg = recv_exact(conn, length)
            mid = msg[0]
            if mid == 2:  # interested
                conn.sendall(struct.pack(">IB", 1, 1))  # unchoke
            elif mid == 6:  # request
                index, begin, ln = struct.unpack(">III", msg[1:13])
                off = index * piece_len + begin
                block = bytearray(data[off:off + ln])
                for i in range(0, len(block), 97):
                    block[i] ^= 0x5A
                conn.sendall(struct.pack(">IBII", 9 + len(block), 7, index, begin) + bytes(block))
                served += 1
                if served % 16 == 1:
                    emit({"event": "served", "blocks": served})
    except (EOFError, ConnectionError, OSError) as e:
        emit({"event": "closed", "after_s": round(time.time() - t0, 3), "why": type(e).__name__})
    finally:
        conn.close()


def main(argv):
    mode, ih, path, piece_len = argv[1], bytes.fromhex(argv[2]), argv[3], int(argv[4])
    port = int(argv[argv.index("--port") + 1]) if "--port" in argv else 0
    host = argv[argv.index("--host") + 1] if "--host" in argv else "127.0.0.1"
    if not host.startswith("127."):
        raise SystemExit("loopback addresses only")
    timeout = float(argv[argv.index("--timeout") + 1]) if "--timeout" in argv else 300
    with open(path, "rb") as f:
        data = f.read()
    num_pieces = (len(data) + piece_len - 1) // piece_len
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(16)
    emit({"listening": ls.getsockname()[1]})
    deadline = time.time() + timeout
    ls.settimeout(0.5)
    while time.time() < deadline:
        try:
            conn, addr = ls.accept()
        except socket.timeout:
            continue
        emit({"event": "connected", "from": "%s:%d" % addr})
        threading.Thread(target=serve, args=(conn, mode, ih, data, piece_len, num_pieces),
                         daemon=True).start()


if __name__ == "__main__":
    main(sys.argv)
