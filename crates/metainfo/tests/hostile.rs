//! Hostile and edge-case torrents, each built in code, with the expected
//! accept/reject; for accepted path tricks, every sanitised path must stay
//! relative and inside the torrent's root.
use proptest::prelude::*;
use sha1::{Digest, Sha1};
use sha2::Sha256;
use shoal_bencode::{encode, Dict, Value};
use shoal_metainfo::{Irregularity, MetaVersion, MetainfoError, ParseLimits, Problem, Torrent};
use std::path::Path;
use std::time::{Duration, Instant};

#[path = "support/builders.rs"]
mod builders;
use builders::*;
#[path = "support/checks.rs"]
mod checks;
use checks::*;

// ---------- accepted ----------

#[test]
fn v1_single_file_accepted_with_hash_and_layout() {
    let info = v1_single(100_000, 32768);
    let info_bytes = encode(&Value::Dict(info.clone()));
    let bytes = torrent(
        info,
        vec![
            ("announce", s("http://t/a")),
            ("comment", s("hi")),
            ("creation date", Value::Int(1_700_000_000)),
            ("url-list", s("http://w/")),
        ],
    );
    let t = accept(&bytes);
    assert_eq!(t.version(), MetaVersion::V1);
    let expect: [u8; 20] = Sha1::digest(&info_bytes).into();
    assert_eq!(t.info_hashes().v1.map(|h| h.0), Some(expect));
    assert_eq!(t.info_hashes().v2, None);
    assert_eq!(t.info_bytes(), &info_bytes[..]);
    assert_eq!(t.piece_count(), 4);
    assert_eq!(t.piece_size(3), Some(100_000 - 3 * 32768));
    assert_eq!(t.piece_size(4), None);
    assert_eq!(t.piece_hash_v1(3), Some([0xab; 20]));
    assert_eq!(t.piece_hash_v1(4), None);
    assert_eq!(t.files()[0].path_string(), "file.bin");
    assert_eq!(t.tracker_urls(), [vec!["http://t/a".to_string()]]);
    assert_eq!(t.web_seeds(), &["http://w/".to_string()]);
    assert_eq!(t.comment(), Some("hi"));
    assert_eq!(t.creation_date(), Some(1_700_000_000));
    assert!(!t.is_private());
}

#[test]
fn v1_multi_file_with_tiers_nodes_private() {
    let mut info = v1_multi(&[(&[b"a", b"x.txt"], 10), (&[b"b.txt"], 20)], 16384);
    info.insert(b"private".to_vec(), Value::Int(1));
    let tiers = Value::List(vec![
        Value::List(vec![s("http://a/1"), s("http://a/2")]),
        Value::List(vec![]),
        Value::List(vec![s("udp://b:1"), Value::Int(3)]),
    ]);
    let nodes = Value::List(vec![
        Value::List(vec![s("127.0.0.1"), Value::Int(6881)]),
        Value::List(vec![s("bad")]),
    ]);
    let info_again = info.clone();
    let t = accept(&torrent(
        info,
        vec![("announce-list", tiers), ("nodes", nodes)],
    ));
    assert!(t.is_private());
    assert_eq!(t.trackers().len(), 2);
    assert_eq!(t.tracker_urls()[1], vec!["udp://b:1".to_string()]);
    // A second torrent naming the same tracker shares its URL.
    let again = accept(&torrent(info_again, vec![("announce", s("udp://b:1"))]));
    assert!(std::sync::Arc::ptr_eq(
        &t.trackers()[1][0],
        &again.trackers()[0][0]
    ));
    assert_eq!(t.nodes().len(), 1);
    let paths: Vec<String> = t.files().iter().map(|f| f.path_string()).collect();
    assert_eq!(paths, vec!["root/a/x.txt", "root/b.txt"]);
    assert_eq!(t.files()[1].offset, 10);
    assert_eq!(t.total_length(), 30);
    assert!(t.magnet().to_uri().starts_with("magnet:?xt=urn:btih:"));
}

