# Drives libtorrent's DHT on loopback for shoal's interop test.
# usage: lt_dht.py LISTEN_PORT BOOTSTRAP_ADDR ANNOUNCE_HEX SEARCH_HEX GET_TARGET_HEX TIMEOUT_S
# Announces ANNOUNCE_HEX (as a magnet it downloads), puts the immutable item
# "Hello World!", searches SEARCH_HEX and fetches the immutable item GET_TARGET_HEX.
# Prints "FOUND ip:port" for the first peer found and "ITEM <repr>" for the item;
# keeps its DHT node running until TIMEOUT_S (or until killed).
import os, sys, tempfile, time
import libtorrent as lt

DEBUG = os.environ.get('LT_DEBUG') is not None
port, boot, ann, search, get_target, timeout = sys.argv[1:7]
s = lt.session({
    'listen_interfaces': '127.0.0.1:%s' % port,
    'enable_dht': True, 'enable_lsd': False, 'enable_upnp': False, 'enable_natpmp': False,
    'dht_restrict_routing_ips': False, 'dht_restrict_search_ips': False,
    'dht_enforce_node_id': False, 'dht_prefer_verified_node_ids': False,
    'dht_bootstrap_nodes': boot,
    'alert_mask': lt.alert.category_t.all_categories,
})
deadline = time.time() + float(timeout)
# Adding a magnet makes libtorrent announce it to the DHT on its listen port (the
# bindings' dht_announce cannot be called with flags in this version).
atp = lt.parse_magnet_uri('magnet:?xt=urn:btih:' + ann)
atp.save_path = tempfile.mkdtemp()
s.add_torrent(atp)
search_h = lt.sha1_hash(bytes.fromhex(search))
get_h = lt.sha1_hash(bytes.fromhex(get_target))
last = 0
found = False
item = False
while time.time() < deadline:
    if time.time() - last > 1.0:
        last = time.time()
        s.dht_get_peers(search_h)
        s.dht_put_immutable_item('Hello World!')
        if not item:
            s.dht_get_immutable_item(get_h)
    s.wait_for_alert(200)
    for a in s.pop_alerts():
        if DEBUG and a.what().startswith('dht'):
            print(a.what(), a.message()[:300], file=sys.stderr)
        if isinstance(a, lt.dht_get_peers_reply_alert):
            for p in a.peers():
                if not found:
                    print("FOUND %s:%d" % (p[0], p[1]), flush=True)
                found = True
        if isinstance(a, lt.dht_immutable_item_alert) and not item:
            # The bindings cannot convert an integer entry: parse the message
            # ("DHT immutable item <target> [ 42 ]").
            print("ITEM %s" % a.message().rsplit('[', 1)[-1].strip(' ]'), flush=True)
            item = True
sys.exit(0 if found and item else 1)
