//! Tests of `create` against a naive in-memory reference: the v1 piece stream
//! built by concatenation (with pads), v2 roots and layers from `merkle`.
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use sha1::{Digest, Sha1};
use shoal_bencode::{decode, Limits, Value};

use super::*;
use crate::merkle;

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64 * 2654435761 + seed as u64 * 97) >> 7) as u8)
        .collect()
}

fn opts(version: Version, pl: Option<u64>) -> CreateOptions {
    CreateOptions {
        version,
        piece_length: pl,
        ..CreateOptions::default()
    }
}

fn no_progress(_: u64) {}

/// Writes `files` (relative path, contents) under `root`.
fn write_tree(root: &Path, files: &[(&str, Vec<u8>)]) {
    for (p, d) in files {
        let path = root.join(p);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(path, d).unwrap();
    }
}

/// Reference: the expected info values for sorted `files` (components, data).
struct Expect {
    pieces: Vec<u8>,
    roots: Vec<Option<[u8; 32]>>,
    layers: Vec<Vec<[u8; 32]>>,
    pads: Vec<u64>,
}

fn expect(files: &[(Vec<String>, Vec<u8>)], pl: u64, version: Version, multi: bool) -> Expect {
    let pad_files = version.has_v2() && multi && files.len() > 1;
    let mut stream = Vec::new();
    let mut pads = Vec::new();
    let mut roots = Vec::new();
    let mut layers = Vec::new();
    for (_, d) in files {
        stream.extend_from_slice(d);
        let rem = d.len() as u64 % pl;
        let pad = if pad_files && !d.is_empty() && rem != 0 {
            pl - rem
        } else {
            0
        };
        stream.resize(stream.len() + pad as usize, 0);
        pads.push(pad);
        roots.push(merkle::root_of_data(d));
        let leaves: Vec<[u8; 32]> = d
            .chunks(merkle::BLOCK_SIZE)
            .map(merkle::block_hash)
            .collect();
        if d.len() as u64 > pl {
            layers.push(merkle::piece_layer_from_leaves(&leaves, pl));
        } else {
            layers.push(Vec::new());
        }
    }
    let pieces = stream
        .chunks(pl as usize)
        .flat_map(|c| <[u8; 20]>::from(Sha1::digest(c)))
        .collect();
    Expect {
        pieces,
        roots,
        layers,
        pads,
    }
}

fn get<'a, 'b>(v: &'b Value<'a>, key: &str) -> &'b Value<'a> {
    v.as_dict()
        .and_then(|d| d.get(key.as_bytes()))
        .unwrap_or_else(|| panic!("missing key {key}"))
}

/// Looks up a file's `""` entry in a file tree.
fn tree_entry<'a, 'b>(tree: &'b Value<'a>, path: &[String]) -> &'b Value<'a> {
    let mut node = tree;
    for c in path {
        node = get(node, c);
    }
    get(node, "")
}

/// Creates a torrent of `files` in a temp dir and checks it against the reference.
fn check_dir(files: &[(&str, Vec<u8>)], version: Version, pl: u64) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("top");
    fs::create_dir(&root).unwrap();
    write_tree(&root, files);
    let out = create(&root, &opts(version, Some(pl)), &no_progress).unwrap();
    let mut sorted: Vec<(Vec<String>, Vec<u8>)> = files
        .iter()
        .map(|(p, d)| (p.split('/').map(str::to_owned).collect(), d.clone()))
        .collect();
    sorted.sort();
    verify(&out, &sorted, version, pl, true, "top");
    out
}