#[test]
fn v2_multi_file_with_verified_layers() {
    let pl = 32768;
    let files: &[(&[&str], u64)] = &[(&["dir", "big"], 100_000), (&["small"], 5), (&["zero"], 0)];
    let t2 = v2_tree(files, pl);
    let info = v2_info("root", &t2, pl);
    let info_bytes = encode(&Value::Dict(info.clone()));
    let t = accept(&torrent(
        info,
        vec![("piece layers", Value::Dict(t2.layers.clone()))],
    ));
    assert_eq!(t.version(), MetaVersion::V2);
    let expect: [u8; 32] = Sha256::digest(&info_bytes).into();
    assert_eq!(t.info_hashes().v2.map(|h| h.0), Some(expect));
    // big (4 pieces), synthetic pad to the boundary, small, zero.
    let f = t.files();
    assert_eq!(f.len(), 4);
    assert_eq!(f[0].path_string(), "root/dir/big");
    assert!(f[1].pad);
    assert_eq!(f[1].length, 4 * pl - 100_000);
    assert_eq!(f[2].offset, 4 * pl);
    assert_eq!(f[2].pieces_root, Some(t2.roots[1]));
    assert_eq!(f[3].pieces_root, None);
    assert_eq!(t.piece_count(), 5);
    assert_eq!(t.piece_layer(0).map(<[_]>::len), Some(4));
    assert_eq!(t.piece_layer(2), None);
    assert_eq!(t.piece_hash_v1(0), None);
}

#[test]
fn v2_single_file_and_from_info_bytes() {
    let pl = 16384;
    let t2 = v2_tree(&[(&["one.iso"], 40_000)], pl);
    let info = v2_info("one.iso", &t2, pl);
    let t = accept(&torrent(
        info.clone(),
        vec![("piece layers", Value::Dict(t2.layers.clone()))],
    ));
    assert!(!t.is_multi_file());
    assert_eq!(t.files()[0].path_string(), "one.iso");
    assert!(t.irregularities().is_empty());
    assert!(!t.needs_piece_layer(0));
    // Without the layers, as a full torrent: loaded (as libtorrent does), the
    // layer to be fetched from peers, and the absence reported.
    let without = accept(&torrent(info.clone(), vec![]));
    assert_eq!(without.info_hashes(), t.info_hashes());
    assert_eq!(without.piece_layer(0), None);
    assert!(without.needs_piece_layer(0));
    assert_eq!(
        without.irregularities(),
        &[Irregularity::MissingPieceLayers { missing: 1, of: 1 }]
    );
    // As a bare info dict: the same, and no irregularity (BEP 9 has no layers).
    let info_bytes = encode(&Value::Dict(info));
    let bare = Torrent::from_info_bytes(&info_bytes, &ParseLimits::default()).unwrap();
    assert_eq!(bare.info_hashes(), t.info_hashes());
    assert_eq!(bare.piece_layer(0), None);
    assert!(bare.needs_piece_layer(0));
    assert!(bare.irregularities().is_empty());
    // A bare info dict is exactly one dictionary: bytes after it would be
    // read as more top-level keys, so they are refused, not ignored.
    for tail in [&b"x"[..], b"4:spami1e"] {
        let mut longer = info_bytes.clone();
        longer.extend_from_slice(tail);
        let e = Torrent::from_info_bytes(&longer, &ParseLimits::default()).unwrap_err();
        assert!(matches!(e, MetainfoError::Bencode(_)), "{e}");
    }
}

