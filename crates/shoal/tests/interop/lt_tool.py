#!/usr/bin/python3
"""libtorrent helper for shoal's interoperability tests (run with Debian's /usr/bin/python3).

Subcommands (all print one JSON object on stdout):
  info TORRENT                      what libtorrent reads from a .torrent
  create (--v1|--v2|--hybrid) PATH OUT [--piece-size N]
                                    make a torrent with libtorrent's creator
  verify TORRENT SAVE_PATH          load torrent + data, full recheck, report pieces that pass
  seed TORRENT SAVE_PATH [--port P] [--peer HOST:PORT]... [--max-upload BYTES/S] [--timeout S]
                                    check the data, then seed; prints {"listening": PORT} once
                                    seeding, then runs until killed or the timeout passes
                                    --dht-bootstrap HOST:PORT (repeatable, seed and download):
                                    enable libtorrent's DHT on loopback (IP restrictions relaxed,
                                    no default routers) and add these nodes with add_dht_node
  download TORRENT SAVE_PATH [--port P] [--peer HOST:PORT]... [--linger S] [--timeout S]
                                    download until complete (then seed S more seconds);
                                    prints {"listening": PORT} at start and stats at the end
                                    --max-download BYTES/S (seed and download): download limit,
                                    applied to loopback peers too
                                    --report-peers (seed and download): the periodic stats lines
                                    also carry "peer_list": [{"ip", "port", "pid", "client",
                                    "source"}] (pid as text, source = libtorrent's peer_info
                                    source bits: 1 tracker, 2 dht, 4 pex, 8 lsd, 32 incoming)
                                    TORRENT may be a magnet URI (download): the metadata
                                    and, for v2-only magnets, the piece layers come from peers
                                    --enc-forced (seed and download): MSE/PE forced both ways,
                                    RC4 only; the stats lines carry "rc4_peers" (connected peers
                                    whose connection is RC4-encrypted) either way
                                    --utp-only (seed and download): uTP on, TCP off both ways;
                                    the stats lines carry "utp_peers" (connected peers over
                                    uTP) either way
                                    --listen-ip IP (seed and download): listen there instead of
                                    127.0.0.1 (inside a test's network namespace)
                                    --lsd (seed and download): local service discovery on
No network is used: sessions listen on 127.0.0.1 only (--listen-ip: inside a test's network
namespace), with DHT/LSD/UPnP/NAT-PMP off (LSD on with --lsd)
(DHT only on loopback with --dht-bootstrap).
"""
import json
import os
import sys
import time

import libtorrent as lt


def info(path):
    ti = lt.torrent_info(path)
    ih = ti.info_hashes()
    fs = ti.files()
    files = []
    for i in range(fs.num_files()):
        files.append({
            "path": fs.file_path(i).replace(os.sep, "/"),
            "length": fs.file_size(i),
            "pad": bool(fs.file_flags(i) & lt.file_storage.flag_pad_file),
        })
    trackers = {}
    for t in ti.trackers():
        trackers.setdefault(t.tier, []).append(t.url)
    return {
        "name": ti.name(),
        "info_hash_v1": str(ih.v1) if ih.has_v1() else None,
        "info_hash_v2": str(ih.v2) if ih.has_v2() else None,
        "piece_length": ti.piece_length(),
        "num_pieces": ti.num_pieces(),
        "total_length": ti.total_size(),
        "files": files,
        "trackers": [trackers[k] for k in sorted(trackers)],
        "private": ti.priv(),
    }


def create(mode, path, out, piece_size=0):
    fs = lt.file_storage()
    lt.add_files(fs, path)
    flags = 0
    if mode == "--v1":
        flags = lt.create_torrent.v1_only
    elif mode == "--v2":
        flags = lt.create_torrent.v2_only
    ct = lt.create_torrent(fs, piece_size, flags=flags)
    ct.set_creator("libtorrent")
    lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(path)))
    data = lt.bencode(ct.generate())
    with open(out, "wb") as f:
        f.write(data)
    return info(out)


def verify(torrent, save_path, timeout=120):
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": False,
        "enable_upnp": False, "enable_natpmp": False,
        "alert_mask": 0,
    })
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = save_path
    atp.flags &= ~lt.torrent_flags.auto_managed
    atp.flags &= ~lt.torrent_flags.paused
    h = ses.add_torrent(atp)
    deadline = time.time() + timeout
    checking = (lt.torrent_status.checking_files,
                lt.torrent_status.checking_resume_data)
    seen_done = 0
    while time.time() < deadline:
        st = h.status()
        if st.state not in checking:
            seen_done += 1
            if seen_done > 3 or st.state == lt.torrent_status.seeding:
                break
        time.sleep(0.05)
    st = h.status()
    return {"pieces_ok": st.num_pieces, "num_pieces": atp.ti.num_pieces(),
            "progress": st.progress}


# peer_info::utp_socket (bit 17), which the Python bindings do not name.
UTP_SOCKET = 1 << 17


def session(port, ip="127.0.0.1"):
    return lt.session({
        "listen_interfaces": "%s:%d" % (ip, port),
        "enable_dht": False, "enable_lsd": False,
        "enable_upnp": False, "enable_natpmp": False,
        "enable_incoming_utp": False, "enable_outgoing_utp": False,
        "ssrf_mitigation": False, "allow_multiple_connections_per_ip": True,
        "announce_to_all_tiers": True, "announce_to_all_trackers": True,
        "alert_mask": lt.alert.category_t.error_notification,
    })