fn verify(
    out: &[u8],
    files: &[(Vec<String>, Vec<u8>)],
    version: Version,
    pl: u64,
    multi: bool,
    name: &str,
) {
    let v = decode(out, &Limits::default()).unwrap();
    v.check_canonical().unwrap();
    let info = get(&v, "info");
    info.check_canonical().unwrap();
    let ex = expect(files, pl, version, multi);
    round_trip(out, files, version, pl, multi, name, &ex);
    assert_eq!(get(info, "name").as_bytes(), Some(name.as_bytes()));
    assert_eq!(get(info, "piece length").as_int(), Some(pl as i64));
    let d = info.as_dict().unwrap();
    if version.has_v1() {
        assert_eq!(get(info, "pieces").as_bytes(), Some(&ex.pieces[..]));
        if multi {
            let list = get(info, "files").as_list().unwrap();
            let mut k = 0;
            for (i, (path, data)) in files.iter().enumerate() {
                let fe = &list[k];
                assert_eq!(get(fe, "length").as_int(), Some(data.len() as i64));
                let p: Vec<&str> = get(fe, "path")
                    .as_list()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap())
                    .collect();
                assert_eq!(p, path.iter().map(String::as_str).collect::<Vec<_>>());
                assert!(fe.as_dict().unwrap().get(b"attr").is_none());
                k += 1;
                if ex.pads[i] > 0 {
                    let pad = &list[k];
                    assert_eq!(get(pad, "attr").as_bytes(), Some(&b"p"[..]));
                    assert_eq!(get(pad, "length").as_int(), Some(ex.pads[i] as i64));
                    let n = ex.pads[i].to_string();
                    let pp: Vec<&str> = get(pad, "path")
                        .as_list()
                        .unwrap()
                        .iter()
                        .map(|c| c.as_str().unwrap())
                        .collect();
                    assert_eq!(pp, vec![".pad", n.as_str()]);
                    k += 1;
                }
            }
            assert_eq!(k, list.len());
        } else {
            assert_eq!(get(info, "length").as_int(), Some(files[0].1.len() as i64));
        }
    } else {
        assert!(d.get(b"pieces").is_none());
        assert!(d.get(b"files").is_none());
    }
    if version.has_v2() {
        assert_eq!(get(info, "meta version").as_int(), Some(2));
        let tree = get(info, "file tree");
        let layers = get(&v, "piece layers");
        let mut expected_layers = 0;
        for (i, (path, data)) in files.iter().enumerate() {
            let key_path: Vec<String> = if multi {
                path.clone()
            } else {
                vec![name.to_owned()]
            };
            let entry = tree_entry(tree, &key_path);
            assert_eq!(get(entry, "length").as_int(), Some(data.len() as i64));
            let root = entry.as_dict().unwrap().get(b"pieces root");
            assert_eq!(
                root.and_then(|r| r.as_bytes()),
                ex.roots[i].as_ref().map(|r| &r[..])
            );
            if !ex.layers[i].is_empty() {
                expected_layers += 1;
                let layer = layers
                    .as_dict()
                    .unwrap()
                    .get(&ex.roots[i].unwrap())
                    .and_then(|l| l.as_bytes())
                    .unwrap();
                assert_eq!(layer, &ex.layers[i].concat()[..]);
            }
        }
        assert!(layers.as_dict().unwrap().len() <= expected_layers);
    } else {
        assert!(d.get(b"file tree").is_none());
        assert!(v.as_dict().unwrap().get(b"piece layers").is_none());
    }
}

/// Parses the output with [`crate::Torrent`] and checks it agrees with the reference.
fn round_trip(
    out: &[u8],
    files: &[(Vec<String>, Vec<u8>)],
    version: Version,
    pl: u64,
    multi: bool,
    name: &str,
    ex: &Expect,
) {
    use sha2::Sha256;
    let t =
        crate::Torrent::from_bytes(out).unwrap_or_else(|e| panic!("created torrent rejected: {e}"));
    let hashes = t.info_hashes();
    let info = t.info_bytes();
    assert_eq!(
        hashes.v1.map(|h| h.0),
        version.has_v1().then(|| Sha1::digest(info).into())
    );
    assert_eq!(
        hashes.v2.map(|h| h.0),
        version.has_v2().then(|| Sha256::digest(info).into())
    );
    assert_eq!(t.name(), name);
    assert_eq!(t.piece_length(), pl);
    assert_eq!(t.is_multi_file(), multi);
    if version.has_v1() {
        for i in 0..t.piece_count() {
            let at = i as usize * 20;
            assert_eq!(
                t.piece_hash_v1(i).map(|h| h.to_vec()),
                Some(ex.pieces[at..at + 20].to_vec())
            );
        }
    }
    let real: Vec<&crate::FileEntry> = t.files().iter().filter(|f| !f.pad).collect();
    assert_eq!(real.len(), files.len());
    for (i, (fe, (path, data))) in real.iter().zip(files).enumerate() {
        let want = if multi {
            format!("{name}/{}", path.join("/"))
        } else {
            name.to_owned()
        };
        assert_eq!(fe.path_string(), want);
        assert_eq!(fe.length, data.len() as u64);
        if version.has_v2() {
            assert_eq!(fe.pieces_root, ex.roots[i]);
            if version.has_v2() && !ex.layers[i].is_empty() {
                let idx = t.files().iter().position(|f| std::ptr::eq(f, *fe)).unwrap();
                assert_eq!(t.piece_layer(idx), Some(&ex.layers[i][..]));
            }
        }
        if version.has_v2() && data.len() as u64 > 0 {
            assert_eq!(fe.offset % pl, 0, "file {i} not aligned");
        }
    }
}

