//! Torrent files from the wild (issue 15): not canonical bencode, or without
//! (some of) their v2 piece layers, as libtorrent, Transmission and aria2 load
//! them. What is irregular but unambiguous loads and is reported in
//! `Torrent::irregularities`; what is ambiguous is refused, saying why. The
//! same cases, compared with the real clients, are in the shoal crate's
//! `interop_wild` test.
use sha1::{Digest, Sha1};
use shoal_bencode::{encode, ErrorKind, Value};
use shoal_metainfo::{Irregularity, MetaVersion, MetainfoError, Problem};

#[path = "support/builders.rs"]
mod builders;
use builders::*;
#[path = "support/checks.rs"]
mod checks;
use checks::*;

/// The bencode error kind of a refused torrent.
fn bencode_kind(bytes: &[u8]) -> ErrorKind {
    match reject(bytes) {
        MetainfoError::Bencode(e) => e.kind,
        other => panic!("expected a bencode error, got {other}"),
    }
}

/// Torrent files from the wild (issue 15): what is irregular but unambiguous
/// loads and is reported; what is ambiguous is refused, saying why. (This
/// reverses issue 2's rule that refused unsorted keys inside any `info`.)
#[test]
fn duplicate_and_unsorted_keys() {
    // Duplicate keys, inside `info` or out: which value counts would be a guess.
    let dup = b"d4:infod6:lengthi1e6:lengthi2e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
    assert_eq!(bencode_kind(dup), ErrorKind::DuplicateKey("length".into()));
    assert!(reject(dup).to_string().contains("ambiguous"));
    let dup_top = b"d8:announce3:abc8:announce3:def4:infod6:lengthi1e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
    assert_eq!(
        bencode_kind(dup_top),
        ErrorKind::DuplicateKey("announce".into())
    );
    // Unsorted keys inside a v1 `info`: loaded, the hash over the bytes as they are.
    let unsorted: &[u8] =
        b"d4:infod4:name1:x6:lengthi1e12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
    let t = accept(unsorted);
    let span = &unsorted[7..unsorted.len() - 1];
    assert_eq!(t.info_bytes(), span);
    let expect: [u8; 20] = Sha1::digest(span).into();
    assert_eq!(t.info_hashes().v1.map(|h| h.0), Some(expect));
    assert_eq!(
        t.irregularities(),
        &[Irregularity::UnsortedInfoKeys {
            key: "length".into(),
            offset: find(unsorted, b"6:length")
        }]
    );
    assert_eq!(t.files()[0].length, 1);
    // Unsorted keys outside `info` do not change any hash: loaded, reported.
    let outer: &[u8] = b"d4:infod6:lengthi1e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae8:announce3:abce";
    let t = accept(outer);
    assert_eq!(
        t.irregularities(),
        &[Irregularity::UnsortedKeys {
            key: "announce".into(),
            offset: find(outer, b"8:announce")
        }]
    );
    assert_eq!(t.tracker_urls(), [vec!["abc".to_string()]]);
    // Bytes after the top-level dictionary: ignored, reported.
    let mut trailing = outer.to_vec();
    trailing.extend_from_slice(b"\nxyz");
    let t = accept(&trailing);
    assert!(
        t.irregularities().contains(&Irregularity::TrailingBytes {
            offset: outer.len(),
            len: 4
        }),
        "{:?}",
        t.irregularities()
    );
    // ... but not garbage inside it: the dictionary itself cannot be read.
    let mut inside = outer[..outer.len() - 1].to_vec();
    inside.extend_from_slice(b"3:zzzxe");
    assert_eq!(bencode_kind(&inside), ErrorKind::UnexpectedByte(b'x'));
    // Leading zeros, -0, truncation: refused, saying why.
    let lead0 =
        b"d4:infod6:lengthi01e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
    assert_eq!(bencode_kind(lead0), ErrorKind::LeadingZero);
    assert!(reject(lead0).to_string().contains("leading zero"));
    let lead0s =
        b"d4:infod6:lengthi1e04:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
    assert_eq!(bencode_kind(lead0s), ErrorKind::LeadingZero);
    let neg0 = b"d4:infod6:lengthi1e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaa7:privatei-0eee";
    assert_eq!(bencode_kind(neg0), ErrorKind::NegativeZero);
    for cut in [1, outer.len() / 2, outer.len() - 1] {
        assert_eq!(bencode_kind(&outer[..cut]), ErrorKind::UnexpectedEof);
    }
    assert!(reject(&outer[..40]).to_string().contains("truncated"));
}

