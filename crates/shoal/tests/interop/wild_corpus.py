#!/usr/bin/python3
"""Torrent files "from the wild" for shoal's interop_wild test (issue 15).

Subcommands (run with Debian's /usr/bin/python3, which has the libtorrent bindings):
  write DIR          writes one .torrent per case into DIR and DIR/manifest.json:
                     a list of {"name", "file", "shoal", "libtorrent", "transmission",
                     "reason", "why", "note", "transmission_hash_of"}: the
                     verdict ("load" or "refuse")
                     expected of each client, the reason (a phrase shoal's error
                     message or irregularity note must contain), why shoal's
                     verdict differs from libtorrent's (where it does), and how
                     Transmission differs from libtorrent (where it does; shoal
                     follows libtorrent), and the case whose info-hash
                     Transmission's must equal (itself unless noted).
  libtorrent FILE... prints one JSON object {FILE: {"verdict", "error", "info_hash_v1",
                     "info_hash_v2", "files"}} with what libtorrent 2.0.8 does with
                     each file: "load" only if lt.torrent_info accepts it AND a
                     session's add_torrent accepts it (libtorrent checks v2 piece
                     layers against their pieces roots only there).

Each case is written byte by byte (dictionaries are lists of pairs, so keys
can be out of order or repeated, and raw bytes can be spliced in), so the
corpus does not depend on any bencode library's idea of canonical form.
No network is used: the session listens on 127.0.0.1 only, with DHT, LSD,
UPnP and NAT-PMP off, and every torrent is added paused.
"""
import hashlib
import json
import os
import sys
import tempfile

BLOCK = 16384


# ---------- a bencoder that writes exactly what it is given ----------

class Raw(bytes):
    """Bytes spliced into the output as they are."""


class D:
    """A dictionary written in the given order (possibly unsorted, possibly with repeats)."""

    def __init__(self, pairs):
        self.pairs = [(k.encode() if isinstance(k, str) else k, v) for k, v in pairs]


def sd(pairs):
    """A dictionary with its keys sorted, as canonical bencode wants."""
    d = D(pairs)
    d.pairs.sort(key=lambda kv: kv[0])
    return d


def benc(v):
    if isinstance(v, Raw):
        return bytes(v)
    if isinstance(v, bool):
        raise TypeError("no booleans in bencode")
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, (bytes, bytearray)):
        return b"%d:" % len(v) + bytes(v)
    if isinstance(v, list):
        return b"l" + b"".join(benc(x) for x in v) + b"e"
    if isinstance(v, D):
        return b"d" + b"".join(benc(k) + benc(x) for k, x in v.pairs) + b"e"
    raise TypeError(type(v))


# ---------- content and hashes ----------

def content(length, seed):
    """Deterministic file content."""
    out = bytearray(length)
    x = (seed * 2654435761 + 1) & 0xFFFFFFFF
    for i in range(length):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = x >> 16 & 0xFF
    return bytes(out)


def sha1_pieces(stream, pl):
    return b"".join(hashlib.sha1(stream[i:i + pl]).digest() for i in range(0, len(stream), pl))


def pair(a, b):
    return hashlib.sha256(a + b).digest()