#[test]
fn default_piece_length_aims_for_at_most_2000_pieces() {
    assert_eq!(default_piece_length(1), MIN_PIECE_LENGTH);
    assert_eq!(default_piece_length(1 << 30), 1 << 20);
    assert_eq!(default_piece_length(1 << 50), MAX_DEFAULT_PIECE_LENGTH);
    for total in [1u64 << 20, 100 << 20, 3 << 30, 77_777_777] {
        let pl = default_piece_length(total);
        assert!(pl.is_power_of_two());
        assert!(total.div_ceil(pl) <= TARGET_MAX_PIECES);
        assert!(pl == MIN_PIECE_LENGTH || total.div_ceil(pl / 2) > TARGET_MAX_PIECES);
    }
}

#[test]
fn v1_multi_file_pieces_span_files() {
    let files = [
        ("b.bin", data(40_000, 1)),
        ("a/x.bin", data(10_000, 2)),
        ("a/empty", Vec::new()),
        ("c", data(16_384 * 3, 3)),
    ];
    check_dir(&files, Version::V1, 16_384);
}

#[test]
fn hybrid_and_v2_multi_file() {
    let files = [
        ("a.bin", data(100_000, 1)),
        ("c.bin", data(70_000, 2)),
        ("empty", Vec::new()),
        ("sub/b.bin", data(50_000, 3)),
        ("big", data(200_000, 4)),
    ];
    for version in [Version::Hybrid, Version::V2] {
        for pl in [16_384, 32_768, 65_536] {
            check_dir(&files, version, pl);
        }
    }
}

#[test]
fn large_and_small_files_mixed() {
    // Files of many read chunks beside files of less than one, at sizes
    // around the chunk and piece boundaries.
    let big = 1 << 20;
    let files = [
        ("m1", data(big + 12_345, 5)),
        ("s", data(5_000, 6)),
        ("sub/m2", data(2 * big + 7, 7)),
        ("exact", data(big, 8)),
    ];
    for version in [Version::V1, Version::Hybrid, Version::V2] {
        for pl in [16_384, 262_144] {
            check_dir(&files, version, pl);
        }
    }
}

#[test]
fn single_file_all_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("one.dat");
    let d = data(300_000, 9);
    fs::write(&path, &d).unwrap();
    for version in [Version::V1, Version::V2, Version::Hybrid] {
        let out = create(&path, &opts(version, Some(32_768)), &no_progress).unwrap();
        verify(
            &out,
            &[(Vec::new(), d.clone())],
            version,
            32_768,
            false,
            "one.dat",
        );
    }
}

#[test]
fn top_level_keys_and_determinism() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("f");
    fs::write(&path, data(50_000, 5)).unwrap();
    let o = CreateOptions {
        trackers: vec![vec!["http://a/announce".into()], vec!["udp://b:1".into()]],
        web_seeds: vec!["http://ws/".into()],
        private: true,
        comment: Some("hi".into()),
        created_by: Some("shoal test".into()),
        creation_date: Some(1_700_000_000),
        version: Version::Hybrid,
        piece_length: None,
        threads: Some(3),
    };
    let a = create(&path, &o, &no_progress).unwrap();
    let b = create(&path, &o, &no_progress).unwrap();
    assert_eq!(a, b);
    let one_thread = CreateOptions {
        threads: Some(1),
        ..o.clone()
    };
    assert_eq!(a, create(&path, &one_thread, &no_progress).unwrap());
    let v = decode(&a, &Limits::default()).unwrap();
    assert_eq!(get(&v, "announce").as_str(), Some("http://a/announce"));
    let tiers = get(&v, "announce-list").as_list().unwrap();
    assert_eq!(tiers.len(), 2);
    assert_eq!(tiers[1].as_list().unwrap()[0].as_str(), Some("udp://b:1"));
    assert_eq!(get(&v, "comment").as_str(), Some("hi"));
    assert_eq!(get(&v, "created by").as_str(), Some("shoal test"));
    assert_eq!(get(&v, "creation date").as_int(), Some(1_700_000_000));
    assert_eq!(get(&v, "url-list").as_list().unwrap().len(), 1);
    assert_eq!(get(get(&v, "info"), "private").as_int(), Some(1));
    // Without options: no optional keys at all.
    let plain = create(&path, &CreateOptions::default(), &no_progress).unwrap();
    let v = decode(&plain, &Limits::default()).unwrap();
    let keys: Vec<&[u8]> = v.as_dict().unwrap().iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec![&b"info"[..]]);
}

