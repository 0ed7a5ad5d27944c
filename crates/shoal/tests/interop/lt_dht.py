#!/usr/bin/python3
"""A libtorrent DHT node on loopback for shoal's DHT interoperability tests.

usage: lt_dht.py --port P [--bootstrap HOST:PORT]... [--timeout S] ACTION [ARGS] [ACTION [ARGS]]...
actions (run in order; each prints one JSON line):
  wait-nodes N             wait until the routing table holds N nodes
  announce HASH            add a torrent by info-hash: libtorrent announces it to the DHT
                           (announce_peer with its listen port) as any client does
  get-peers HASH [MIN]     dht_get_peers until MIN (default 1) peers are found
  put-immutable TEXT       BEP 44 immutable put of the string TEXT; prints its target
  get-immutable TARGET     BEP 44 immutable get
  put-mutable SEEDHEX PUBHEX TEXT SALT
                           BEP 44 mutable put (key: 32-byte ed25519 seed, its public key)
  get-mutable PUBHEX SALT  BEP 44 mutable get
  serve SECONDS            keep answering DHT queries
  print-port               prints {"port": P}
Loopback only: DHT IP restrictions are relaxed for 127.0.0.1, no default routers.
Set LT_DEBUG=1 to print every DHT alert on stderr.
"""
import hashlib
import json
import os
import sys
import tempfile
import time

import libtorrent as lt


DEBUG = bool(os.environ.get("LT_DEBUG"))


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def lt_secret_key(seed):
    """libtorrent's 64-byte ed25519 secret key (orlp/ed25519 layout) from a 32-byte seed."""
    h = bytearray(hashlib.sha512(seed).digest())
    h[0] &= 248
    h[31] &= 63
    h[31] |= 64
    return bytes(h)


def item_of(a):
    """The alert's item as text, or None when the lookup found nothing."""
    if a is None:
        return None
    try:
        item = a.item
    except RuntimeError:
        item = None
    if isinstance(item, bytes):
        return item.decode("latin-1")
    if isinstance(item, (str, int)):
        return item
    # These bindings do not always convert the entry (a sha1_hash came back for a
    # string item): read the value from the alert's message instead
    # ("DHT immutable item <target> [ 'text' ]").
    msg = a.message()
    if "[" not in msg:
        return None
    text = msg.rsplit("[", 1)[-1].strip().rstrip("]").strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        text = text[1:-1]
    return text or None