#[test]
fn hybrid_accepted_with_pads_and_both_hashes() {
    let pl = 16384;
    let files: &[(&[&str], u64)] = &[
        (&["a.bin"], 20_000),
        (&["sub", "b.bin"], 50_000),
        (&["z"], 3),
    ];
    let (info, t2) = hybrid(files, pl);
    let t = accept(&torrent(
        info,
        vec![("piece layers", Value::Dict(t2.layers))],
    ));
    assert_eq!(t.version(), MetaVersion::Hybrid);
    assert!(t.info_hashes().v1.is_some() && t.info_hashes().v2.is_some());
    let real: Vec<_> = t.files().iter().filter(|f| !f.pad).collect();
    assert_eq!(real.len(), 3);
    for f in &real {
        assert_eq!(f.offset % pl, 0);
        assert!(f.pieces_root.is_some());
    }
    assert_eq!(real[1].path_string(), "root/sub/b.bin");
}

#[test]
fn path_tricks_are_sanitised_inside_the_root() {
    let long = vec![b'x'; 1000];
    let long_ext = [vec![b'y'; 600], b".txt".to_vec()].concat();
    let long_p: [&[u8]; 1] = [&long];
    let long_ext_p: [&[u8]; 1] = [&long_ext];
    let files: Vec<(&[&[u8]], i64)> = vec![
        (&[b"..", b"..", b"etc", b"passwd"], 1),
        (&[b"/etc", b"shadow"], 1),
        (&[b"", b"abs"], 1),
        (&[b"con"], 1),
        (&[b"CON.txt"], 1),
        (&[b"a/b"], 1),
        (&[b"a\\b"], 1),
        (&[b"c:"], 1),
        (&[b"nul\0byte"], 1),
        (&[b"."], 1),
        (&long_p, 1),
        (&long_ext_p, 1),
        (&[b"\xff\xfe"], 1),
        (&[b"dup"], 1),
        (&[b"DUP"], 1),
        (&[b"dup"], 1),
    ];
    let mut info = v1_multi(&files, 16384);
    info.insert(b"name".to_vec(), s(".."));
    let t = accept(&torrent(info, vec![]));
    // Name ".." falls back to the info-hash.
    assert_eq!(t.name(), t.info_hashes().primary().to_hex());
    let paths: Vec<String> = t.files().iter().map(|f| f.path_string()).collect();
    let root = t.name().to_string();
    assert_eq!(paths[0], format!("{root}/etc/passwd"));
    assert_eq!(paths[1], format!("{root}/_etc/shadow"));
    assert_eq!(paths[2], format!("{root}/abs"));
    assert_eq!(paths[3], format!("{root}/con_"));
    assert_eq!(paths[4], format!("{root}/CON_.txt"));
    assert_eq!(paths[5], format!("{root}/a_b"));
    assert_eq!(paths[6], format!("{root}/a_b.1"));
    assert_eq!(paths[7], format!("{root}/c_"));
    assert_eq!(paths[9], format!("{root}/_"));
    assert!(paths[11].ends_with(".txt"));
    assert_eq!(paths[13], format!("{root}/dup"));
    assert_eq!(paths[14], format!("{root}/DUP.1"));
    assert_eq!(paths[15], format!("{root}/dup.2"));
    let mut lower: Vec<String> = paths.iter().map(|p| p.to_lowercase()).collect();
    lower.sort();
    lower.dedup();
    assert_eq!(lower.len(), paths.len(), "duplicates left: {paths:?}");
}

#[test]
fn single_file_name_tricks() {
    for name in [&b"../../x"[..], b"/abs", b"COM1", b"a\0b", b""] {
        let mut info = v1_single(10, 16384);
        info.insert(b"name".to_vec(), b(name));
        let t = accept(&torrent(info, vec![]));
        assert_eq!(t.files()[0].path.components().count(), 1);
    }
}

#[test]
fn symlinks_must_stay_inside() {
    let link = |target: &[&[u8]]| {
        let mut info = v1_multi(&[(&[b"f"], 10)], 16384);
        let Some(Value::List(mut l)) = info.remove(b"files") else {
            unreachable!()
        };
        l.push(Value::Dict(dict(vec![
            ("path", path_list(&[b"l"])),
            ("attr", s("l")),
            ("symlink path", path_list(target)),
        ])));
        info.insert(b"files".to_vec(), Value::List(l));
        torrent(info, vec![])
    };
    let t = accept(&link(&[b"f"]));
    assert_eq!(t.files()[1].symlink.as_deref(), Some(Path::new("root/f")));
    let e = reject(&link(&[b"..", b"..", b"etc"]));
    assert_eq!(problem(&e).1, &Problem::SymlinkEscapes);
}

