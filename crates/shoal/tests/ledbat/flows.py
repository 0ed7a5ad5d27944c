#!/usr/bin/env python3
"""Traffic helpers for ledbat_netns.rs, run inside network namespaces.

  flows.py sink PORT SECS          UDP echo on PORT and a TCP sink on PORT;
                                   prints "tcp T BYTES" for each 0.25 s of
                                   TCP data received (T: seconds since the
                                   first byte), for SECS seconds.
  flows.py probe HOST PORT SECS    a UDP probe every 50 ms; prints
                                   "rtt T MS" per echo (T: seconds since start).
  flows.py flood HOST PORT SECS    a TCP stream of zeros for SECS seconds
                                   (CUBIC, or Reno).
"""
import select, socket, sys, time

# Linux's SO_SNDBUFFORCE and SO_RCVBUFFORCE (root may pass net.core.*mem_max).
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
# The TCP flow's buffers: far above the path's bandwidth-delay product with
# a full queue (20 Mbit/s x 600 ms = 1.5 MB), so that the flow is limited by
# the bottleneck and its losses, never by a machine's default socket buffer
# maxima (a 212,992-byte cap holds a flow to about 170 ms of queue).
FLOW_BUF = 8 << 20


def big_buffers(s, opt, fallback):
    try:
        s.setsockopt(socket.SOL_SOCKET, opt, FLOW_BUF)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, fallback, FLOW_BUF)


def sink(port, secs):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("0.0.0.0", port))
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Before listen(): accepted sockets inherit it, and the window scale
    # they offer is chosen from it.
    big_buffers(l, SO_RCVBUFFORCE, socket.SO_RCVBUF)
    l.bind(("0.0.0.0", port))
    l.listen(1)
    socks = [u, l]
    conn, first, bucket, count = None, None, 0, 0
    end = time.time() + secs
    while time.time() < end:
        r, _, _ = select.select(socks, [], [], 0.05)
        for s in r:
            if s is u:
                data, addr = u.recvfrom(2048)
                u.sendto(data, addr)
            elif s is l:
                conn, _ = l.accept()
                socks.append(conn)
            else:
                data = s.recv(1 << 16)
                if not data:
                    socks.remove(s)
                    continue
                now = time.time()
                if first is None:
                    first = now
                b = int((now - first) / 0.25)
                if b != bucket:
                    print("tcp %.2f %d" % (bucket * 0.25, count), flush=True)
                    bucket, count = b, 0
                count += len(data)
    if first is not None:
        print("tcp %.2f %d" % (bucket * 0.25, count), flush=True)


def probe(host, port, secs):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    start = time.time()
    nxt = start
    while time.time() < start + secs:
        now = time.time()
        if now >= nxt:
            s.sendto(b"%.6f" % now, (host, port))
            nxt += 0.05
        r, _, _ = select.select([s], [], [], max(0.0, nxt - time.time()))
        if r:
            data, _ = s.recvfrom(2048)
            sent = float(data)
            print("rtt %.2f %.1f" % (sent - start, (time.time() - sent) * 1000), flush=True)


def flood(host, port, secs):
    c = socket.socket()
    # A loss-based TCP, the kind LEDBAT must yield to (a machine may default
    # to BBR, which keeps the queue short by itself).
    for cc in (b"cubic", b"reno"):
        try:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc)
            break
        except OSError:
            pass
    big_buffers(c, SO_SNDBUFFORCE, socket.SO_SNDBUF)
    c.connect((host, port))
    buf = bytes(1 << 16)
    end = time.time() + secs
    while time.time() < end:
        c.send(buf)
    c.close()


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "sink":
        sink(int(sys.argv[2]), float(sys.argv[3]))
    elif mode == "probe":
        probe(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif mode == "flood":
        flood(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