#[test]
fn progress_reaches_total() {
    let tmp = tempfile::tempdir().unwrap();
    write_tree(
        tmp.path(),
        &[
            ("a", data(100_000, 1)),
            ("b", data(1, 2)),
            ("c/d", data(70_001, 3)),
        ],
    );
    let plan = CreatePlan::new(tmp.path(), opts(Version::Hybrid, Some(16_384))).unwrap();
    assert_eq!(plan.total_length(), 170_002);
    let max = AtomicU64::new(0);
    let calls = AtomicU64::new(0);
    plan.build(&|n| {
        max.fetch_max(n, Ordering::Relaxed);
        calls.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(max.load(Ordering::Relaxed), 170_002);
    assert_eq!(calls.load(Ordering::Relaxed), plan.num_pieces());
}

#[test]
fn refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let empty_dir = tmp.path().join("empty");
    fs::create_dir(&empty_dir).unwrap();
    assert!(matches!(
        CreatePlan::new(&empty_dir, CreateOptions::default()),
        Err(CreateError::NoFiles { .. })
    ));
    write_tree(
        &tmp.path().join("zeros"),
        &[("a", Vec::new()), ("b", Vec::new())],
    );
    assert!(matches!(
        CreatePlan::new(&tmp.path().join("zeros"), CreateOptions::default()),
        Err(CreateError::NoData { .. })
    ));
    assert!(matches!(
        CreatePlan::new(&tmp.path().join("missing"), CreateOptions::default()),
        Err(CreateError::Io { .. })
    ));
    let f = tmp.path().join("f");
    fs::write(&f, b"x").unwrap();
    for bad in [0, 1000, 8192, 3 * 16384, MAX_PIECE_LENGTH * 2] {
        let e = CreatePlan::new(&f, opts(Version::V1, Some(bad))).unwrap_err();
        assert!(
            matches!(e, CreateError::BadPieceLength { .. }),
            "{bad}: {e}"
        );
    }
    let o = CreateOptions {
        trackers: vec![vec!["".into()]],
        ..CreateOptions::default()
    };
    assert!(matches!(
        CreatePlan::new(&f, o),
        Err(CreateError::BadUrl { .. })
    ));
}

#[cfg(unix)]
#[test]
fn symlinks_are_followed_and_loops_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("r");
    write_tree(&root, &[("real/a", data(1000, 1))]);
    std::os::unix::fs::symlink(root.join("real/a"), root.join("link")).unwrap();
    let plan = CreatePlan::new(&root, CreateOptions::default()).unwrap();
    let names: Vec<String> = plan.files().iter().map(|f| f.path.join("/")).collect();
    assert_eq!(names, vec!["link", "real/a"]);
    std::os::unix::fs::symlink(&root, root.join("real/loop")).unwrap();
    assert!(matches!(
        CreatePlan::new(&root, CreateOptions::default()),
        Err(CreateError::SymlinkLoop { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn prop_create_matches_reference(
        sizes in proptest::collection::vec(0usize..90_000, 1..5),
        version in prop_oneof![Just(Version::V1), Just(Version::V2), Just(Version::Hybrid)],
        pl_shift in 0u32..3,
    ) {
        let pl = 16_384u64 << pl_shift;
        let names: Vec<String> = (0..sizes.len()).map(|i| format!("d{}/f{i}", i % 2)).collect();
        let files: Vec<(&str, Vec<u8>)> = names
            .iter()
            .zip(&sizes)
            .enumerate()
            .map(|(i, (n, &s))| (n.as_str(), data(s, i as u8)))
            .collect();
        prop_assume!(sizes.iter().any(|&s| s > 0));
        let a = check_dir(&files, version, pl);
        let b = check_dir(&files, version, pl);
        prop_assert_eq!(a, b);
    }
}

#[test]
fn a_file_that_shrinks_after_the_scan_is_reported_not_hashed() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("one.dat");
    fs::write(&path, data(300_000, 3)).unwrap();
    for version in [Version::V1, Version::V2, Version::Hybrid] {
        let plan = CreatePlan::new(&path, opts(version, Some(32_768))).unwrap();
        fs::write(&path, data(200_000, 3)).unwrap();
        match plan.build(&no_progress) {
            Err(CreateError::FileChanged { path: p, expected }) => {
                assert_eq!(p, path);
                assert_eq!(expected, 300_000);
            }
            other => panic!("{version:?}: {other:?}"),
        }
        fs::write(&path, data(300_000, 3)).unwrap();
    }
}