// ---------- rejected ----------

#[test]
fn wrong_types() {
    let cases: Vec<(&str, Value<'static>)> = vec![
        ("piece length", s("16384")),
        ("length", s("10")),
        ("name", Value::Int(3)),
        ("pieces", Value::Int(0)),
    ];
    for (key, v) in cases {
        let mut info = v1_single(10, 16384);
        info.insert(key.as_bytes().to_vec(), v);
        let e = reject(&torrent(info, vec![]));
        let (k, p) = problem(&e);
        assert_eq!(k, format!("info.{key}"));
        assert!(matches!(p, Problem::WrongType { .. }), "{e}");
    }
    let mut info = v1_multi(&[(&[b"a"], 1)], 16384);
    info.insert(b"files".to_vec(), Value::Dict(Dict::new()));
    assert!(matches!(
        problem(&reject(&torrent(info, vec![]))).1,
        Problem::WrongType { .. }
    ));
    let mut info = v1_multi(&[(&[b"a"], 1)], 16384);
    info.insert(
        b"files".to_vec(),
        Value::List(vec![Value::Dict(dict(vec![
            ("path", s("a")),
            ("length", Value::Int(1)),
        ]))]),
    );
    assert_eq!(
        problem(&reject(&torrent(info, vec![]))).0,
        "info.files[0].path"
    );
    let e = reject(&encode(&Value::List(vec![])));
    assert_eq!(problem(&e).0, "(top level)");
    let e = reject(&torrent(
        v1_single(10, 16384),
        vec![("announce-list", s("x"))],
    ));
    assert_eq!(problem(&e).0, "announce-list");
}

#[test]
fn negative_sizes_name_the_entry_and_offset() {
    let info = v1_multi(&[(&[b"a"], 10), (&[b"b"], -5)], 16384);
    let bytes = torrent(info, vec![]);
    let e = reject(&bytes);
    let msg = e.to_string();
    assert!(
        msg.starts_with("info.files[1].length: negative value -5 at byte offset "),
        "{msg}"
    );
    let MetainfoError::Invalid { offset, .. } = e else {
        unreachable!()
    };
    assert_eq!(&bytes[offset..offset + 4], b"i-5e");
    let e = reject(&torrent(v1_single(10, -1), vec![]));
    assert_eq!(problem(&e), ("info.piece length", &Problem::Negative(-1)));
    let e = reject(&torrent(v1_single(10, 0), vec![]));
    assert_eq!(problem(&e), ("info.piece length", &Problem::Zero));
}

#[test]
fn missing_keys() {
    let e = reject(b"d8:announce3:abce");
    assert_eq!(problem(&e), ("info", &Problem::Missing));
    for key in ["name", "piece length", "pieces"] {
        let mut info = v1_single(10, 16384);
        info.remove(key.as_bytes());
        let e = reject(&torrent(info, vec![]));
        assert_eq!(
            problem(&e),
            (format!("info.{key}").as_str(), &Problem::Missing)
        );
    }
    let mut info = v1_single(10, 16384);
    info.remove(b"length");
    assert_eq!(
        problem(&reject(&torrent(info, vec![]))).1,
        &Problem::LengthAndFiles
    );
    let mut info = v1_multi(&[(&[b"a"], 1)], 16384);
    info.insert(b"length".to_vec(), Value::Int(1));
    assert_eq!(
        problem(&reject(&torrent(info, vec![]))).1,
        &Problem::LengthAndFiles
    );
    let info = dict(vec![
        ("name", s("x")),
        ("piece length", Value::Int(16384)),
        ("pieces", b(b"")),
        (
            "files",
            Value::List(vec![Value::Dict(dict(vec![("length", Value::Int(1))]))]),
        ),
    ]);
    assert_eq!(
        problem(&reject(&torrent(info, vec![]))),
        ("info.files[0].path", &Problem::Missing)
    );
}