/// Unsorted keys in a v2 or hybrid `info` are refused: the file-tree order is
/// the piece order, and libtorrent refuses them too.
#[test]
fn unsorted_v2_info_refused() {
    let t2 = v2_tree(&[(&["b"], 10), (&["a"], 10)], 16384);
    let info = v2_info("n", &t2, 16384);
    let good = torrent(info.clone(), vec![]);
    let t = accept(&good);
    assert!(t.irregularities().is_empty());
    assert_eq!(t.files()[0].path_string(), "n/a");
    // Swap the two file-tree entries: same keys, other order.
    let a = b"1:ad0:d6:lengthi10e11:pieces root32:";
    let at = find(&good, a);
    let bt = find(&good, b"1:bd0:d6:lengthi10e");
    let entry = bt - at;
    let mut swapped = good[..at].to_vec();
    swapped.extend_from_slice(&good[bt..bt + entry]);
    swapped.extend_from_slice(&good[at..bt]);
    swapped.extend_from_slice(&good[bt + entry..]);
    let e = reject(&swapped);
    let MetainfoError::NotCanonical(inner) = &e else {
        panic!("expected NotCanonical, got {e}")
    };
    assert_eq!(inner.kind, ErrorKind::UnsortedKey("a".into()));
    assert!(e.to_string().contains("v2"), "{e}");
    // A hybrid with its top-level `info` keys out of order.
    let (hinfo, _) = hybrid(&[(&["a"], 10)], 16384);
    let bytes = torrent(hinfo, vec![]);
    let p = find(&bytes, b"5:filesl");
    let q = find(&bytes, b"4:name");
    let mut moved = bytes[..p].to_vec();
    moved.extend_from_slice(&bytes[q..]);
    moved.truncate(moved.len() - 2);
    moved.extend_from_slice(&bytes[p..q]);
    moved.extend_from_slice(b"ee");
    assert!(matches!(reject(&moved), MetainfoError::NotCanonical(_)));
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(needle)))
}

/// A v2 torrent with the layer of one of its two big files: loads; the engine
/// is told which layer to fetch, and a fetched layer attaches as for a magnet.
#[test]
fn v2_partial_piece_layers_need_fetching() {
    let pl = 16384;
    let files: &[(&[&str], u64)] = &[(&["a"], 3 * pl + 5), (&["b"], 5 * pl), (&["c"], 7)];
    let t2 = v2_tree(files, pl);
    let info = v2_info("n", &t2, pl);
    let full = accept(&torrent(
        info.clone(),
        vec![("piece layers", Value::Dict(t2.layers.clone()))],
    ));
    assert!(full.irregularities().is_empty());
    let a = 0;
    let big = full
        .files()
        .iter()
        .position(|f| f.path_string() == "n/b")
        .unwrap();
    let c = full.files().len() - 1;
    let mut only_a = shoal_bencode::Dict::new();
    only_a.insert(
        t2.roots[0].to_vec(),
        t2.layers.get(&t2.roots[0]).unwrap().clone(),
    );
    let mut t = accept(&torrent(
        info.clone(),
        vec![("piece layers", Value::Dict(only_a.clone()))],
    ));
    assert_eq!(t.info_hashes(), full.info_hashes());
    assert_eq!(t.piece_layer(a), full.piece_layer(a));
    assert!(!t.needs_piece_layer(a));
    assert!(t.needs_piece_layer(big));
    assert!(
        !t.needs_piece_layer(c),
        "one piece: its root is its piece hash"
    );
    assert_eq!(
        t.irregularities(),
        &[Irregularity::MissingPieceLayers { missing: 1, of: 2 }]
    );
    let layer = full.piece_layer(big).unwrap().to_vec();
    let mut wrong = layer.clone();
    wrong[0][0] ^= 1;
    assert!(t.attach_piece_layer(big, wrong).is_err());
    t.attach_piece_layer(big, layer).unwrap();
    assert!(!t.needs_piece_layer(big));
    // A layer that is present but inconsistent with its root is still an error.
    let good = t2
        .layers
        .get(&t2.roots[0])
        .and_then(Value::as_bytes)
        .unwrap();
    let mut bad = good.to_vec();
    bad[3] ^= 1;
    let mut bad_a = shoal_bencode::Dict::new();
    bad_a.insert(t2.roots[0].to_vec(), b(&bad));
    let e = reject(&torrent(info, vec![("piece layers", Value::Dict(bad_a))]));
    assert_eq!(problem(&e).1, &Problem::LayerMismatch);
    assert!(
        e.to_string().contains("does not hash to the pieces root"),
        "{e}"
    );
}