def main(argv):
    port = int(argv[argv.index("--port") + 1]) if "--port" in argv else 0
    timeout = float(argv[argv.index("--timeout") + 1]) if "--timeout" in argv else 60
    boots = [argv[i + 1] for i, a in enumerate(argv) if a == "--bootstrap"]
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:%d" % port,
        "enable_dht": False, "enable_lsd": False,
        "enable_upnp": False, "enable_natpmp": False,
        # The torrent added by `announce` finds this node's own address as a peer:
        # connecting to itself makes libtorrent ban 127.0.0.1, and then its DHT drops
        # every packet from the loopback nodes. This node makes no peer connections.
        "enable_outgoing_utp": False, "enable_outgoing_tcp": False,
        "dht_bootstrap_nodes": "",
        "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
        "dht_enforce_node_id": False, "dht_prefer_verified_node_ids": False,
        "dht_ignore_dark_internet": False, "dht_extended_routing_table": False,
        "dht_aggressive_lookups": True,
        # Every node here shares 127.0.0.1: libtorrent's per-IP DHT flood guard (5
        # packets/s by default) would ban the whole loopback DHT ("BANNING PEER").
        "dht_block_ratelimit": 1000000, "dht_block_timeout": 1,
        "alert_mask": lt.alert.category_t.dht_notification | lt.alert.category_t.error_notification
        | lt.alert.category_t.dht_operation_notification | lt.alert.category_t.tracker_notification
        | (lt.alert.category_t.all_categories if DEBUG else 0),
    })
    ses.apply_settings({"enable_dht": True})
    for b in boots:
        host, p = b.rsplit(":", 1)
        ses.add_dht_node((host, int(p)))
    deadline = time.time() + timeout

    def alerts(kind, pred=lambda a: True, until=None):
        end = min(deadline, until or deadline)
        while time.time() < end:
            ses.wait_for_alert(100)
            for a in ses.pop_alerts():
                if DEBUG:
                    sys.stderr.write("lt: %s %s\n" % (a.what(), a.message()[:300]))
                if isinstance(a, kind) and pred(a):
                    return a
        return None

    i = 1
    # skip options
    args = []
    while i < len(argv):
        if argv[i] in ("--port", "--timeout", "--bootstrap"):
            i += 2
            continue
        args.append(argv[i])
        i += 1
    j = 0
    while j < len(args):
        act = args[j]
        if act == "print-port":
            emit({"port": ses.listen_port()})
            j += 1
        elif act == "wait-nodes":
            n = int(args[j + 1]); j += 2
            got = 0
            while time.time() < deadline:
                ses.post_dht_stats()
                a = alerts(lt.dht_stats_alert, until=time.time() + 1)
                if a is not None:
                    got = sum(b["num_nodes"] for b in a.routing_table) if a.routing_table else 0
                    if got >= n:
                        break
                time.sleep(0.2)
            emit({"action": act, "nodes": got, "ok": got >= n})
        elif act == "announce":
            h = lt.sha1_hash(bytes.fromhex(args[j + 1])); j += 2
            atp = lt.add_torrent_params()
            atp.info_hashes = lt.info_hash_t(h)
            atp.save_path = tempfile.mkdtemp(prefix="lt_dht_")
            ses.add_torrent(atp)
            # The torrent's DHT get_peers returns replies; the announce follows them.
            a = alerts(lt.dht_reply_alert, until=time.time() + 10)
            emit({"action": act, "port": ses.listen_port(), "ok": a is not None})
        elif act == "get-peers":
            h = lt.sha1_hash(bytes.fromhex(args[j + 1]))
            need = 1
            j += 2
            if j < len(args) and args[j].isdigit():
                need = int(args[j]); j += 1
            peers = set()
            while time.time() < deadline and len(peers) < need:
                ses.dht_get_peers(h)
                end = time.time() + 3
                while time.time() < end and len(peers) < need:
                    a = alerts(lt.dht_get_peers_reply_alert, until=end)
                    if a is not None:
                        for ep in a.peers():
                            peers.add("%s:%d" % (ep[0], ep[1]))
            emit({"action": act, "peers": sorted(peers), "ok": len(peers) >= need})
        elif act == "put-immutable":
            text = args[j + 1]; j += 2
            target = ses.dht_put_immutable_item(text)
            a = alerts(lt.dht_put_alert)
            emit({"action": act, "target": str(target),
                  "num_success": a.num_success if a else 0, "ok": bool(a and a.num_success > 0)})
        elif act == "get-immutable":
            target = lt.sha1_hash(bytes.fromhex(args[j + 1])); j += 2
            item = None
            while time.time() < deadline and item is None:
                ses.dht_get_immutable_item(target)
                item = item_of(alerts(lt.dht_immutable_item_alert, until=time.time() + 3))
            emit({"action": act, "item": item, "ok": item is not None})
        elif act == "put-mutable":
            seed, pub, text, salt = bytes.fromhex(args[j + 1]), bytes.fromhex(args[j + 2]), args[j + 3], args[j + 4]
            j += 5
            ses.dht_put_mutable_item(lt_secret_key(seed), pub, text, salt)
            a = alerts(lt.dht_put_alert)
            emit({"action": act, "num_success": a.num_success if a else 0,
                  "seq": a.seq if a else None, "ok": bool(a and a.num_success > 0)})
        elif act == "get-mutable":
            pub, salt = bytes.fromhex(args[j + 1]), args[j + 2]; j += 3
            item, seq = None, None
            while time.time() < deadline and item is None:
                ses.dht_get_mutable_item(pub, salt)
                a = alerts(lt.dht_mutable_item_alert, until=time.time() + 3)
                item = item_of(a)
                seq = a.seq if item is not None else None
            emit({"action": act, "item": item, "seq": seq, "ok": item is not None})
        elif act == "serve":
            secs = float(args[j + 1]); j += 2
            end = min(deadline, time.time() + secs)
            while time.time() < end:
                ses.wait_for_alert(200)
                ses.pop_alerts()
            emit({"action": act, "ok": True})
        else:
            raise SystemExit("unknown action " + act)


if __name__ == "__main__":
    main(sys.argv)