#[test]
fn unaligned_or_wrong_pieces() {
    let mut info = v1_single(100_000, 32768);
    info.insert(b"pieces".to_vec(), b(&[0; 79]));
    assert!(matches!(
        problem(&reject(&torrent(info, vec![]))).1,
        Problem::HashLength { .. }
    ));
    let mut info = v1_single(100_000, 32768);
    info.insert(b"pieces".to_vec(), b(&[0; 60]));
    let e = reject(&torrent(info, vec![]));
    assert!(
        matches!(
            problem(&e).1,
            Problem::PieceCount {
                got: 3,
                expected: 4,
                ..
            }
        ),
        "{e}"
    );
    // Empty torrent.
    let e = reject(&torrent(v1_single(0, 16384), vec![]));
    assert_eq!(problem(&e).1, &Problem::Empty);
    let e = reject(&torrent(v1_multi(&[], 16384), vec![]));
    assert_eq!(problem(&e).1, &Problem::Empty);
}

#[test]
fn bad_piece_layers() {
    let pl = 16384;
    let files: &[(&[&str], u64)] = &[(&["f"], 5 * 16384 + 7)];
    let t2 = v2_tree(files, pl);
    let info = v2_info("n", &t2, pl);
    let root = t2.roots[0];
    let good = t2
        .layers
        .get(&root)
        .and_then(Value::as_bytes)
        .unwrap()
        .to_vec();
    let with = |layer: Vec<u8>| {
        let mut l = Dict::new();
        l.insert(root.to_vec(), b(&layer));
        torrent(info.clone(), vec![("piece layers", Value::Dict(l))])
    };
    accept(&with(good.clone()));
    let mut flipped = good.clone();
    flipped[5] ^= 1;
    assert_eq!(problem(&reject(&with(flipped))).1, &Problem::LayerMismatch);
    assert!(matches!(
        problem(&reject(&with(good[..good.len() - 32].to_vec()))).1,
        Problem::PieceCount { .. }
    ));
    assert!(matches!(
        problem(&reject(&with(good[..good.len() - 1].to_vec()))).1,
        Problem::HashLength { .. }
    ));
    // Absent layers are not an error (libtorrent loads such torrents): the
    // engine fetches them from peers.
    let t = accept(&torrent(
        info.clone(),
        vec![("piece layers", Value::Dict(Dict::new()))],
    ));
    assert!(t.needs_piece_layer(0));
    assert_eq!(
        t.irregularities(),
        &[Irregularity::MissingPieceLayers { missing: 1, of: 1 }]
    );
    // `piece layers` that is not a dictionary is ignored, as libtorrent does.
    let t = accept(&torrent(info.clone(), vec![("piece layers", s("x"))]));
    assert!(t.needs_piece_layer(0));
    assert_eq!(
        t.irregularities(),
        &[
            Irregularity::PieceLayersNotDict { got: "string" },
            Irregularity::MissingPieceLayers { missing: 1, of: 1 }
        ]
    );
    // Every entry must be well-formed, even one no file uses (as libtorrent).
    let with_extra = |k: &[u8], v: Value<'static>| {
        let mut l = t2.layers.clone();
        l.insert(k.to_vec(), v);
        torrent(info.clone(), vec![("piece layers", Value::Dict(l))])
    };
    let e = reject(&with_extra(b"short", b(&[0; 32])));
    assert_eq!(problem(&e).1, &Problem::LayerKey { len: 5 });
    assert!(e.to_string().contains("not a 32-byte pieces root"), "{e}");
    let e = reject(&with_extra(&[7; 32], Value::Int(1)));
    assert!(matches!(problem(&e).1, Problem::WrongType { .. }), "{e}");
    let e = reject(&with_extra(&[7; 32], b(&[0; 33])));
    assert!(matches!(problem(&e).1, Problem::HashLength { .. }), "{e}");
    // A well-formed layer for a root no file has is ignored.
    let t = accept(&with_extra(&[7; 32], b(&[0; 64])));
    assert!(!t.needs_piece_layer(0));
    assert!(t.irregularities().is_empty());
}