def enable_loopback_dht(ses, nodes):
    """Turns on the DHT for a loopback test: no public routers, IP checks relaxed,
    and the given HOST:PORT nodes added to the routing table."""
    ses.apply_settings({
        "dht_bootstrap_nodes": "",
        "enable_dht": True,
        "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
        "dht_enforce_node_id": False, "dht_prefer_verified_node_ids": False,
    })
    for n in nodes:
        host, port = n.rsplit(":", 1)
        ses.add_dht_node((host, int(port)))


def opt(argv, name, default=None, conv=str):
    if name in argv:
        return conv(argv[argv.index(name) + 1])
    return default


def opts(argv, name):
    return [argv[i + 1] for i, a in enumerate(argv) if a == name]


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def peer_list(h):
    out = []
    for p in h.get_peer_info():
        pid = p.pid.to_bytes() if hasattr(p.pid, "to_bytes") else bytes(p.pid)
        client = p.client
        if isinstance(client, bytes):
            client = client.decode("utf-8", "replace")
        out.append({"ip": p.ip[0], "port": p.ip[1], "pid": pid.decode("latin-1"),
                    "client": client, "source": int(p.source)})
    return out


def swarm(argv, seeding):
    torrent, save_path = argv[2], argv[3]
    ses = session(opt(argv, "--port", 0, int), opt(argv, "--listen-ip", "127.0.0.1"))
    if "--lsd" in argv:
        ses.apply_settings({"enable_lsd": True})
    dht_nodes = opts(argv, "--dht-bootstrap")
    if dht_nodes:
        enable_loopback_dht(ses, dht_nodes)
    max_up = opt(argv, "--max-upload", 0, int)
    max_down = opt(argv, "--max-download", 0, int)
    if max_up:
        ses.apply_settings({"upload_rate_limit": max_up})
    if max_down:
        ses.apply_settings({"download_rate_limit": max_down})
    if max_up or max_down:
        # libtorrent exempts local peers from rate limits: put loopback peers in
        # the global class so the limit applies.
        f = lt.ip_filter()
        f.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
        ses.set_peer_class_filter(f)
    if "--enc-forced" in argv:
        ses.apply_settings({
            "in_enc_policy": int(lt.enc_policy.forced),
            "out_enc_policy": int(lt.enc_policy.forced),
            "allowed_enc_level": int(lt.enc_level.rc4),
            "prefer_rc4": True,
        })
    if "--utp-only" in argv:
        ses.apply_settings({
            "enable_incoming_utp": True, "enable_outgoing_utp": True,
            "enable_incoming_tcp": False, "enable_outgoing_tcp": False,
        })
    report_peers = "--report-peers" in argv
    # One line per block sent: {"sent": [piece, offset], "t": unix time}.
    report_uploads = "--report-uploads" in argv
    if report_uploads:
        ses.apply_settings({"alert_mask": int(lt.alert.category_t.upload_notification)
                            | int(lt.alert.category_t.status_notification)})
    if torrent.startswith("magnet:"):
        atp = lt.parse_magnet_uri(torrent)
    else:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(torrent)
    atp.save_path = save_path
    h = ses.add_torrent(atp)
    if max_up:
        h.set_upload_limit(max_up)
    emit({"listening": ses.listen_port()})
    deadline = time.time() + opt(argv, "--timeout", 600, float)
    start = time.time()
    peers_added = False
    done_at = None
    linger = opt(argv, "--linger", 0, float)
    last_stats = 0
    while time.time() < deadline:
        st = h.status()
        if time.time() - last_stats >= 0.5:
            last_stats = time.time()
            line = {"uploaded": st.total_payload_upload, "downloaded": st.total_payload_download,
                    "progress": st.progress, "peers": st.num_peers,
                    "rc4_peers": sum(1 for p in h.get_peer_info()
                                     if p.flags & lt.peer_info.rc4_encrypted),
                    "utp_peers": sum(1 for p in h.get_peer_info()
                                     if int(p.flags) & UTP_SOCKET)}
            if report_peers:
                line["peer_list"] = peer_list(h)
            emit(line)
        if st.state not in (lt.torrent_status.checking_files,
                            lt.torrent_status.checking_resume_data) and not peers_added:
            for p in opts(argv, "--peer"):
                host, port = p.rsplit(":", 1)
                h.connect_peer((host, int(port)))
            peers_added = True
            if seeding:
                emit({"seeding": st.is_seeding, "pieces": st.num_pieces})
        if not seeding and st.is_seeding and done_at is None:
            done_at = time.time()
        if done_at is not None and time.time() - done_at >= linger:
            break
        if report_uploads:
            for a in ses.pop_alerts():
                if isinstance(a, lt.block_uploaded_alert):
                    emit({"sent": [a.piece_index, a.block_index], "t": time.time()})
        time.sleep(0.05)
    st = h.status()
    emit({"complete": st.is_seeding, "seconds": (done_at or time.time()) - start,
          "downloaded": st.total_payload_download, "uploaded": st.total_payload_upload,
          "pieces": st.num_pieces})
    return 0 if (seeding or st.is_seeding) else 1


def main(argv):
    if argv[1] in ("seed", "download"):
        sys.exit(swarm(argv, argv[1] == "seed"))
    cmd = argv[1]
    if cmd == "info":
        out = info(argv[2])
    elif cmd == "create":
        piece = 0
        if "--piece-size" in argv:
            piece = int(argv[argv.index("--piece-size") + 1])
        out = create(argv[2], argv[3], argv[4], piece)
    elif cmd == "verify":
        out = verify(argv[2], argv[3])
    else:
        raise SystemExit("unknown command " + cmd)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main(sys.argv)
