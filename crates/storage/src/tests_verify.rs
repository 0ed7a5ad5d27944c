//! Tests of [`crate::verify`]: every read path (page cache, `O_DIRECT`,
//! automatic) and thread count gives the verdicts of a model that hashes
//! what is really on disk, for v1 and v2 layouts, with corrupted, truncated
//! and missing files, unwanted files (parts file) and pieces larger than a
//! read window.

use std::path::Path;

use crate::hash::{verify_v1, verify_v2};
use crate::tests::torrent;
use crate::tests_v2::v2_torrent;
use crate::*;

fn open(layout: &StorageLayout, root: &Path) -> Storage {
    Storage::open(layout.clone(), root, StorageOptions::default()).unwrap()
}

/// What a damaged file looks like on disk.
#[derive(Debug, Clone, Copy)]
enum Damage {
    None,
    /// Flip the byte at this position (modulo the length).
    Flip(u64),
    /// Cut to this length (modulo the length).
    Cut(u64),
    Remove,
}

/// Writes `data` to the layout's files, damages them, and returns the
/// torrent-space view of the disk (`None`: not there; pads are zeros).
fn lay_out(root: &Path, layout: &StorageLayout, data: &[u8], damage: &[Damage]) -> Vec<Option<u8>> {
    let mut view = Vec::with_capacity(data.len());
    let mut pos = 0usize;
    for (i, f) in layout.files.iter().enumerate() {
        let len = f.length as usize;
        let mut content: Vec<u8> = data[pos..pos + len].to_vec();
        pos += len;
        if f.pad {
            view.extend(content.iter().map(|&b| Some(b)));
            continue;
        }
        let path = root.join(&f.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let d = damage.get(i).copied().unwrap_or(Damage::None);
        let keep = match d {
            Damage::Remove => {
                view.extend(std::iter::repeat_n(None, len));
                continue;
            }
            Damage::Flip(at) if len > 0 => {
                content[(at % len as u64) as usize] ^= 0x40;
                len
            }
            Damage::Cut(to) if len > 0 => (to % len as u64) as usize,
            _ => len,
        };
        std::fs::write(&path, &content[..keep]).unwrap();
        view.extend(content[..keep].iter().map(|&b| Some(b)));
        view.extend(std::iter::repeat_n(None, len - keep));
    }
    view
}

/// The verdicts a correct verifier must give for `view`.
fn model(s: &Storage, view: &[Option<u8>]) -> Vec<PieceStatus> {
    let map = s.map();
    let pl = map.layout().piece_length as usize;
    (0..map.piece_count())
        .map(|p| {
            let lo = p as usize * pl;
            let bytes = &view[lo..lo + map.piece_len(p).unwrap() as usize];
            let Some(bytes) = bytes.iter().copied().collect::<Option<Vec<u8>>>() else {
                return PieceStatus::Missing;
            };
            let ok = match &map.layout().piece_hashes {
                PieceHashes::V1(v) => verify_v1(&v[p as usize], [&bytes[..]]),
                PieceHashes::V2(v) => verify_v2(&v[p as usize], [&bytes[..]]),
            };
            if ok {
                PieceStatus::Good
            } else {
                PieceStatus::Bad
            }
        })
        .collect()
}

const PATHS: [ReadPath; 3] = [ReadPath::Auto, ReadPath::PageCache, ReadPath::Direct];

fn check_all_paths(s: &Storage, want: &[PieceStatus]) {
    for read in PATHS {
        for threads in [1, 3] {
            let opts = VerifyOptions { threads, read };
            let got = s.verify_all(&opts, &|_| {}).unwrap();
            assert_eq!(got.status, want, "{opts:?}");
        }
    }
    let bools = s.check(&|_| {}).unwrap();
    let want_bools: Vec<bool> = want.iter().map(|&v| v == PieceStatus::Good).collect();
    assert_eq!(bools, want_bools);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn damage() -> impl Strategy<Value = Damage> {
        prop_oneof![
            4 => Just(Damage::None),
            2 => any::<u64>().prop_map(Damage::Flip),
            1 => any::<u64>().prop_map(Damage::Cut),
            1 => Just(Damage::Remove),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        /// v1: any layout with pads, any damage, any unwanted files.
        #[test]
        fn v1_verdicts_match_the_model(
            pl in prop_oneof![1u64..100, Just(4096u64), Just(1 << 16)],
            specs in proptest::collection::vec((0u64..20_000, any::<bool>(), damage()), 1..6),
            unwanted in any::<u8>(),
            seed in any::<u64>(),
        ) {
            let names: Vec<String> = (0..specs.len()).map(|i| format!("d{}/f{i}", i % 2)).collect();
            let files: Vec<(&str, u64, bool)> = specs.iter().zip(&names)
                .map(|(&(l, pad, _), n)| (n.as_str(), l, pad)).collect();
            prop_assume!(files.iter().any(|f| f.1 > 0));
            let (layout, data) = torrent(pl, &files, seed);
            let dir = tempfile::tempdir().unwrap();
            let damage: Vec<Damage> = specs.iter().map(|s| s.2).collect();
            let view = lay_out(dir.path(), &layout, &data, &damage);
            let s = open(&layout, dir.path());
            let want = model(&s, &view);
            check_all_paths(&s, &want);
            // Unwanted files read from the (absent) parts file: missing.
            for i in (0..files.len()).filter(|i| unwanted & (1 << i) != 0) {
                s.set_file_wanted(i, false).unwrap();
            }
            let got = s.verify_all(&VerifyOptions::default(), &|_| {}).unwrap();
            for (p, (&g, &w)) in got.status.iter().zip(&want).enumerate() {
                let via_parts = s.map().piece_spans(p as u32).unwrap()
                    .any(|sp| !sp.pad && !s.is_wanted(sp.file));
                if !via_parts {
                    prop_assert_eq!(g, w);
                }
            }
        }
    }
}

#[test]
fn v2_verdicts_match_the_model() {
    const B: u64 = 16384;
    let (layout, data) = v2_torrent(
        4 * B,
        &[
            ("t/a.bin", 9 * B + 100),
            ("t/b.bin", 4 * B),
            ("t/c.txt", 300),
            ("t/empty", 0),
            ("t/d/e.bin", 2 * B + 1),
            ("t/z.bin", 6 * B),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let file_index = |name: &str| {
        layout
            .files
            .iter()
            .position(|f| f.path == Path::new(name))
            .unwrap()
    };
    let mut damage = vec![Damage::None; layout.files.len()];
    damage[file_index("t/a.bin")] = Damage::Flip(5 * B + 7);
    damage[file_index("t/d/e.bin")] = Damage::Remove;
    damage[file_index("t/z.bin")] = Damage::Cut(5 * B);
    let view = lay_out(dir.path(), &layout, &data, &damage);
    let s = open(&layout, dir.path());
    let want = model(&s, &view);
    use PieceStatus::*;
    // a: 3 pieces, the second one flipped; b; c; e: missing; z: 2 pieces, the last cut.
    assert_eq!(
        want,
        vec![Good, Bad, Good, Good, Good, Missing, Good, Missing]
    );
    check_all_paths(&s, &want);
}

#[test]
fn pieces_larger_than_a_read_window() {
    // One 16 MiB piece (two read windows) and a short one after it.
    let pl = 2 * crate::verify::RUN_BYTES;
    let (layout, data) = torrent(pl, &[("big", pl + 5000, false)], 3);
    let dir = tempfile::tempdir().unwrap();
    let view = lay_out(dir.path(), &layout, &data, &[]);
    let s = open(&layout, dir.path());
    let want = model(&s, &view);
    assert_eq!(want, vec![PieceStatus::Good, PieceStatus::Good]);
    for read in PATHS {
        let opts = VerifyOptions { threads: 2, read };
        let got = s.verify_all(&opts, &|_| {}).unwrap();
        assert_eq!(got.status, want, "{read:?}");
        if read == ReadPath::PageCache {
            assert_eq!(got.stats.bytes_cached, data.len() as u64);
        }
        if read == ReadPath::Direct {
            assert_eq!(got.stats.bytes_cached, 0);
            assert!(got.stats.bytes_direct + got.stats.bytes_buffered >= data.len() as u64);
            // Where the filesystem takes O_DIRECT, it was used.
            let f = std::fs::File::open(dir.path().join("big")).unwrap();
            if crate::verify::reopen_direct_read(&f).is_ok() {
                assert!(got.stats.bytes_direct >= data.len() as u64);
            }
        }
    }
    // Flip a byte in the second window of the first piece.
    let mut bytes = std::fs::read(dir.path().join("big")).unwrap();
    bytes[(crate::verify::RUN_BYTES + 9) as usize] ^= 1;
    std::fs::write(dir.path().join("big"), &bytes).unwrap();
    for read in PATHS {
        let opts = VerifyOptions { threads: 1, read };
        let got = s.verify_all(&opts, &|_| {}).unwrap();
        assert_eq!(
            got.status,
            vec![PieceStatus::Bad, PieceStatus::Good],
            "{read:?}"
        );
    }
}

#[test]
fn subsets_keep_their_order_and_bad_indices_fail() {
    let (layout, data) = torrent(100, &[("a", 1000, false)], 5);
    let dir = tempfile::tempdir().unwrap();
    let view = lay_out(dir.path(), &layout, &data, &[Damage::Flip(250)]);
    let s = open(&layout, dir.path());
    let want = model(&s, &view);
    let pick = [7u32, 2, 3, 0];
    let got = s
        .verify_pieces(&pick, &VerifyOptions::default(), &|_| {})
        .unwrap();
    let expect: Vec<PieceStatus> = pick.iter().map(|&p| want[p as usize]).collect();
    assert_eq!(got.status, expect);
    assert_eq!(got.status[1], PieceStatus::Bad);
    assert!(matches!(
        s.verify_pieces(&[10], &VerifyOptions::default(), &|_| {}),
        Err(StorageError::Layout(LayoutError::NoSuchPiece {
            piece: 10,
            ..
        }))
    ));
}