#[test]
fn v2_piece_length_rules_and_version() {
    for pl in [8192u64, 3 * 16384, 16384 + 1] {
        let t2 = v2_tree(&[(&["f"], 10)], 16384);
        let info = v2_info("n", &t2, pl);
        let e = reject(&torrent(info, vec![]));
        assert_eq!(
            problem(&e),
            ("info.piece length", &Problem::NotPowerOfTwo(pl))
        );
    }
    let t2 = v2_tree(&[(&["f"], 10)], 16384);
    let mut info = v2_info("n", &t2, 16384);
    info.insert(b"meta version".to_vec(), Value::Int(3));
    assert_eq!(
        problem(&reject(&torrent(info, vec![]))).1,
        &Problem::UnsupportedVersion(3)
    );
}

#[test]
fn v2_tree_shapes() {
    // A node that is a file and a directory.
    let leaf = dict(vec![("length", Value::Int(0))]);
    let tree = dict(vec![(
        "a",
        Value::Dict(dict(vec![
            ("", Value::Dict(leaf.clone())),
            ("b", Value::Dict(Dict::new())),
        ])),
    )]);
    let mut info = v2_info("n", &v2_tree(&[(&["x"], 1)], 16384), 16384);
    info.insert(b"file tree".to_vec(), Value::Dict(tree));
    assert_eq!(
        problem(&reject(&torrent(info.clone(), vec![]))).1,
        &Problem::FileAndDirectory
    );
    // The root being a file.
    info.insert(
        b"file tree".to_vec(),
        Value::Dict(dict(vec![("", Value::Dict(leaf))])),
    );
    assert_eq!(
        problem(&reject(&torrent(info.clone(), vec![]))).1,
        &Problem::FileAndDirectory
    );
    // A tree of one file `f` with this leaf dictionary.
    let one_file = |leaf: Vec<(&str, Value<'static>)>| {
        let tree = dict(vec![(
            "f",
            Value::Dict(dict(vec![("", Value::Dict(dict(leaf)))])),
        )]);
        let mut info = info.clone();
        info.insert(b"file tree".to_vec(), Value::Dict(tree));
        reject(&torrent(info, vec![]))
    };
    // Missing pieces root on a non-empty file; wrong root size.
    let e = one_file(vec![("length", Value::Int(5))]);
    assert_eq!(problem(&e).1, &Problem::Missing);
    let e = one_file(vec![
        ("length", Value::Int(5)),
        ("pieces root", b(&[1; 31])),
    ]);
    assert!(matches!(problem(&e).1, Problem::HashLength { .. }));
    // An all-zero pieces root (libtorrent: "a v2 file entry has no root hash").
    let e = one_file(vec![
        ("length", Value::Int(5)),
        ("pieces root", b(&[0; 32])),
    ]);
    assert_eq!(
        problem(&e),
        ("info.file tree/f.pieces root", &Problem::ZeroPiecesRoot)
    );
    // A pad file inside a file tree, even a well-formed one (libtorrent:
    // "a file in the v2 metadata has the pad attribute set").
    let mut t2 = v2_tree(&[(&["a"], 100)], 16384);
    let pad_leaf = dict(vec![
        ("length", Value::Int(100)),
        ("pieces root", b(&[1; 32])),
        ("attr", s("p")),
    ]);
    insert_path(&mut t2.tree, &["pad"], Value::Dict(pad_leaf));
    let e = reject(&torrent(v2_info("n", &t2, 16384), vec![]));
    assert_eq!(problem(&e), ("info.file tree/pad", &Problem::PadInFileTree));
    // Empty tree.
    info.insert(b"file tree".to_vec(), Value::Dict(Dict::new()));
    assert_eq!(problem(&reject(&torrent(info, vec![]))).1, &Problem::Empty);
}