def merkle(nodes, width, pad):
    """Root over `nodes` padded to `width` (a power of two) with `pad`."""
    layer = list(nodes) + [pad] * (width - len(nodes))
    while len(layer) > 1:
        layer = [pair(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
    return layer[0]


def pow2(n):
    w = 1
    while w < n:
        w *= 2
    return w


def v2_hashes(data, pl):
    """(pieces root, piece layer) of one file, per BEP 52."""
    leaves = [hashlib.sha256(data[i:i + BLOCK]).digest() for i in range(0, len(data), BLOCK)]
    root = merkle(leaves, pow2(len(leaves)), b"\0" * 32)
    per_piece = pl // BLOCK
    layer = [merkle(leaves[i:i + per_piece], per_piece, b"\0" * 32)
             for i in range(0, len(leaves), per_piece)]
    return root, layer


# ---------- torrent builders ----------

PL = 32768  # piece length of every case


def v1_info(pairs_order=None, length=100_000, name="wild.bin", extra=()):
    data = content(length, 1)
    fields = {
        "length": length,
        "name": name,
        "piece length": PL,
        "pieces": sha1_pieces(data, PL),
    }
    order = pairs_order or sorted(fields)
    return D([(k, fields[k]) for k in order] + list(extra))


def v1_multi_info(paths):
    files, stream = [], b""
    for i, (path, length) in enumerate(paths):
        data = content(length, 10 + i)
        stream += data
        files.append(sd([("length", length), ("path", path)]))
    return sd([("files", files), ("name", "wild"), ("piece length", PL),
               ("pieces", sha1_pieces(stream, PL))])


def v2_parts(specs, hybrid=False):
    """File tree, v1 file list (hybrid) and piece layers for [(name, length, leaf_extra)]."""
    tree, v1_files, layers, stream = [], [], [], b""
    for i, (name, length, leaf_extra) in enumerate(specs):
        data = content(length, 20 + i)
        leaf = [("length", length)]
        if length > 0:
            root, layer = v2_hashes(data, PL)
            leaf.append(("pieces root", root))
            if length > PL:
                layers.append((root, b"".join(layer)))
        leaf = sd(leaf + list(leaf_extra))
        tree.append((name, D([("", leaf)])))
        v1_files.append(sd([("length", length), ("path", [name])]))
        stream += data
        if hybrid and i + 1 < len(specs) and length % PL:
            pad = PL - length % PL
            v1_files.append(sd([("attr", "p"), ("length", pad), ("path", [".pad", str(pad)])]))
            stream += b"\0" * pad
    return sd(tree), v1_files, layers, stream


def v2_info(specs, hybrid=False, order=None):
    tree, v1_files, layers, stream = v2_parts(specs, hybrid)
    fields = {"file tree": tree, "meta version": 2, "name": "wild", "piece length": PL}
    if hybrid:
        fields["files"] = v1_files
        fields["pieces"] = sha1_pieces(stream, PL)
    keys = order or sorted(fields)
    return D([(k, fields[k]) for k in keys]), layers


def torrent(info, layers=None, announce=True, top_order=None, extra=()):
    fields = {"info": info, "created by": "wild_corpus.py"}
    if announce:
        fields["announce"] = "http://127.0.0.1:6969/announce"
    if layers is not None:
        fields["piece layers"] = layers if isinstance(layers, (D, Raw, str, bytes)) else sd(layers)
    keys = top_order or sorted(fields)
    return benc(D([(k, fields[k]) for k in keys] + list(extra)))


TWO_BIG = [("a.bin", 3 * PL + 1000, ()), ("b.bin", 2 * PL + 7, ()), ("c.txt", 100, ())]


V2_TR = "Transmission 3.00 refuses every info with a file tree (v2 and hybrid)"


def cases():
    """(name, bytes, shoal, libtorrent, transmission, reason, why, note, tr_hash_of).

    reason: a phrase of shoal's error (refused) or irregularity note (loaded).
    why: why shoal's verdict differs from libtorrent's (empty when it does not).
    note: how Transmission differs from libtorrent (shoal follows libtorrent).
    tr_hash_of: the case whose info-hash (as shoal computes it) Transmission's
    must equal, when it loads the file: the case itself, unless it differs.
    """
    out = []

    def case(name, data, shoal, lt, tr, reason, why="", note="", tr_hash_of=None):
        out.append((name, data, shoal, lt, tr, reason, why, note, tr_hash_of or name))

    canon = torrent(v1_info())
    case("v1_canonical", canon, "load", "load", "load", "")

    unsorted_info = v1_info(pairs_order=["name", "length", "pieces", "piece length"])
    case("v1_unsorted_info_keys", torrent(unsorted_info), "load", "load", "load",
         "keys out of order inside info",
         note="Transmission 3.00 (and aria2 1.36) hash their own sorted re-encoding of "
              "info, so their info-hash is that of v1_canonical (another swarm); "
              "libtorrent and shoal hash the bytes as they are", tr_hash_of="v1_canonical")
    case("v1_unsorted_top_keys",
         torrent(v1_info(), top_order=["info", "created by", "announce"]),
         "load", "load", "load", "keys out of order outside info")

    case("v1_trailing_newline", canon + b"\n", "load", "load", "load",
         "1 byte after the end")
    case("v1_trailing_garbage", canon + b"\x00\xffgarbage<html>d4:spam",
         "load", "load", "load", "22 bytes after the end")
    # Garbage inside a dictionary is not "after" anything: the dictionary
    # itself cannot be read.
    case("v1_garbage_inside_top",
         torrent(v1_info(), extra=[("zz", Raw(b"i1e")), ("zzz", Raw(b"x"))]),
         "refuse", "refuse", "refuse", "unexpected byte 'x'")
    case("v1_garbage_inside_info", torrent(v1_info(extra=[("zz", Raw(b"?"))])),
         "refuse", "refuse", "refuse", "unexpected byte '?'")

    case("v1_duplicate_key_in_info", torrent(v1_info(extra=[("length", 5)])),
         "refuse", "load", "load", 'duplicate dictionary key "length" (ambiguous',
         why="libtorrent keeps the first of the two lengths; which one counts is a "
             "guess, so shoal refuses duplicate keys (issue 15)")
    case("v1_duplicate_key_at_top",
         torrent(v1_info(), extra=[("announce", "http://127.0.0.2:6969/announce")]),
         "refuse", "load", "load", 'duplicate dictionary key "announce" (ambiguous',
         why="which tracker counts is a guess: shoal refuses duplicate keys anywhere (issue 15)")
    case("v1_leading_zero_integer",
         canon.replace(b"6:lengthi100000e", b"6:lengthi0100000e"),
         "refuse", "load", "refuse", "leading zero",
         why="libtorrent reads i0100000e as 100000 in a v1 info dict (it refuses it in a "
             "v2 one); not bencode, and clients differ, so shoal refuses (issue 15)",
         note="Transmission refuses leading zeros in integers")
    case("v1_leading_zero_string_length",
         canon.replace(b"4:name8:wild.bin", b"4:name08:wild.bin"),
         "refuse", "load", "load", "leading zero",
         why="libtorrent and Transmission read 08: as 8:; not bencode, so shoal refuses "
             "(issue 15)")
    case("v1_negative_zero", torrent(v1_info(extra=[("private", Raw(b"i-0e"))])),
         "refuse", "load", "load", "integer -0",
         why="libtorrent and Transmission read i-0e as 0; BEP 3 forbids -0, so shoal "
             "refuses (issue 15)")
    case("v1_truncated", canon[: len(canon) // 2], "refuse", "refuse", "refuse",
         "truncated data")
    case("v1_truncated_by_one", canon[:-1], "refuse", "refuse", "refuse",
         "truncated data")

    case("v1_dotdot_path",
         torrent(v1_multi_info([(["..", "..", "etc", "passwd"], 1000),
                                (["ok", "..", "x.txt"], 2000)])),
         "load", "load", "load", "")

    v2_one = [("big.bin", 3 * PL + 1000, ())]
    info, layers = v2_info(v2_one)
    case("v2_canonical", torrent(info, layers), "load", "load", "refuse", "", note=V2_TR)
    case("v2_no_piece_layers", torrent(info, None), "load", "load", "refuse",
         "no piece layer for 1 of 1 file", note=V2_TR)
    case("v2_piece_layers_not_a_dict", torrent(info, Raw(b"4:junk")), "load", "load",
         "refuse", "piece layers is not a dictionary", note=V2_TR)
    bad = list(layers)
    flipped = bytearray(bad[0][1])
    flipped[40] ^= 1
    bad[0] = (bad[0][0], bytes(flipped))
    case("v2_layer_inconsistent_with_root", torrent(info, bad), "refuse", "refuse",
         "refuse", "piece layer does not hash to the pieces root",
         note=V2_TR + "; libtorrent's torrent_info accepts the file and add_torrent "
                      "refuses it (\"a piece layer is invalid\")")
    case("v2_layer_wrong_count", torrent(info, [(layers[0][0], layers[0][1][:-32])]),
         "refuse", "refuse", "refuse", "3 piece hashes, expected 4", note=V2_TR)
    case("v2_layer_key_not_a_root", torrent(info, layers + [(b"short", b"\0" * 32)]),
         "refuse", "refuse", "refuse", "key of 5 bytes is not a 32-byte pieces root",
         note=V2_TR)
    case("v2_layer_for_unknown_root",
         torrent(info, layers + [(b"\x07" * 32, b"\0" * 64)]),
         "load", "load", "refuse", "", note=V2_TR)
    info_u, layers_u = v2_info(v2_one, order=["piece length", "name", "meta version",
                                              "file tree"])
    case("v2_unsorted_info_keys", torrent(info_u, layers_u), "refuse", "refuse", "refuse",
         "not canonical, as a v2 info dictionary must be")

    pad_info, _ = v2_info([("a.bin", 1000, ()), ("pad", 1000, [("attr", "p")])])
    case("v2_pad_file_in_file_tree", torrent(pad_info), "refuse", "refuse", "refuse",
         "pad file inside a v2 file tree")

    def one_file_v2(leaf):
        tree = sd([("f.bin", D([("", sd(leaf))]))])
        return torrent(sd([("file tree", tree), ("meta version", 2), ("name", "wild"),
                           ("piece length", PL)]))
    case("v2_file_without_pieces_root", one_file_v2([("length", 5000)]),
         "refuse", "refuse", "refuse", "pieces root: missing")
    case("v2_file_with_zero_pieces_root",
         one_file_v2([("length", 5000), ("pieces root", b"\0" * 32)]),
         "refuse", "refuse", "refuse", "all-zero pieces root")
    case("v2_file_with_short_pieces_root",
         one_file_v2([("length", 5000), ("pieces root", b"\1" * 31)]),
         "refuse", "refuse", "refuse", "31 bytes is not a whole number of 32-byte hashes")

    hinfo, hlayers = v2_info(TWO_BIG, hybrid=True)
    case("hybrid_canonical", torrent(hinfo, hlayers), "load", "load", "refuse", "",
         note=V2_TR)
    case("hybrid_incomplete_piece_layers", torrent(hinfo, hlayers[:1]), "load", "load",
         "refuse", "no piece layer for 1 of 2 files", note=V2_TR)
    case("hybrid_no_piece_layers", torrent(hinfo, None), "load", "load", "refuse",
         "no piece layer for 2 of 2 files", note=V2_TR)
    hinfo_u, hlayers_u = v2_info(TWO_BIG, hybrid=True,
                                 order=["pieces", "files", "file tree", "meta version",
                                        "name", "piece length"])
    case("hybrid_unsorted_info_keys", torrent(hinfo_u, hlayers_u), "refuse", "refuse",
         "refuse", "not canonical, as a v2 info dictionary must be")
    return out


def write(directory):
    os.makedirs(directory, exist_ok=True)
    manifest = []
    for name, data, shoal, lt, tr, reason, why, note, tr_hash_of in cases():
        path = os.path.join(directory, name + ".torrent")
        with open(path, "wb") as f:
            f.write(data)
        manifest.append({"name": name, "file": path, "shoal": shoal, "libtorrent": lt,
                         "transmission": tr, "reason": reason, "why": why, "note": note,
                         "transmission_hash_of": tr_hash_of})
    with open(os.path.join(directory, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(json.dumps({"cases": len(manifest)}))


# ---------- libtorrent's verdicts ----------

def libtorrent(paths):
    import libtorrent as lt

    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": False,
        "enable_upnp": False, "enable_natpmp": False,
        "alert_mask": 0,
    })
    save = tempfile.mkdtemp(prefix="wild-lt-")
    out = {}
    for p in paths:
        r = {"verdict": "refuse", "error": None, "info_hash_v1": None, "info_hash_v2": None,
             "files": None}
        try:
            ti = lt.torrent_info(p)
        except RuntimeError as e:
            r["error"] = "torrent_info: %s" % e
            out[p] = r
            continue
        ih = ti.info_hashes()
        r["info_hash_v1"] = str(ih.v1) if ih.has_v1() else None
        r["info_hash_v2"] = str(ih.v2) if ih.has_v2() else None
        fs = ti.files()
        r["files"] = [fs.file_path(i).replace(os.sep, "/") for i in range(fs.num_files())
                      if not fs.file_flags(i) & lt.file_storage.flag_pad_file]
        atp = lt.add_torrent_params()
        atp.ti = ti
        atp.save_path = save
        atp.flags |= lt.torrent_flags.paused
        atp.flags &= ~lt.torrent_flags.auto_managed
        try:
            h = ses.add_torrent(atp)
        except RuntimeError as e:
            r["error"] = "add_torrent: %s" % e
            out[p] = r
            continue
        # add_torrent checks the piece layers against their roots (and raises
        # above); an error found later would show in the status.
        st = h.status()
        if st.errc.value() == 0:
            r["verdict"] = "load"
        else:
            r["error"] = "add_torrent: %s" % st.errc.message()
        ses.remove_torrent(h)
        out[p] = r
    print(json.dumps(out))


def main(argv):
    if len(argv) >= 3 and argv[1] == "write":
        write(argv[2])
    elif len(argv) >= 2 and argv[1] == "libtorrent":
        libtorrent(argv[2:])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
