//! Tests of the `O_DIRECT` write path: aligned runs go through the direct
//! writer, everything else through the page cache, and both agree on disk.

use crate::*;

/// One file per `(name, len)`, pseudo-random content, `piece_length` pieces.
fn layout(piece_length: u64, files: &[(&str, u64)]) -> (StorageLayout, Vec<u8>) {
    let files: Vec<(&str, u64, bool)> = files.iter().map(|&(p, l)| (p, l, false)).collect();
    crate::tests::torrent(piece_length, &files, 0x9e37_79b9)
}

fn storage(layout: &StorageLayout, root: &std::path::Path, direct_io: bool) -> Storage {
    let opts = StorageOptions {
        direct_io,
        ..StorageOptions::default()
    };
    Storage::open(layout.clone(), root, opts).unwrap()
}

/// Writes each piece as runs of 16 KiB blocks, pieces in a scrambled order.
fn write_scrambled(s: &Storage, data: &[u8], behind: bool) {
    let plen = s.map().layout().piece_length as usize;
    let n = s.map().piece_count();
    for k in 0..n {
        let p = (k * 7 + 3) % n;
        let start = p as usize * plen;
        let end = (start + plen).min(data.len());
        let blocks: Vec<&[u8]> = data[start..end].chunks(16 << 10).collect();
        // Two runs per piece, like the disk actor's write-through.
        let half = blocks.len() / 2;
        let first: usize = blocks[..half].iter().map(|b| b.len()).sum();
        if behind {
            s.write_vectored_behind(p, 0, &blocks[..half]).unwrap();
            s.write_vectored_behind(p, first as u64, &blocks[half..])
                .unwrap();
        } else {
            s.write_vectored(p, 0, &blocks[..half]).unwrap();
            s.write_vectored(p, first as u64, &blocks[half..]).unwrap();
        }
    }
}

#[test]
fn unaligned_files_mix_direct_and_buffered_writes() {
    let dir = tempfile::tempdir().unwrap();
    // Every file but the first starts mid-page: their whole pages go direct,
    // the partial pages at the ends of each run through the page cache.
    let files = [
        ("a", 5000u64),
        ("dir/b", 300_000),
        ("c", (1 << 20) + 123),
        ("d", 3 << 20),
    ];
    let (layout, data) = layout(256 << 10, &files);
    let s = storage(&layout, dir.path(), true);
    write_scrambled(&s, &data, true);
    s.wait_all_written().unwrap();
    let mut off = 0usize;
    for (name, len) in files {
        let got = std::fs::read(dir.path().join(name)).unwrap();
        assert!(got == data[off..off + len as usize], "{name} differs");
        off += len as usize;
    }
    assert!(s.check(&|_| {}).unwrap().iter().all(|&v| v));
    // Most of the bytes went direct where the filesystem allows it.
    let direct = s.direct_bytes_written();
    if direct > 0 && !s.direct_given_up() {
        assert!(direct >= 4 << 20, "only {direct} bytes direct");
    }
}

#[test]
fn buffered_option_and_direct_give_the_same_files() {
    let files = [("x", (2 << 20) + 4096 + 17), ("y", 777_777)];
    let (layout, data) = layout(1 << 20, &files);
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let direct = storage(&layout, a.path(), true);
    let buffered = storage(&layout, b.path(), false);
    write_scrambled(&direct, &data, false);
    write_scrambled(&buffered, &data, false);
    assert_eq!(buffered.direct_bytes_written(), 0);
    for (name, _) in files {
        assert!(
            std::fs::read(a.path().join(name)).unwrap()
                == std::fs::read(b.path().join(name)).unwrap(),
            "{name} differs"
        );
    }
    // A verified piece can be read back at once after write_vectored.
    let mut buf = vec![0u8; 1 << 20];
    assert!(direct.read_into(1, 0, &mut buf).unwrap());
    assert!(buf == data[1 << 20..2 << 20]);
}

#[test]
fn rewriting_a_failed_piece_replaces_its_direct_data() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, data) = layout(1 << 20, &[("f", 2 << 20)]);
    let s = storage(&layout, dir.path(), true);
    let junk = vec![0xAAu8; 1 << 20];
    s.write_vectored_behind(0, 0, &[&junk]).unwrap();
    s.wait_written(0).unwrap();
    assert!(!s.verify_on_disk(0).unwrap());
    // The re-download arrives in blocks, some through buffered writes.
    for (i, c) in data[..1 << 20].chunks(16 << 10).enumerate() {
        let off = (i * (16 << 10)) as u64;
        if i % 3 == 0 {
            s.write(0, off, c).unwrap();
        } else {
            s.write_vectored_behind(0, off, &[c]).unwrap();
        }
    }
    s.wait_written(0).unwrap();
    assert!(s.verify_on_disk(0).unwrap());
}