#[test]
fn hybrid_mismatches() {
    let pl = 16384;
    let files: &[(&[&str], u64)] = &[(&["a"], 20_000), (&["b"], 30_000)];
    let layers = |t2: &V2| vec![("piece layers", Value::Dict(t2.layers.clone()))];
    // Different length in v1.
    let (mut info, t2) = hybrid(files, pl);
    let Some(Value::List(mut l)) = info.remove(b"files") else {
        unreachable!()
    };
    l[2] = Value::Dict(dict(vec![
        ("path", path_list(&[b"b"])),
        ("length", Value::Int(30_001)),
    ]));
    info.insert(b"files".to_vec(), Value::List(l.clone()));
    info.insert(b"pieces".to_vec(), fake_pieces(2 * pl + 30_001, pl));
    assert!(matches!(
        problem(&reject(&torrent(info.clone(), layers(&t2)))).1,
        Problem::HybridMismatch(_)
    ));
    // Different name.
    l[2] = Value::Dict(dict(vec![
        ("path", path_list(&[b"c"])),
        ("length", Value::Int(30_000)),
    ]));
    info.insert(b"files".to_vec(), Value::List(l.clone()));
    info.insert(b"pieces".to_vec(), fake_pieces(2 * pl + 30_000, pl));
    assert!(matches!(
        problem(&reject(&torrent(info.clone(), layers(&t2)))).1,
        Problem::HybridMismatch(_)
    ));
    // No pad file: second file unaligned.
    l.remove(1);
    l[1] = Value::Dict(dict(vec![
        ("path", path_list(&[b"b"])),
        ("length", Value::Int(30_000)),
    ]));
    info.insert(b"files".to_vec(), Value::List(l.clone()));
    info.insert(b"pieces".to_vec(), fake_pieces(50_000, pl));
    let e = reject(&torrent(info.clone(), layers(&t2)));
    assert_eq!(
        problem(&e),
        ("info.files[1]", &Problem::Unaligned { offset: 20_000 })
    );
    // A file missing from v1.
    l.truncate(1);
    info.insert(b"files".to_vec(), Value::List(l));
    info.insert(b"pieces".to_vec(), fake_pieces(20_000, pl));
    assert!(matches!(
        problem(&reject(&torrent(info, layers(&t2)))).1,
        Problem::HybridMismatch(_)
    ));
}

#[test]
fn huge_counts_and_depths() {
    // Piece count over the limit, found before anything large is allocated.
    let info = dict(vec![
        ("name", s("x")),
        ("length", Value::Int(1 << 45)),
        ("piece length", Value::Int(16384)),
        ("pieces", b(b"")),
    ]);
    let e = reject(&torrent(info, vec![]));
    assert!(
        matches!(problem(&e).1, Problem::TooMany { what: "pieces", .. }),
        "{e}"
    );
    // File count over a (lowered) limit.
    let one: [&[u8]; 1] = [b"f"];
    let files: Vec<(&[&[u8]], i64)> = (0..20).map(|_| (&one[..], 1i64)).collect();
    let bytes = torrent(v1_multi(&files, 16384), vec![]);
    let limits = ParseLimits {
        max_files: 10,
        ..ParseLimits::default()
    };
    let e = Torrent::from_bytes_with(&bytes, &limits).unwrap_err();
    assert!(
        matches!(problem(&e).1, Problem::TooMany { what: "files", .. }),
        "{e}"
    );
    // Path depth.
    let deep: Vec<&[u8]> = vec![b"d"; 100];
    let e = reject(&torrent(v1_multi(&[(&deep, 1)], 16384), vec![]));
    assert!(matches!(problem(&e).1, Problem::PathTooDeep { .. }), "{e}");
    let deep_tree: Vec<&str> = vec!["d"; 100];
    let t2 = v2_tree(&[(&deep_tree, 1)], 16384);
    assert!(Torrent::from_bytes(&torrent(v2_info("n", &t2, 16384), vec![])).is_err());
}