/// A hybrid with an incomplete `piece layers`: loads (libtorrent does). Its
/// SHA-1 piece hashes verify the data, so nothing is needed to download it;
/// the layers it has are kept (for answering v2 peers' hash requests).
#[test]
fn hybrid_incomplete_piece_layers_load() {
    let pl = 16384;
    let files: &[(&[&str], u64)] = &[(&["a"], 3 * pl + 5), (&["b"], 2 * pl + 1)];
    let (info, t2) = hybrid(files, pl);
    let mut only_b = shoal_bencode::Dict::new();
    only_b.insert(
        t2.roots[1].to_vec(),
        t2.layers.get(&t2.roots[1]).unwrap().clone(),
    );
    let t = accept(&torrent(info, vec![("piece layers", Value::Dict(only_b))]));
    assert_eq!(t.version(), MetaVersion::Hybrid);
    let real: Vec<usize> = (0..t.files().len())
        .filter(|&i| !t.files()[i].pad)
        .collect();
    assert_eq!(t.piece_layer(real[0]), None);
    assert_eq!(t.piece_layer(real[1]).map(<[_]>::len), Some(3));
    assert!((0..t.files().len()).all(|i| !t.needs_piece_layer(i)));
    assert_eq!(
        t.irregularities(),
        &[Irregularity::MissingPieceLayers { missing: 1, of: 2 }]
    );
    assert!(t.piece_hash_v1(0).is_some());
}

/// Unsorted keys deep inside a v1 `info` (in a `files` entry) load too, and
/// the canonical re-encoding would have another hash: shoal keeps the bytes.
#[test]
fn unsorted_v1_files_entry_keeps_original_bytes() {
    let info = v1_multi(&[(&[b"x"], 10)], 16384);
    let canonical = torrent(info, vec![]);
    let from = b"d6:lengthi10e4:pathl1:xee";
    let to = b"d4:pathl1:xe6:lengthi10ee";
    let at = find(&canonical, from);
    let mut bytes = canonical.clone();
    bytes[at..at + from.len()].copy_from_slice(to);
    let t = accept(&bytes);
    let c = accept(&canonical);
    assert_ne!(t.info_hashes(), c.info_hashes());
    let span = &bytes[7..bytes.len() - 1];
    assert_eq!(t.info_bytes(), span);
    assert_eq!(t.files(), c.files());
    assert!(matches!(
        t.irregularities(),
        [Irregularity::UnsortedInfoKeys { key, .. }] if key == "length"
    ));
    // Re-encoding sorts, which is why the original bytes must be hashed.
    let v = shoal_bencode::decode(span, &shoal_bencode::Limits::default()).unwrap();
    assert_ne!(encode(&v), span);
}