#[test]
fn deep_nesting_rejected_fast() {
    let n = 1_000_000;
    let mut bytes = b"d4:info".to_vec();
    bytes.extend(std::iter::repeat_n(b'l', n));
    bytes.extend(std::iter::repeat_n(b'e', n));
    bytes.push(b'e');
    let start = Instant::now();
    assert!(matches!(reject(&bytes), MetainfoError::Bencode(_)));
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn garbage_100mb_rejected_fast() {
    let mut x = 0x1234_5678u32;
    let garbage: Vec<u8> = (0..100 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let start = Instant::now();
    let e = reject(&garbage);
    assert!(matches!(e, MetainfoError::TooLarge { .. }), "{e}");
    assert!(start.elapsed() < Duration::from_millis(100));
    // Garbage under the size limit fails in the decoder.
    let e = reject(&garbage[..1 << 20]);
    assert!(matches!(e, MetainfoError::Bencode(_)), "{e}");
}

// ---------- properties ----------

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any byte paths: accepted, all paths safe, no two written paths equal.
    #[test]
    fn random_paths_stay_inside(paths in proptest::collection::vec(
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 1..4), 1..12)
    ) {
        let files: Vec<(Vec<&[u8]>, i64)> = paths
            .iter()
            .map(|p| (p.iter().map(Vec::as_slice).collect(), 3))
            .collect();
        let refs: Vec<(&[&[u8]], i64)> = files.iter().map(|(p, l)| (p.as_slice(), *l)).collect();
        let t = accept(&torrent(v1_multi(&refs, 16384), vec![]));
        let mut seen = std::collections::HashSet::new();
        for f in t.files() {
            prop_assert!(seen.insert(f.path_string().to_lowercase()), "duplicate {}", f.path_string());
        }
    }

    /// Corrupting any byte of a valid hybrid never panics.
    #[test]
    fn mutations_never_panic(pos in 0usize..4000, byte in any::<u8>()) {
        let files: &[(&[&str], u64)] = &[(&["a"], 40_000), (&["b"], 3)];
        let (info, t2) = hybrid(files, 16384);
        let mut bytes = torrent(info, vec![("piece layers", Value::Dict(t2.layers))]);
        let i = pos % bytes.len();
        bytes[i] = byte;
        let _ = Torrent::from_bytes(&bytes);
    }
}

#[test]
fn many_duplicates_and_wide_trees_parse_in_linear_time() {
    // 20000 files with the same deep path: disambiguation must not be quadratic.
    let n = 20_000;
    let deep: Vec<&[u8]> = vec![b"x"; 30];
    let files: Vec<(&[&[u8]], i64)> = (0..n).map(|_| (&deep[..], 1i64)).collect();
    let bytes = torrent(v1_multi(&files, 16384), vec![]);
    let start = Instant::now();
    let t = accept(&bytes);
    assert_eq!(t.files().len(), n);
    assert!(t.files()[n - 1]
        .path_string()
        .ends_with(&format!("x.{}", n - 1)));
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    // A v2 directory with 5000 entries (the test builder itself is quadratic).
    let names: Vec<String> = (0..n / 4).map(|i| format!("f{i:05}")).collect();
    let specs: Vec<[&str; 1]> = names.iter().map(|s| [s.as_str()]).collect();
    let files: Vec<(&[&str], u64)> = specs.iter().map(|p| (&p[..], 100u64)).collect();
    let t2 = v2_tree(&files, 16384);
    let bytes = torrent(v2_info("wide", &t2, 16384), vec![]);
    let start = Instant::now();
    let t = accept(&bytes);
    assert_eq!(t.files().iter().filter(|f| !f.pad).count(), n / 4);
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
}
